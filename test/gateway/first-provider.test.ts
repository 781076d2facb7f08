/**
 * A first provider, as the README says (GW-2): a node started with exactly the README's
 * environment variables calls the provider; a node without any provider says so
 * (no_provider_configured) instead of an empty list and model_not_found; setting only the keys
 * fails at start with a message that names GATEHOUSE_GATEWAY_PROVIDERS.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createApiKey, createOrgAndWorkspace } from '../support/gateway.ts';
import { startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { signUpUser } from '../support/users.ts';

/** The `export NAME='value'` lines of the README's first-provider block. */
function readmeEnv(): Record<string, string> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /<!-- first-provider:start -->([\s\S]*?)<!-- first-provider:end -->/.exec(readme)?.[1] ?? '';
  const env: Record<string, string> = {};
  for (const match of block.matchAll(/^export (GATEHOUSE_[A-Z_]+)='([^']*)'$/gm)) env[match[1] as string] = match[2] as string;
  return env;
}

const opened: { close: () => Promise<void> }[] = [];
afterAll(async () => {
  for (const o of opened.reverse()) await o.close();
});

async function post(t: TestApp, key: string, url: string, body?: object): Promise<{ status: number; json: { error?: { code: string; message: string }; data?: { id: string }[] } }> {
  const res = await t.app.inject({ method: body ? 'POST' : 'GET', url, headers: { authorization: `Bearer ${key}` }, ...(body ? { payload: body } : {}) });
  return { status: res.statusCode, json: res.json() };
}

describe('a first provider', () => {
  it('the README\'s variables, pointed at a mock vendor, give a working chat completion', async () => {
    const env = readmeEnv();
    expect(Object.keys(env).sort()).toEqual(['GATEHOUSE_GATEWAY_PROVIDERS', 'GATEHOUSE_GATEWAY_PROVIDER_KEYS', 'GATEHOUSE_GATEWAY_UPSTREAM_ALLOWED_HOSTS']);
    const vendorKey = (JSON.parse(env.GATEHOUSE_GATEWAY_PROVIDER_KEYS ?? '{}') as Record<string, string>).main ?? '';
    const vendor: MockVendor = await startMockVendor({ openaiKey: vendorKey });
    opened.push(vendor);
    const host = new URL(vendor.url).host;
    // Only the provider's address changes: the mock listens on plain http on loopback.
    const t = await createTestApp({
      env: {
        GATEHOUSE_GATEWAY_PROVIDERS: (env.GATEHOUSE_GATEWAY_PROVIDERS ?? '').replace('https://llm.example.com', vendor.url),
        GATEHOUSE_GATEWAY_PROVIDER_KEYS: env.GATEHOUSE_GATEWAY_PROVIDER_KEYS,
        GATEHOUSE_GATEWAY_UPSTREAM_ALLOWED_HOSTS: (env.GATEHOUSE_GATEWAY_UPSTREAM_ALLOWED_HOSTS ?? '').replace('llm.example.com', host),
        GATEHOUSE_GATEWAY_UPSTREAM_ALLOW_INSECURE_HTTP: 'true',
        GATEHOUSE_GATEWAY_UPSTREAM_ALLOWED_CIDRS: '["127.0.0.1/32"]',
      },
    });
    opened.push(t);
    const owner = await signUpUser(t.app, t.mail, 'first-provider@example.com');
    const { org, ws } = await createOrgAndWorkspace(t, owner, 'First provider');
    const { key } = await createApiKey(t, owner, org, ws);
    const models = await post(t, key, '/v1/models');
    expect(models.json.data?.map((m) => m.id)).toEqual(['gpt-4o-mini']);
    const chat = await post(t, key, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(chat.status).toBe(200);
    expect(vendor.requests[0]?.headers.authorization).toBe(`Bearer ${vendorKey}`);
  });

  it('without any provider, chat and the model list answer 404 no_provider_configured naming what to set', async () => {
    const t = await createTestApp();
    opened.push(t);
    const owner = await signUpUser(t.app, t.mail, 'no-provider@example.com');
    const { org, ws } = await createOrgAndWorkspace(t, owner, 'No provider');
    const { key } = await createApiKey(t, owner, org, ws);
    for (const res of [await post(t, key, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), await post(t, key, '/v1/models')]) {
      expect(res.status).toBe(404);
      expect(res.json.error?.code).toBe('no_provider_configured');
      expect(res.json.error?.message).toContain('GATEHOUSE_GATEWAY_PROVIDERS');
    }
  });

  it('only GATEHOUSE_GATEWAY_PROVIDER_KEYS: the start fails naming GATEHOUSE_GATEWAY_PROVIDERS, never the key', () => {
    const secret = ['sk', 'only', 'keys', '0123456789abcdef'].join('-');
    let message = '';
    try {
      loadConfig({ env: { GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ main: secret }) }, configFile: undefined, cwd: '/nonexistent-gatehouse-test-dir' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('GATEHOUSE_GATEWAY_PROVIDERS');
    expect(message).toContain('"main"');
    expect(message).not.toContain(secret);
  });
});
