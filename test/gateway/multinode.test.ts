/**
 * Two Gatehouse nodes sharing PostgreSQL and Redis (GW-1, ABUSE-1): an API key revoked on one node
 * is refused on the other within a second although the other had it cached; a workspace's routing
 * changed on one node applies on the other at once; the monthly limit is counted across both; the
 * usage report sees both nodes' calls. Runs in CI (DATABASE_URL and REDIS_URL); skipped locally
 * without them.
 */
import type { AddressInfo } from 'node:net';
import OpenAI, { AuthenticationError, RateLimitError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../src/cli/runtime.ts';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { mockProviders, VENDOR_KEYS } from '../support/gateway.ts';
import { startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { startTwoNodes, twoNodeSkipReason as skip, type TwoNodes } from '../support/two-nodes.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const messages = [{ role: 'user' as const, content: 'Say hello.' }];

(skip ? describe.skip : describe)(`the gateway on two nodes, PostgreSQL + Redis${skip ? `: ${skip}` : ''}`, () => {
  let nodes: TwoNodes | undefined;
  let a: Node;
  let b: Node;
  let urlA: string;
  let urlB: string;
  let vendor: MockVendor;
  let owner: SignedInUser;
  let org: string;
  let ws: string;
  let mail: MailMessage[] = [];

  beforeAll(async () => {
    vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai, anthropicKey: VENDOR_KEYS.anthropic });
    nodes = await startTwoNodes({
      env: { GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ openai: VENDOR_KEYS.openai, faulty: VENDOR_KEYS.openai, anthropic: VENDOR_KEYS.anthropic }) },
      overrides: {
        'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
        'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
        'gateway.upstream.allowInsecureHttp': true,
        'gateway.providers': mockProviders(vendor.url),
        // Long cache lifetimes: only eviction messages can explain a change seen within a second.
        'gateway.keyCacheSeconds': 3600,
      },
    });
    ({ a, b, mail } = nodes);
    for (const node of [a, b]) await node.app.listen({ port: 0, host: '127.0.0.1' });
    urlA = `http://127.0.0.1:${(a.app.server.address() as AddressInfo).port}`;
    urlB = `http://127.0.0.1:${(b.app.server.address() as AddressInfo).port}`;
    owner = await signUpUser(a.app, mail, 'gateway-two-nodes@example.com');
    org = (await a.app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'Two nodes' }, headers: owner.auth })).json().id;
    ws = (await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name: 'W' }, headers: owner.auth })).json().id;
  }, 120_000);

  afterAll(async () => {
    await nodes?.close();
    await vendor?.close();
  });

  const client = (url: string, apiKey: string): OpenAI => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0, timeout: 10_000 });

  async function createKey(body: object = {}): Promise<{ key: string; id: string }> {
    const res = await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'k', ...body }, headers: owner.auth });
    expect(res.statusCode).toBe(201);
    return { key: res.json().key, id: res.json().apiKey.id };
  }

  /** Milliseconds until `check` holds, polling; Infinity after a second. */
  async function within1s(check: () => Promise<boolean>): Promise<number> {
    const t0 = Date.now();
    while (Date.now() - t0 < 1000) if (await check()) return Date.now() - t0;
    return Infinity;
  }

  it('a key revoked on node A is refused on node B within a second, though B had it cached', async () => {
    const { key, id } = await createKey();
    expect((await client(urlB, key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expect((await client(urlA, key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expect((await a.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys/${id}`, headers: owner.auth })).statusCode).toBe(204);
    const refused = await within1s(async () =>
      client(urlB, key)
        .chat.completions.create({ model: 'mock-model', messages })
        .then(
          () => false,
          (err: unknown) => err instanceof AuthenticationError,
        ),
    );
    expect(refused).toBeLessThan(1000);
  });

  it('a workspace\'s model routing changed on node A applies on node B at once', async () => {
    const { key } = await createKey();
    expect((await client(urlB, key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    const put = await a.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/models`, payload: { allowedModels: ['mock-embed'] }, headers: owner.auth });
    expect(put.statusCode).toBe(200);
    const narrowed = await within1s(async () =>
      client(urlB, key)
        .chat.completions.create({ model: 'mock-model', messages })
        .then(
          () => false,
          (err: unknown) => (err as { status?: number }).status === 404,
        ),
    );
    expect(narrowed).toBeLessThan(1000);
    await a.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/models`, payload: {}, headers: owner.auth });
  });

  it('the monthly limit counts calls on both nodes; the usage report sees both', async () => {
    const { key, id } = await createKey({ monthlyLimit: 3 });
    await client(urlA, key).chat.completions.create({ model: 'mock-model', messages });
    await client(urlB, key).chat.completions.create({ model: 'mock-model', messages });
    await client(urlA, key).embeddings.create({ model: 'mock-embed', input: 'x', encoding_format: 'float' });
    await expect(client(urlB, key).chat.completions.create({ model: 'mock-model', messages })).rejects.toBeInstanceOf(RateLimitError);
    await b.gateway.meter.flush();
    const report = (await a.app.inject({ url: `/v1/orgs/${org}/usage`, headers: owner.auth })).json();
    expect(report.keys.find((k: { keyId: string }) => k.keyId === id)).toMatchObject({ requests: 3, failedRequests: 0 });
  });
});
