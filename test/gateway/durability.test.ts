/**
 * The gateway's security state and metering across restarts, store loss and shutdown, on the
 * embedded node (GW-1, GW-2, GW-4, ABUSE-1):
 * - a monthly key limit used up before a restart is still used up after it (the memory counter is
 *   rebuilt from the usage records, not started from zero);
 * - a counter store that cannot answer refuses with 503 + Retry-After in the vendor's shape;
 * - a shutdown whose grace period ends while calls run tells each client so in its wire format
 *   (a terminal error event on a stream, 503 + Retry-After on a pending JSON call) and meters them.
 * The same limit on PostgreSQL + Redis across two nodes is in multinode.test.ts; a crash (SIGKILL)
 * is in crash.test.ts.
 */
import Anthropic, * as AnthropicErrors from '@anthropic-ai/sdk';
import OpenAI, * as OpenAIErrors from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { embeddedSetup, recordedCalls, startEmbeddedNode, type EmbeddedNode, type EmbeddedSetup } from '../support/embedded-gateway.ts';
import { createApiKey, createOrgAndWorkspace, startGatewayApp, VENDOR_KEYS, type GatewayTestApp } from '../support/gateway.ts';
import type { TestApp } from '../support/app.ts';
import { startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const messages = [{ role: 'user' as const, content: 'Say hello.' }];

function openai(url: string, apiKey: string): OpenAI {
  return new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0, timeout: 10_000 });
}
function anthropic(url: string, apiKey: string): Anthropic {
  return new Anthropic({ apiKey, baseURL: url, maxRetries: 0, timeout: 10_000 });
}

/** The rejection of `promise` (fails the test when it resolves). */
async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** The org, workspace and owner made on the first start of a data directory. */
interface Tenant {
  owner: SignedInUser;
  org: string;
  ws: string;
}

async function makeTenant(n: EmbeddedNode, email: string): Promise<Tenant> {
  const asTestApp = { app: n.node.app } as TestApp;
  const owner = await signUpUser(n.node.app, n.mail, email);
  const { org, ws } = await createOrgAndWorkspace(asTestApp, owner, 'Durability');
  return { owner, org, ws };
}

// One data directory for the restart and shutdown tests: creating one costs the embedded engine
// most of a test's time. Streams of `mock-slow` are about ten events 400 ms apart, far longer than
// the 300 ms grace period; no other call is running when a test restarts the node.
let vendor: MockVendor;
let setup: EmbeddedSetup;
const mail: MailMessage[] = [];
let current: EmbeddedNode | undefined;
let tenant: Tenant;

beforeAll(async () => {
  vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai, anthropicKey: VENDOR_KEYS.anthropic, slowChunkMs: 400 });
  setup = embeddedSetup(vendor.url, { 'server.shutdownGraceMs': 300 });
  current = await startEmbeddedNode(setup, mail);
  tenant = await makeTenant(current, 'durability-owner@example.com');
});

afterAll(async () => {
  await current?.close();
  await vendor?.close();
  setup?.remove();
});

/** The running node, started again when a test stopped it. */
async function node(): Promise<EmbeddedNode> {
  current ??= await startEmbeddedNode(setup, mail);
  return current;
}

/** Stops the node (a clean shutdown); `node()` starts it again. */
async function stop(): Promise<void> {
  const stopping = current;
  current = undefined;
  await stopping?.close();
}

async function restart(): Promise<EmbeddedNode> {
  await stop();
  return node();
}

describe('the monthly key limit across a restart of the embedded node', () => {
  it('attack: use up the limit, wait for a restart, call again: still 429 MONTHLY_LIMIT_REACHED (insufficient_quota), nothing forwarded', async () => {
    let n = await node();
    const { key, id } = await createApiKey({ app: n.node.app } as TestApp, tenant.owner, tenant.org, tenant.ws, { monthlyLimit: 3 });
    await openai(n.url, key).chat.completions.create({ model: 'mock-model', messages });
    await anthropic(n.url, key).messages.create({ model: 'mock-model', max_tokens: 8, messages });
    await openai(n.url, key).embeddings.create({ model: 'mock-embed', input: 'x', encoding_format: 'float' });
    const before = await caught(openai(n.url, key).chat.completions.create({ model: 'mock-model', messages }));
    expect(before).toBeInstanceOf(OpenAIErrors.RateLimitError);
    expect((before as OpenAIErrors.APIError).code).toBe('insufficient_quota');

    // A clean restart: the memory counter store starts empty.
    n = await restart();
    vendor.reset();
    const forwardedBefore = vendor.requests.length;

    const afterRestart = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        caught(i % 2 === 0 ? openai(n.url, key).chat.completions.create({ model: 'mock-model', messages }) : anthropic(n.url, key).messages.create({ model: 'mock-model', max_tokens: 8, messages })),
      ),
    );
    for (const [i, err] of afterRestart.entries()) {
      if (i % 2 === 0) {
        expect(err).toBeInstanceOf(OpenAIErrors.RateLimitError);
        expect((err as OpenAIErrors.APIError).code).toBe('insufficient_quota');
        expect(Number((err as OpenAIErrors.APIError).headers?.get('retry-after'))).toBeGreaterThan(0);
      } else {
        expect(err).toBeInstanceOf(AnthropicErrors.RateLimitError);
      }
    }
    expect(vendor.requests.length).toBe(forwardedBefore);
    expect(n.logText()).toContain('monthly call count rebuilt from usage records');
    // The usage records it was rebuilt from: the three calls that went through.
    await stop();
    expect((await recordedCalls(setup, tenant.org, id)).requests).toBe(3);
  });

  it('a key with calls left keeps exactly the rest after a restart, also under concurrent calls', async () => {
    let n = await node();
    const { key } = await createApiKey({ app: n.node.app } as TestApp, tenant.owner, tenant.org, tenant.ws, { monthlyLimit: 5 });
    await openai(n.url, key).chat.completions.create({ model: 'mock-model', messages });
    await openai(n.url, key).chat.completions.create({ model: 'mock-model', messages });
    n = await restart();
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => openai(n.url, key).chat.completions.create({ model: 'mock-model', messages })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as OpenAIErrors.APIError).code).toBe('insufficient_quota');
  });
});

describe('the monthly key limit when its counter store cannot answer', () => {
  let t: GatewayTestApp;
  let owner: SignedInUser;
  let org: string;
  let ws: string;

  beforeAll(async () => {
    t = await startGatewayApp({ overrides: { 'rateLimit.onStoreError': 'closed' } });
    owner = await signUpUser(t.app, t.mail, 'store-down@example.com');
    ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Store down'));
  });

  afterAll(async () => {
    await t?.close();
  });

  it('attack: call a limited key while the counter store is down (fail-open would let it through): 503 SERVICE_UNAVAILABLE with Retry-After, vendor-shaped, not forwarded', async () => {
    const { key } = await createApiKey(t, owner, org, ws, { monthlyLimit: 1 });
    const kv = t.node.kv;
    const original = kv.incrExisting.bind(kv);
    // Only the monthly counter fails: the rate limiter (same store) keeps answering, so the
    // refusal can only come from the monthly limit.
    kv.incrExisting = async () => {
      throw new Error('counter store unreachable');
    };
    t.vendor.reset();
    try {
      const err = await caught(openai(t.url, key).chat.completions.create({ model: 'mock-model', messages }));
      expect(err).toBeInstanceOf(OpenAIErrors.InternalServerError);
      const apiErr = err as OpenAIErrors.APIError;
      expect(apiErr.status).toBe(503);
      expect(apiErr.code).toBe('service_unavailable');
      expect(apiErr.type).toBe('server_error');
      expect(Number(apiErr.headers?.get('retry-after'))).toBeGreaterThan(0);

      const aErr = await caught(anthropic(t.url, key).messages.create({ model: 'mock-model', max_tokens: 8, messages }));
      expect(aErr).toBeInstanceOf(AnthropicErrors.InternalServerError);
      expect((aErr as AnthropicErrors.APIError).status).toBe(503);
      expect((aErr as AnthropicErrors.APIError).error).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
      expect(Number((aErr as AnthropicErrors.APIError).headers?.get('retry-after'))).toBeGreaterThan(0);
      expect(t.vendor.requests).toHaveLength(0);
    } finally {
      kv.incrExisting = original;
    }
    // Back up: the key's one call goes through, the next is over the limit.
    await openai(t.url, key).chat.completions.create({ model: 'mock-model', messages });
    expect(((await caught(openai(t.url, key).chat.completions.create({ model: 'mock-model', messages }))) as OpenAIErrors.APIError).code).toBe('insufficient_quota');
  });

  it('attack: the counter is missing and the usage records cannot be read: 503, never counted from zero', async () => {
    const { key } = await createApiKey(t, owner, org, ws, { monthlyLimit: 1 });
    const db = t.node.db;
    const original = db.withTenant.bind(db);
    // The key's counter is absent (a fresh key); its rebuild's read fails.
    db.withTenant = (async (tenantId: string, fn: Parameters<typeof db.withTenant>[1]) => {
      if (tenantId === org && new Error().stack?.includes('countRecordedCalls')) throw new Error('database unreachable');
      return original(tenantId, fn);
    }) as typeof db.withTenant;
    t.vendor.reset();
    try {
      const err = await caught(openai(t.url, key).chat.completions.create({ model: 'mock-model', messages }));
      expect((err as OpenAIErrors.APIError).status).toBe(503);
      expect((err as OpenAIErrors.APIError).code).toBe('service_unavailable');
      expect(t.vendor.requests).toHaveLength(0);
    } finally {
      db.withTenant = original;
    }
  });
});

describe('shutdown with AI calls still running past the grace period', () => {
  it('streams end with an error event the SDKs raise, a pending JSON call gets 503 + Retry-After, and every cut call is metered', async () => {
    const n = await node();
    const { key, id } = await createApiKey({ app: n.node.app } as TestApp, tenant.owner, tenant.org, tenant.ws);

    // An OpenAI stream and an Anthropic stream, each read until its first text arrived.
    const oStream = await openai(n.url, key).chat.completions.create({ model: 'mock-slow', messages, stream: true });
    const oChunks = oStream[Symbol.asyncIterator]();
    let oText = '';
    while (oText.length === 0) {
      const next = await oChunks.next();
      if (next.done) throw new Error('the OpenAI stream ended before any text');
      oText += next.value.choices[0]?.delta?.content ?? '';
    }
    const aStream = await anthropic(n.url, key).messages.create({ model: 'mock-slow', max_tokens: 8, messages, stream: true });
    const aEvents = aStream[Symbol.asyncIterator]();
    for (;;) {
      const next = await aEvents.next();
      if (next.done) throw new Error('the Anthropic stream ended before any text');
      if (next.value.type === 'content_block_delta') break;
    }
    // A JSON call the provider never answers.
    const json = caught(openai(n.url, key).chat.completions.create({ model: 'mock-hang-first-byte', messages }));
    while (!vendor.requests.some((r) => (r.body as { model?: string } | undefined)?.model === 'mock-hang-first-byte')) await new Promise((r) => setTimeout(r, 10));

    const closing = stop();
    const drainOpenAI = async (): Promise<void> => {
      for (let next = await oChunks.next(); !next.done; next = await oChunks.next()) oText += next.value.choices[0]?.delta?.content ?? '';
    };
    const drainAnthropic = async (): Promise<void> => {
      for (let next = await aEvents.next(); !next.done; next = await aEvents.next());
    };
    const [oErr, aErr, jErr] = await Promise.all([caught(drainOpenAI()), caught(drainAnthropic()), json]);
    await closing;

    // Not a silent truncation: each SDK raises the error event it got.
    expect(oErr).toBeInstanceOf(OpenAIErrors.APIError);
    expect((oErr as OpenAIErrors.APIError).error).toMatchObject({ code: 'node_shutting_down', type: 'server_error' });
    expect(aErr).toBeInstanceOf(AnthropicErrors.APIError);
    expect((aErr as AnthropicErrors.APIError).error).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
    expect(jErr).toBeInstanceOf(OpenAIErrors.InternalServerError);
    expect((jErr as OpenAIErrors.APIError).status).toBe(503);
    expect((jErr as OpenAIErrors.APIError).code).toBe('node_shutting_down');
    expect(Number((jErr as OpenAIErrors.APIError).headers?.get('retry-after'))).toBeGreaterThan(0);

    // Metered before storage closed: the two streams with the tokens they had delivered, the JSON call as a 503.
    const { rows } = await recordedCalls(setup, tenant.org, id);
    const cut = rows.filter((r) => r.error_code === 'NODE_SHUTTING_DOWN');
    expect(cut.reduce((sum, r) => sum + r.requests, 0)).toBe(3);
    expect(cut.filter((r) => r.status === 200).every((r) => Number(r.output_tokens) > 0)).toBe(true);
    expect(cut.filter((r) => r.status === 200).reduce((sum, r) => sum + r.requests, 0)).toBe(2);
    expect(cut.filter((r) => r.status === 503).reduce((sum, r) => sum + r.requests, 0)).toBe(1);
  });
});
