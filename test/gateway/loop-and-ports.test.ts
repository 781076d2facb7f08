/**
 * Two ways a tenant could aim the gateway somewhere it should not go (GW-2, GW-3):
 * - another port of an allowed host (an admin API, a database) — the allowlist holds ports;
 * - the gateway itself — a provider whose base URL is Gatehouse turned one call into dozens of
 *   nested calls. The hop header makes the loop cost exactly one refused call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOPS_HEADER, MAX_HOPS } from '../../src/gateway/loop.ts';
import { createApiKey, createOrgAndWorkspace, expectStatus, startGatewayApp, VENDOR_KEYS, type GatewayTestApp } from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

let t: GatewayTestApp;
let owner: SignedInUser;
let org: string;
let ws: string;
let key: string;
/** Requests the gateway's HTTP server received on its chat route (client calls and nested ones). */
let chatRequests = 0;

beforeAll(async () => {
  t = await startGatewayApp({
    env: { GATEHOUSE_GATEWAY_PROVIDER_KEYS: '{}' },
    overrides: {
      // Loopback on any port (the gateway and the mock vendor listen on free ports), and
      // `localhost` on its default port only.
      'gateway.upstream.allowedHosts': ['127.0.0.1:*', 'localhost'],
      'gateway.providers': [{ id: 'wrong-port', kind: 'openai', baseUrl: 'http://localhost:9', models: ['port-model'] }],
      'gateway.timeouts.totalMs': 3_000,
      'gateway.retry.maxRetries': 2,
      'gateway.retry.baseDelayMs': 5,
      'gateway.retry.maxDelayMs': 20,
    },
  });
  t.app.server.on('request', (req: { url?: string }) => {
    if (req.url === '/v1/chat/completions') chatRequests++;
  });
  owner = await signUpUser(t.app, t.mail, 'loops@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Loops'));
  key = (await createApiKey(t, owner, org, ws)).key;
});

afterAll(async () => {
  await t?.close();
});

async function chat(model: string, headers: Record<string, string> = {}): Promise<{ status: number; body: { error: { code: string } } }> {
  const res = await fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: res.status, body: (await res.json()) as { error: { code: string } } };
}

describe('ports', () => {
  it('attack: a workspace provider on an allowed host but another port — 400 VALIDATION_FAILED naming the port, nothing stored', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: `/v1/orgs/${org}/workspaces/${ws}/providers/side-door`,
      headers: owner.auth,
      payload: { kind: 'openai', baseUrl: 'http://localhost:6379', apiKey: VENDOR_KEYS.openai, models: ['m'] },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION_FAILED');
    expect(res.json().error.message).toContain('port');
    const rows = await t.node.db.asOwner((tx) => tx.query("select 1 from provider_credentials where name = 'side-door'"));
    expect(rows.rowCount).toBe(0);
  });

  it('attack: a platform provider on a port the allowlist does not hold — 502 upstream_port_not_allowed, refused before any connection', async () => {
    const res = await chat('port-model');
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('upstream_port_not_allowed');
  });
});

describe('loops', () => {
  it('attack: a workspace provider pointing back at the gateway — one refused nested call (508 gateway_loop_detected), not a cascade', async () => {
    // The tenant's "vendor key" is a Gatehouse key of its own workspace, so the nested call is authenticated.
    expectStatus(
      await t.app.inject({
        method: 'PUT',
        url: `/v1/orgs/${org}/workspaces/${ws}/providers/self`,
        headers: owner.auth,
        payload: { kind: 'openai', baseUrl: t.url, apiKey: key, models: ['loop-model'] },
      }),
      200,
    );
    chatRequests = 0;
    const res = await chat('loop-model');
    expect(res.status).toBe(508);
    expect(res.body.error.code).toBe('gateway_loop_detected');
    // The client's call and the one nested call the gateway refused: no retry, no deeper call.
    expect(chatRequests).toBe(2);
    expect(t.vendor.requests).toHaveLength(0);
  });

  it(`attack: a call that already went through ${MAX_HOPS} gateways — 508 gateway_loop_detected before any upstream call`, async () => {
    chatRequests = 0;
    const hops = Array.from({ length: MAX_HOPS }, (_, i) => `node${i}`).join(',');
    const res = await chat('port-model', { [HOPS_HEADER]: hops });
    expect(res.status).toBe(508);
    expect(res.body.error.code).toBe('gateway_loop_detected');
    expect(chatRequests).toBe(1);
  });
});
