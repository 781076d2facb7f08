/**
 * The AI gateway through the stock `openai` and `@anthropic-ai/sdk` clients (GW-2..4, ABUSE-1): an
 * in-process server on 127.0.0.1 with Gatehouse API keys, the mock vendor as upstream. Success
 * paths in JSON and SSE, then every bad input and fault of issue 6 as the SDKs raise it (their
 * usual exception class and status), and vendor keys never in a response or a log.
 */
import Anthropic, * as AnthropicErrors from '@anthropic-ai/sdk';
import OpenAI, * as OpenAIErrors from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY_PATTERN, generateApiKey } from '../../src/gateway/api-key-format.ts';
import { MOCK_COMPLETION_TOKENS, MOCK_PROMPT_TOKENS, MOCK_TEXT } from '../support/mock-vendor.ts';
import {
  createApiKey,
  createOrgAndWorkspace,
  createWorkspace,
  expectStatus,
  recordResponses,
  startGatewayApp,
  VENDOR_KEYS,
  type GatewayTestApp,
  type ResponseRecorder,
} from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const BODY_LIMIT = 64 * 1024;
const messages = [{ role: 'user' as const, content: 'Say hello.' }];

let t: GatewayTestApp;
let owner: SignedInUser;
let org: string;
let ws: string;
let key: string;
let recorder: ResponseRecorder;
// Moves the server's clock (key expiry) without touching the wall clock.
let skewMs = 0;

beforeAll(async () => {
  t = await startGatewayApp({
    now: () => Date.now() + skewMs,
    overrides: {
      'gateway.bodyLimitBytes': BODY_LIMIT,
      'gateway.timeouts.firstByteMs': 500,
      'gateway.timeouts.firstByteNonStreamMs': 500,
      'gateway.timeouts.idleMs': 1_000,
      'gateway.timeouts.totalMs': 5_000,
      'gateway.retry.maxRetries': 1,
      'gateway.retry.baseDelayMs': 5,
      'gateway.retry.maxDelayMs': 40,
      'gateway.breaker.volumeThreshold': 6,
      'gateway.prices': [{ model: 'mock-model', inputPerMillion: '1', outputPerMillion: '2.5' }],
    },
  });
  owner = await signUpUser(t.app, t.mail, 'gateway-owner@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Gateway API'));
  key = (await createApiKey(t, owner, org, ws)).key;
  recorder = recordResponses();
});

afterAll(async () => {
  await t?.close();
});

function openai(apiKey = key, extra: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}): OpenAI {
  return new OpenAI({ apiKey, baseURL: `${t.url}/v1`, maxRetries: 0, timeout: 10_000, fetch: recorder.fetch, ...extra });
}
function anthropic(apiKey = key, extra: Partial<ConstructorParameters<typeof Anthropic>[0]> = {}): Anthropic {
  return new Anthropic({ apiKey, baseURL: t.url, maxRetries: 0, timeout: 10_000, fetch: recorder.fetch, ...extra });
}

/** The rejection of `promise` (fails the test when it resolves). */
async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

/** A fetch that sends `body` instead of what the SDK built (malformed JSON), through the recorder. */
function replacingBody(body: string): typeof fetch {
  return (input, init) => recorder.fetch(input, { ...init, body });
}

/** A fetch that drops the credentials the SDK sends. */
const withoutCredentials: typeof fetch = (input, init) => {
  const headers = new Headers(init?.headers);
  headers.delete('authorization');
  headers.delete('x-api-key');
  return recorder.fetch(input, { ...init, headers });
};

describe('OpenAI SDK', () => {
  it('chat completion (JSON): the vendor\'s answer, with the vendor key sent upstream instead of the Gatehouse key', async () => {
    t.vendor.reset();
    const completion = await openai().chat.completions.create({ model: 'mock-model', messages });
    expect(completion.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(completion.usage).toMatchObject({ prompt_tokens: MOCK_PROMPT_TOKENS, completion_tokens: MOCK_COMPLETION_TOKENS });
    const upstream = t.vendor.requests[0];
    expect(upstream?.headers.authorization).toBe(`Bearer ${VENDOR_KEYS.openai}`);
    expect(JSON.stringify(upstream?.headers)).not.toContain(key);
  });

  it('chat completion (stream): text deltas as they arrive; the usage chunk the gateway asked for is not passed on', async () => {
    const stream = await openai().chat.completions.create({ model: 'mock-model', messages, stream: true });
    let text = '';
    for await (const chunk of stream) {
      expect(chunk.choices.length).toBeGreaterThan(0);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe(MOCK_TEXT);
  });

  it('embeddings', async () => {
    // The SDK asks for base64 unless told otherwise; the mock vendor answers floats only.
    const result = await openai().embeddings.create({ model: 'mock-embed', input: ['one', 'two'], encoding_format: 'float' });
    expect(result.data).toHaveLength(2);
    expect(result.data[0]?.embedding).toHaveLength(8);
  });

  it('models: the exact model names the workspace can call and its aliases', async () => {
    expectStatus(
      await t.app.inject({
        method: 'PUT',
        url: `/v1/orgs/${org}/workspaces/${ws}/models`,
        payload: { aliases: [{ name: 'fast', targets: [{ model: 'mock-model' }] }] },
        headers: owner.auth,
      }),
      200,
    );
    const ids: string[] = [];
    for await (const model of openai().models.list()) ids.push(model.id);
    expect(ids).toEqual(expect.arrayContaining(['fast', 'mock-model', 'mock-embed']));
    expect(ids.some((id) => id.includes('*'))).toBe(false);
    const completion = await openai().chat.completions.create({ model: 'fast', messages });
    expect(completion.choices[0]?.message.content).toBe(MOCK_TEXT);
  });
});

describe('Anthropic SDK', () => {
  it('messages (JSON), with the Gatehouse key as x-api-key', async () => {
    t.vendor.reset();
    const message = await anthropic().messages.create({ model: 'mock-model', max_tokens: 64, messages });
    expect(message.content).toEqual([{ type: 'text', text: MOCK_TEXT }]);
    expect(message.usage.input_tokens).toBe(MOCK_PROMPT_TOKENS);
    expect(t.vendor.requests[0]?.headers['x-api-key']).toBe(VENDOR_KEYS.anthropic);
  });

  it('messages (stream): text events, then the final usage', async () => {
    const stream = anthropic().messages.stream({ model: 'mock-model', max_tokens: 64, messages });
    let text = '';
    stream.on('text', (delta) => {
      text += delta;
    });
    const final = await stream.finalMessage();
    expect(text).toBe(MOCK_TEXT);
    expect(final.usage.output_tokens).toBe(MOCK_COMPLETION_TOKENS);
  });
});

describe('bad input and faults, as the SDKs raise them', () => {
  it('malformed JSON: 400 BadRequestError from both SDKs', async () => {
    const a = await caught(openai(key, { fetch: replacingBody('{"model": "mock-model", "messages": [') }).chat.completions.create({ model: 'mock-model', messages }));
    expect(a).toBeInstanceOf(OpenAIErrors.BadRequestError);
    expect((a as OpenAIErrors.APIError).code).toBe('invalid_json');
    const b = await caught(anthropic(key, { fetch: replacingBody('{"model": ') }).messages.create({ model: 'mock-model', max_tokens: 8, messages }));
    expect(b).toBeInstanceOf(AnthropicErrors.BadRequestError);
    expect((b as AnthropicErrors.APIError).error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
  });

  it('missing model: 400 BadRequestError naming the field', async () => {
    const err = await caught(openai().chat.completions.create({ messages } as never));
    expect(err).toBeInstanceOf(OpenAIErrors.BadRequestError);
    expect((err as Error).message).toContain('body.model');
    expect(await caught(anthropic().messages.create({ max_tokens: 8, messages } as never))).toBeInstanceOf(AnthropicErrors.BadRequestError);
  });

  it('unknown model: 404 NotFoundError (model_not_found) from both SDKs', async () => {
    const err = await caught(openai().chat.completions.create({ model: 'no-such-model', messages }));
    expect(err).toBeInstanceOf(OpenAIErrors.NotFoundError);
    expect((err as OpenAIErrors.APIError).code).toBe('model_not_found');
    expect(await caught(anthropic().messages.create({ model: 'no-such-model', max_tokens: 8, messages }))).toBeInstanceOf(AnthropicErrors.NotFoundError);
    // A model only OpenAI-format providers serve is not found on the Anthropic route.
    expect(await caught(anthropic().messages.create({ model: 'mock-embed', max_tokens: 8, messages }))).toBeInstanceOf(AnthropicErrors.NotFoundError);
  });

  it('a model the workspace may not call: 404 NotFoundError, the same answer as an unknown model', async () => {
    const narrow = await createWorkspace(t, owner, org, 'narrow');
    expectStatus(await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${narrow}/models`, payload: { allowedModels: ['mock-embed'] }, headers: owner.auth }), 200);
    const narrowKey = (await createApiKey(t, owner, org, narrow)).key;
    const err = await caught(openai(narrowKey).chat.completions.create({ model: 'mock-model', messages }));
    expect(err).toBeInstanceOf(OpenAIErrors.NotFoundError);
    expect((err as Error).message).toContain("The model 'mock-model' does not exist or you do not have access to it.");
    expect((await openai(narrowKey).embeddings.create({ model: 'mock-embed', input: 'x' })).data).toHaveLength(1);
  });

  it('body over the limit: 413 from both SDKs (Anthropic: ContentTooLargeError)', async () => {
    const big = [{ role: 'user' as const, content: 'x'.repeat(BODY_LIMIT + 1) }];
    const err = await caught(openai().chat.completions.create({ model: 'mock-model', messages: big }));
    expect(err).toBeInstanceOf(OpenAIErrors.APIError);
    expect((err as OpenAIErrors.APIError).status).toBe(413);
    expect(await caught(anthropic().messages.create({ model: 'mock-model', max_tokens: 8, messages: big }))).toBeInstanceOf(AnthropicErrors.ContentTooLargeError);
  });

  it('missing, malformed and unknown keys: 401 AuthenticationError (invalid_api_key)', async () => {
    const missing = await caught(openai(key, { fetch: withoutCredentials }).chat.completions.create({ model: 'mock-model', messages }));
    expect(missing).toBeInstanceOf(OpenAIErrors.AuthenticationError);
    expect((missing as OpenAIErrors.APIError).code).toBe('invalid_api_key');
    expect(await caught(anthropic(key, { fetch: withoutCredentials }).messages.create({ model: 'mock-model', max_tokens: 8, messages }))).toBeInstanceOf(
      AnthropicErrors.AuthenticationError,
    );
    expect(await caught(openai('not-a-gatehouse-key').chat.completions.create({ model: 'mock-model', messages }))).toBeInstanceOf(OpenAIErrors.AuthenticationError);
    // Well-formed (valid checksum) but never issued.
    const unknown = generateApiKey().key;
    expect(await caught(openai(unknown).chat.completions.create({ model: 'mock-model', messages }))).toBeInstanceOf(OpenAIErrors.AuthenticationError);
    expect(await caught(anthropic(unknown).messages.create({ model: 'mock-model', max_tokens: 8, messages }))).toBeInstanceOf(AnthropicErrors.AuthenticationError);
    // The right id with a wrong secret.
    const forged = `${key.slice(0, 26)}${generateApiKey().key.slice(26)}`;
    expect(await caught(openai(forged).models.list())).toBeInstanceOf(OpenAIErrors.AuthenticationError);
  });

  it('a revoked key: 401 AuthenticationError on the next call', async () => {
    const revoked = await createApiKey(t, owner, org, ws);
    expect((await openai(revoked.key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys/${revoked.id}`, headers: owner.auth }), 204);
    expect(await caught(openai(revoked.key).chat.completions.create({ model: 'mock-model', messages }))).toBeInstanceOf(OpenAIErrors.AuthenticationError);
    expect(await caught(anthropic(revoked.key).messages.create({ model: 'mock-model', max_tokens: 8, messages }))).toBeInstanceOf(AnthropicErrors.AuthenticationError);
  });

  it('an expired key: 401 AuthenticationError once its expiry passed', async () => {
    const expiring = await createApiKey(t, owner, org, ws, { expiresAt: new Date(Date.now() + skewMs + 60_000).toISOString() });
    expect((await openai(expiring.key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    skewMs += 61_000;
    try {
      expect(await caught(openai(expiring.key).chat.completions.create({ model: 'mock-model', messages }))).toBeInstanceOf(OpenAIErrors.AuthenticationError);
    } finally {
      skewMs -= 61_000;
    }
  });

  it('a key without the route\'s scope: 403 PermissionDeniedError', async () => {
    const embedOnly = (await createApiKey(t, owner, org, ws, { scopes: ['ai:embeddings'] })).key;
    const err = await caught(openai(embedOnly).chat.completions.create({ model: 'mock-model', messages }));
    expect(err).toBeInstanceOf(OpenAIErrors.PermissionDeniedError);
    expect((err as Error).message).toContain('ai:chat');
    expect(await caught(anthropic(embedOnly).messages.create({ model: 'mock-model', max_tokens: 8, messages }))).toBeInstanceOf(AnthropicErrors.PermissionDeniedError);
    expect(await caught(openai(embedOnly).models.list())).toBeInstanceOf(OpenAIErrors.PermissionDeniedError);
    expect((await openai(embedOnly).embeddings.create({ model: 'mock-embed', input: 'x' })).data).toHaveLength(1);
  });

  it('an exhausted monthly limit: 429 RateLimitError (insufficient_quota) with Retry-After until next month, not retried by the SDK', async () => {
    const limited = (await createApiKey(t, owner, org, ws, { monthlyLimit: 2 })).key;
    t.vendor.reset();
    await openai(limited).chat.completions.create({ model: 'mock-model', messages });
    await anthropic(limited).messages.create({ model: 'mock-model', max_tokens: 8, messages });
    const err = await caught(openai(limited, { maxRetries: 2 }).chat.completions.create({ model: 'mock-model', messages }));
    expect(err).toBeInstanceOf(OpenAIErrors.RateLimitError);
    const apiErr = err as OpenAIErrors.APIError;
    expect(apiErr.code).toBe('insufficient_quota');
    expect(Number(apiErr.headers?.get('retry-after'))).toBeGreaterThan(0);
    expect(apiErr.headers?.get('x-should-retry')).toBe('false');
    expect(await caught(anthropic(limited).messages.create({ model: 'mock-model', max_tokens: 8, messages }))).toBeInstanceOf(AnthropicErrors.RateLimitError);
    expect(t.vendor.requests).toHaveLength(2);
  });

  it('the key\'s own rate limit: 429 RateLimitError with Retry-After and RateLimit headers', async () => {
    const slow = (await createApiKey(t, owner, org, ws, { rateLimitPerMinute: 2 })).key;
    const ok = await openai(slow).chat.completions.create({ model: 'mock-model', messages }).withResponse();
    expect(ok.response.headers.get('ratelimit-policy')).toBe('"principal-ai";q=2;w=60');
    await openai(slow).models.list();
    const err = await caught(openai(slow).chat.completions.create({ model: 'mock-model', messages }));
    expect(err).toBeInstanceOf(OpenAIErrors.RateLimitError);
    expect((err as OpenAIErrors.APIError).code).toBe('rate_limit_exceeded');
    expect(Number((err as OpenAIErrors.APIError).headers?.get('retry-after'))).toBeGreaterThan(0);
    expect(await caught(anthropic(slow).messages.create({ model: 'mock-model', max_tokens: 8, messages }))).toBeInstanceOf(AnthropicErrors.RateLimitError);
  });

  it('upstream timeout: 504 (OpenAI InternalServerError, Anthropic GatewayTimeoutError)', async () => {
    const err = await caught(openai().chat.completions.create({ model: 'mock-hang-first-byte', messages }));
    expect(err).toBeInstanceOf(OpenAIErrors.InternalServerError);
    expect((err as OpenAIErrors.APIError).status).toBe(504);
    expect(await caught(anthropic().messages.create({ model: 'mock-hang-first-byte', max_tokens: 8, messages }))).toBeInstanceOf(AnthropicErrors.GatewayTimeoutError);
  });

  it('upstream 5xx: 502 InternalServerError after the retry, with only a generic message', async () => {
    t.vendor.reset();
    const err = await caught(openai().chat.completions.create({ model: 'mock-500', messages }));
    expect(err).toBeInstanceOf(OpenAIErrors.InternalServerError);
    expect((err as OpenAIErrors.APIError).status).toBe(502);
    expect((err as Error).message).toContain('The AI provider failed to answer.');
    expect((err as Error).message).not.toContain('mock status');
    expect(t.vendor.requests).toHaveLength(2);
    expect(await caught(anthropic().messages.create({ model: 'mock-500', max_tokens: 8, messages }))).toBeInstanceOf(AnthropicErrors.InternalServerError);
  });

  it('breaker open: 503 with Retry-After, failing fast without calling the provider', async () => {
    let err: unknown;
    for (let i = 0; i < 6; i++) {
      err = await caught(openai().chat.completions.create({ model: 'mock-503', messages }));
      if ((err as OpenAIErrors.APIError).status === 503) break;
    }
    expect(err).toBeInstanceOf(OpenAIErrors.InternalServerError);
    expect((err as OpenAIErrors.APIError).status).toBe(503);
    expect((err as OpenAIErrors.APIError).code).toBe('upstream_unavailable');
    expect(Number((err as OpenAIErrors.APIError).headers?.get('retry-after'))).toBeGreaterThan(0);
    t.vendor.reset();
    expect(((await caught(openai().chat.completions.create({ model: 'mock-503', messages }))) as OpenAIErrors.APIError).status).toBe(503);
    expect(t.vendor.requests).toHaveLength(0);
    // Other providers are untouched.
    expect((await openai().chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
  });

  it('upstream closing mid-stream: the SDKs raise an error from the terminal SSE error event, no hang', async () => {
    const stream = await openai().chat.completions.create({ model: 'mock-break-midstream', messages, stream: true });
    let chunks = 0;
    const err = await caught(
      (async () => {
        for await (const _chunk of stream) chunks++;
      })(),
    );
    expect(chunks).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(OpenAIErrors.APIError);
    expect((err as Error).message).toContain('The AI provider failed to answer.');

    const anthropicStream = anthropic().messages.stream({ model: 'mock-break-midevent', max_tokens: 8, messages });
    const err2 = await caught(anthropicStream.finalMessage());
    expect(err2).toBeInstanceOf(AnthropicErrors.APIError);
    expect((err2 as Error).message).toContain('The AI provider failed to answer.');
  });
});

describe('vendor keys never leak', () => {
  it('an upstream error that echoes the vendor key reaches the SDK scrubbed', async () => {
    const err = await caught(openai().chat.completions.create({ model: 'mock-echo-key', messages }));
    expect(err).toBeInstanceOf(OpenAIErrors.BadRequestError);
    expect((err as Error).message).toContain('[REDACTED]');
    expect((err as Error).message).not.toContain(VENDOR_KEYS.openai.slice(2, 12));
    const err2 = await caught(anthropic().messages.create({ model: 'mock-echo-key', max_tokens: 8, messages }));
    expect(err2).toBeInstanceOf(AnthropicErrors.BadRequestError);
    expect((err2 as Error).message).not.toContain(VENDOR_KEYS.anthropic.slice(2, 12));
  });

  it('no vendor key in any response this suite received, nor in the logs; no Gatehouse key in the logs', async () => {
    const texts = await recorder.texts();
    expect(texts.length).toBeGreaterThan(40);
    const vendorKeys = Object.values(VENDOR_KEYS);
    for (const text of texts) {
      for (const vendorKey of vendorKeys) {
        expect(text).not.toContain(vendorKey);
        expect(text).not.toContain(vendorKey.slice(-16));
      }
    }
    // Usage and failures were logged; the keys were not.
    await t.node.gateway.meter.flush();
    const log = t.logText();
    expect(log).toContain('gateway call failed');
    for (const vendorKey of vendorKeys) expect(log).not.toContain(vendorKey.slice(-16));
    expect(log).not.toMatch(new RegExp(API_KEY_PATTERN.source));
    expect(log).not.toContain(key.slice(10, 40));
  });
});
