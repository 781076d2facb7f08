/**
 * The gateway proxy against a real mock vendor, called through a minimal HTTP server with the stock
 * `openai` and `@anthropic-ai/sdk` clients (GW-2, GW-3, GW-4): pass-through, usage, retries before
 * the first byte only, fallback, circuit breaker, timeouts, client aborts, broken streams, key
 * scrubbing and backpressure.
 */
import Anthropic, { APIError as AnthropicAPIError } from '@anthropic-ai/sdk';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import OpenAI, { APIError as OpenAIAPIError } from 'openai';
import type { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ProviderConfig } from '../../src/gateway/providers.ts';
import { createGatewayProxy, type ForwardRequest, type ForwardResult, type ForwardTarget, type GatewayProxy } from '../../src/gateway/proxy.ts';
import { createUpstreamAgent } from '../../src/gateway/upstream.ts';
import type { WireFormat } from '../../src/gateway/usage.ts';
import { MOCK_COMPLETION_TOKENS, MOCK_PROMPT_TOKENS, MOCK_TEXT, startMockVendor, type MockVendor } from '../support/mock-vendor.ts';

// Vendor keys are built at run time: the repository's secret scan must not flag this file.
const OPENAI_KEY = ['sk', 'test', 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8'].join('-');
const ANTHROPIC_KEY = ['sk', 'ant', 'test', 'Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4'].join('-');
const AZURE_KEY = ['azure', 'Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6'].join('-');
const CLIENT_KEY = 'gatehouse-test-client';

let vendor: MockVendor;
let agent: Agent;
let proxy: GatewayProxy;
let fastProxy: GatewayProxy;
let tinyProxy: GatewayProxy;
let server: Server;
let gateway: string;

/** How the test server turns a call into a forward request; each test sets what it needs. */
let plan: (path: string, body: Record<string, unknown> | undefined) => { proxy?: GatewayProxy; targets: ForwardTarget[]; signal?: AbortSignal };
let results: ForwardResult[] = [];
let providerSeq = 0;

function provider(kind: ProviderConfig['kind'], extra: Partial<ProviderConfig> = {}): ProviderConfig {
  // A fresh id per test keeps one test's failures out of another's circuit breaker.
  return { id: `${kind}-${++providerSeq}`, kind, baseUrl: vendor.url, ...extra };
}

function target(kind: ProviderConfig['kind'], model: string, extra: Partial<ProviderConfig> = {}): ForwardTarget {
  const apiKey = kind === 'anthropic' ? ANTHROPIC_KEY : kind === 'azure-openai' ? AZURE_KEY : OPENAI_KEY;
  return { provider: provider(kind, extra), apiKey, model };
}

/** Routes every call to its own kind of provider, with the model the client asked for. */
function samePlan(): typeof plan {
  return (path, body) => {
    const model = typeof body?.model === 'string' ? body.model : '';
    return { targets: [target(path === '/v1/messages' ? 'anthropic' : 'openai', model)] };
  };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
}

async function waitForResults(n: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (results.length < n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} forward results, got ${results.length}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

beforeAll(async () => {
  vendor = await startMockVendor({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY, azureKey: AZURE_KEY, slowChunkMs: 40 });
  agent = createUpstreamAgent({ allowedHosts: ['127.0.0.1:*'], allowedCidrs: ['127.0.0.1/32'], allowInsecureHttp: true, connectTimeoutMs: 1_000 });
  const shared = { dispatcher: agent, random: () => 0.5 };
  proxy = createGatewayProxy({
    ...shared,
    timeouts: { firstByteMs: 2_000, firstByteNonStreamMs: 2_000, idleMs: 2_000, totalMs: 8_000 },
    retry: { maxRetries: 2, baseDelayMs: 5, maxDelayMs: 40 },
    breaker: { volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 400, windowMs: 10_000 },
  });
  fastProxy = createGatewayProxy({
    ...shared,
    timeouts: { firstByteMs: 250, firstByteNonStreamMs: 250, idleMs: 300, totalMs: 3_000 },
    retry: { maxRetries: 1, baseDelayMs: 5, maxDelayMs: 40 },
    breaker: { volumeThreshold: 50 },
  });
  // A short total limit and a small JSON buffer, to reach the paths that need them.
  tinyProxy = createGatewayProxy({
    ...shared,
    timeouts: { firstByteMs: 5_000, firstByteNonStreamMs: 5_000, idleMs: 5_000, totalMs: 400 },
    retry: { maxRetries: 0 },
    maxJsonBufferBytes: 1024,
  });

  server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://gw');
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const format: WireFormat = url.pathname === '/v1/messages' ? 'anthropic' : 'openai';
      const chosen = plan(url.pathname, body);
      const request: ForwardRequest = {
        format,
        path: url.pathname,
        method: req.method === 'GET' ? 'GET' : 'POST',
        ...(body ? { body } : {}),
        stream: body?.stream === true,
        targets: chosen.targets,
        ...(chosen.signal ? { signal: chosen.signal } : {}),
        requestId: 'req-test',
      };
      results.push(await (chosen.proxy ?? proxy).forward(request, res));
    })().catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  gateway = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  proxy.close();
  fastProxy.close();
  tinyProxy.close();
  await agent.close();
  await vendor.close();
});

beforeEach(() => {
  vendor.reset();
  results = [];
  plan = samePlan();
});

function openai(): OpenAI {
  return new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gateway}/v1`, maxRetries: 0, timeout: 10_000 });
}
function anthropic(): Anthropic {
  return new Anthropic({ apiKey: CLIENT_KEY, baseURL: gateway, maxRetries: 0, timeout: 10_000 });
}

async function rawPost(path: string, body: unknown): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${gateway}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

const messages = [{ role: 'user' as const, content: 'Say hello.' }];

describe('pass-through', () => {
  it('OpenAI JSON: the client gets the vendor\'s bytes unchanged; the vendor gets the vendor key, not the client\'s', async () => {
    const direct = await rawPost('/v1/chat/completions', { model: 'mock-model', messages });
    expect(direct.status).toBe(200);
    const upstream = vendor.requests[0];
    expect(direct.text).toBe(upstream?.response);
    expect(upstream?.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect(JSON.stringify(upstream?.headers)).not.toContain(CLIENT_KEY);
    await waitForResults(1);
    expect(results[0]).toMatchObject({ status: 200, attempts: 1, model: 'mock-model', usage: { inputTokens: MOCK_PROMPT_TOKENS, outputTokens: MOCK_COMPLETION_TOKENS, estimated: false } });

    const completion = await openai().chat.completions.create({ model: 'mock-model', messages });
    expect(completion.choices[0]?.message.content).toBe(MOCK_TEXT);
  });

  it('OpenAI stream: chunks relayed; include_usage added upstream and its chunk removed for a client that did not ask', async () => {
    const stream = await openai().chat.completions.create({ model: 'mock-model', messages, stream: true });
    let text = '';
    for await (const chunk of stream) {
      expect(chunk.choices.length).toBeGreaterThan(0);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe(MOCK_TEXT);
    expect(vendor.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    await waitForResults(1);
    expect(results[0]?.usage).toEqual({ inputTokens: MOCK_PROMPT_TOKENS, outputTokens: MOCK_COMPLETION_TOKENS, estimated: false });
    // Byte for byte, except the removed usage event.
    const raw = await rawPost('/v1/chat/completions', { model: 'mock-model', messages, stream: true });
    const sent = vendor.requests[1]?.response ?? '';
    expect(raw.text).toBe(sent.replace(/data: \{[^\n]*"choices":\[\],"usage"[^\n]*\n\n/, ''));
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/);
  });

  it('a stream whose first event is late gets its headers at once: they wait for the first event only briefly', async () => {
    const started = performance.now();
    const res = await fetch(`${gateway}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-slow-first-event', messages, stream: true }),
    });
    const headersAt = performance.now() - started;
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    const bodyAt = performance.now() - started;
    // The provider sends its headers and then waits 300 ms before the first event: the client's
    // headers must not wait with it.
    expect(bodyAt - headersAt).toBeGreaterThan(150);
    expect(text).toContain('"content":" mock"');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('OpenAI stream with include_usage asked by the client: byte for byte, usage chunk included', async () => {
    const raw = await rawPost('/v1/chat/completions', { model: 'mock-model', messages, stream: true, stream_options: { include_usage: true } });
    expect(raw.text).toBe(vendor.requests[0]?.response);
    expect(raw.text).toContain('"usage":{"prompt_tokens":17');
    const stream = await openai().chat.completions.create({ model: 'mock-model', messages, stream: true, stream_options: { include_usage: true } });
    let usage: unknown = null;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    expect(usage).toMatchObject({ prompt_tokens: MOCK_PROMPT_TOKENS, completion_tokens: MOCK_COMPLETION_TOKENS });
  });

  it('Anthropic JSON and stream through the stock SDK, with x-api-key and anthropic-version upstream', async () => {
    const message = await anthropic().messages.create({ model: 'mock-model', max_tokens: 50, messages });
    expect(message.content[0]?.type === 'text' ? message.content[0].text : '').toBe(MOCK_TEXT);
    expect(vendor.requests[0]?.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    expect(vendor.requests[0]?.headers['anthropic-version']).toBe('2023-06-01');
    expect(vendor.requests[0]?.headers.authorization).toBeUndefined();

    const stream = anthropic().messages.stream({ model: 'mock-model', max_tokens: 50, messages });
    let text = '';
    stream.on('text', (t) => (text += t));
    const final = await stream.finalMessage();
    expect(text).toBe(MOCK_TEXT);
    expect(final.usage.output_tokens).toBe(MOCK_COMPLETION_TOKENS);
    await waitForResults(2);
    expect(results.map((r) => r.usage)).toEqual([
      { inputTokens: MOCK_PROMPT_TOKENS, outputTokens: MOCK_COMPLETION_TOKENS, estimated: false },
      { inputTokens: MOCK_PROMPT_TOKENS, outputTokens: MOCK_COMPLETION_TOKENS, estimated: false },
    ]);
    // Anthropic's stream is relayed unchanged.
    const raw = await rawPost('/v1/messages', { model: 'mock-model', max_tokens: 50, messages, stream: true });
    expect(raw.text).toBe(vendor.requests[2]?.response);
  });

  it('Azure OpenAI: deployment path, api-version and api-key header', async () => {
    plan = (_path, body) => ({
      targets: [target('azure-openai', String(body?.model), { deployments: { 'gpt-x': 'dep-1' }, apiVersion: '2024-10-21' })],
    });
    const completion = await openai().chat.completions.create({ model: 'gpt-x', messages });
    expect(completion.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(vendor.requests[0]?.url).toBe('/openai/deployments/dep-1/chat/completions?api-version=2024-10-21');
    expect(vendor.requests[0]?.headers['api-key']).toBe(AZURE_KEY);
    expect(vendor.requests[0]?.headers.authorization).toBeUndefined();
    const stream = await openai().chat.completions.create({ model: 'gpt-x', messages, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(MOCK_TEXT);
  });

  it('embeddings and models', async () => {
    const embeddings = await openai().embeddings.create({ model: 'mock-embed', input: ['a', 'b'] });
    expect(embeddings.data).toHaveLength(2);
    const models = await openai().models.list();
    expect(models.data.map((m) => m.id)).toContain('mock-model');
    await waitForResults(2);
    expect(results[0]?.usage).toEqual({ inputTokens: 10, outputTokens: 0, estimated: false });
    expect(vendor.requests[1]).toMatchObject({ method: 'GET', url: '/v1/models' });
  });

  it('estimates usage when the provider reports none, and marks it', async () => {
    await openai().chat.completions.create({ model: 'mock-no-usage', messages });
    const stream = await openai().chat.completions.create({ model: 'mock-no-usage', messages, stream: true });
    for await (const _ of stream) void _;
    await waitForResults(2);
    for (const r of results) expect(r.usage).toEqual({ inputTokens: 3, outputTokens: 7, estimated: true }); // "Say hello." 10 chars; 27 chars of text
  });
});

describe('errors reach the SDKs as their usual exceptions', () => {
  it('an upstream 400 is passed through (OpenAI BadRequestError, Anthropic BadRequestError)', async () => {
    const err = await caught(openai().chat.completions.create({ model: 'mock-400', messages }));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as OpenAIAPIError).message).toContain('mock status 400');
    const aerr = await caught(anthropic().messages.create({ model: 'mock-400', max_tokens: 5, messages }));
    expect(aerr).toBeInstanceOf(Anthropic.BadRequestError);
    expect((aerr as AnthropicAPIError).type).toBe('invalid_request_error');
  });

  it('an upstream 5xx is retried, then becomes a 502 UPSTREAM_ERROR (InternalServerError) without the vendor\'s text', async () => {
    const err = await caught(openai().chat.completions.create({ model: 'mock-500', messages }));
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as OpenAIAPIError).status).toBe(502);
    expect((err as OpenAIAPIError).code).toBe('upstream_error');
    expect((err as OpenAIAPIError).message).not.toContain('mock status');
    expect(vendor.requests).toHaveLength(3);
    const aerr = await caught(anthropic().messages.create({ model: 'mock-503', max_tokens: 5, messages }));
    expect(aerr).toBeInstanceOf(Anthropic.InternalServerError);
    expect((aerr as AnthropicAPIError).status).toBe(502);
    expect((aerr as AnthropicAPIError).type).toBe('api_error');
  });

  it('an upstream 429 becomes UPSTREAM_RATE_LIMITED (RateLimitError) with Retry-After, after retries', async () => {
    const err = await caught(openai().chat.completions.create({ model: 'mock-429', messages }));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as OpenAIAPIError).headers?.get('retry-after')).toBe('0');
    expect(vendor.requests).toHaveLength(3);
  });

  it('an upstream 401 (bad vendor key) is not the client\'s fault: 502 UPSTREAM_AUTH_FAILED, x-should-retry false', async () => {
    plan = () => ({ targets: [{ ...target('openai', 'mock-model'), apiKey: `${OPENAI_KEY}-revoked` }] });
    const err = await caught(openai().chat.completions.create({ model: 'mock-model', messages }));
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as OpenAIAPIError).status).toBe(502);
    expect((err as OpenAIAPIError).code).toBe('upstream_auth_failed');
    expect((err as OpenAIAPIError).headers?.get('x-should-retry')).toBe('false');
    expect(vendor.requests).toHaveLength(1);
  });

  it('the vendor key echoed in an error body never reaches the client, whole or in part', async () => {
    const raw = await rawPost('/v1/chat/completions', { model: 'mock-echo-key', messages });
    expect(raw.status).toBe(400);
    expect(vendor.requests[0]?.response).toContain(OPENAI_KEY);
    expect(raw.text).not.toContain(OPENAI_KEY);
    expect(raw.text).not.toContain(OPENAI_KEY.slice(2, 12));
    expect(raw.text).toContain('[REDACTED]');
    expect(() => JSON.parse(raw.text)).not.toThrow();
    const aerr = await caught(anthropic().messages.create({ model: 'mock-echo-key', max_tokens: 5, messages }));
    expect(aerr).toBeInstanceOf(Anthropic.BadRequestError);
    expect(JSON.stringify(aerr)).not.toContain(ANTHROPIC_KEY.slice(0, 12));
    expect((aerr as Error).message).not.toContain(ANTHROPIC_KEY.slice(5, 15));
  });

  it('a host off the allowlist is refused without a request: 502 UPSTREAM_HOST_NOT_ALLOWED', async () => {
    plan = () => ({ targets: [target('openai', 'mock-model', { baseUrl: 'http://example.invalid' })] });
    const err = await caught(openai().chat.completions.create({ model: 'mock-model', messages }));
    expect((err as OpenAIAPIError).status).toBe(502);
    expect((err as OpenAIAPIError).code).toBe('upstream_host_not_allowed');
    await waitForResults(1);
    expect(results[0]).toMatchObject({ errorCode: 'UPSTREAM_HOST_NOT_ALLOWED', attempts: 1 });
  });
});

describe('timeouts, retries, breaker, fallback', () => {
  it('first-byte timeout: 504 UPSTREAM_TIMEOUT (GatewayTimeoutError for Anthropic), each attempt aborted upstream', async () => {
    plan = (path, body) => ({ proxy: fastProxy, targets: [target(path === '/v1/messages' ? 'anthropic' : 'openai', String(body?.model))] });
    const started = Date.now();
    const err = await caught(openai().chat.completions.create({ model: 'mock-hang-first-byte', messages }));
    expect((err as OpenAIAPIError).status).toBe(504);
    expect((err as OpenAIAPIError).code).toBe('upstream_timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(vendor.requests).toHaveLength(2); // maxRetries 1
    await vendor.waitFor(() => vendor.abortedRequests === 2);
    const aerr = await caught(anthropic().messages.create({ model: 'mock-hang-first-byte', max_tokens: 5, messages }));
    expect(aerr).toBeInstanceOf(Anthropic.GatewayTimeoutError);
    expect((aerr as AnthropicAPIError).type).toBe('timeout_error');
  });

  it('retries happen before the first byte: a flaky provider succeeds on the third attempt', async () => {
    const completion = await openai().chat.completions.create({ model: 'mock-flaky', messages });
    expect(completion.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(vendor.requests).toHaveLength(3);
    await waitForResults(1);
    expect(results[0]).toMatchObject({ status: 200, attempts: 3 });
  });

  it('no retry after the first byte: a stream broken midway ends with an OpenAI error event, and one upstream request', async () => {
    const raw = await rawPost('/v1/chat/completions', { model: 'mock-break-midstream', messages, stream: true });
    expect(raw.status).toBe(200);
    expect(vendor.requests).toHaveLength(1);
    const events = raw.text.trim().split('\n\n');
    expect(events.length).toBe(4);
    expect(JSON.parse(events[3]?.replace(/^data: /, '') ?? '')).toEqual({
      error: { message: 'The AI provider failed to answer.', type: 'server_error', param: null, code: 'upstream_error' },
    });
    await waitForResults(1);
    expect(results[0]).toMatchObject({ status: 200, errorCode: 'UPSTREAM_ERROR', attempts: 1, usage: { estimated: true } });

    const stream = await openai().chat.completions.create({ model: 'mock-break-midstream', messages, stream: true });
    const err = await caught((async () => {
      for await (const _ of stream) void _;
    })());
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as OpenAIAPIError).message).toContain('The AI provider failed to answer.');
  });

  it('a stream broken in the middle of an event: the half event is dropped, the error event stays parseable', async () => {
    const raw = await rawPost('/v1/chat/completions', { model: 'mock-break-midevent', messages, stream: true });
    const sent = vendor.requests[0]?.response ?? '';
    const complete = sent.slice(0, sent.lastIndexOf('\n\n') + 2);
    expect(raw.text.startsWith(complete)).toBe(true);
    expect(raw.text.slice(complete.length)).toBe('data: {"error":{"message":"The AI provider failed to answer.","type":"server_error","param":null,"code":"upstream_error"}}\n\n');
    const stream = await openai().chat.completions.create({ model: 'mock-break-midevent', messages, stream: true });
    const err = await caught((async () => {
      for await (const _ of stream) void _;
    })());
    expect(err).toBeInstanceOf(OpenAI.APIError);
  });

  it('a broken Anthropic stream ends with `event: error`, which the SDK raises', async () => {
    const raw = await rawPost('/v1/messages', { model: 'mock-break-midstream', max_tokens: 5, messages, stream: true });
    expect(raw.text.endsWith('event: error\ndata: {"type":"error","error":{"type":"api_error","message":"The AI provider failed to answer."},"request_id":"req-test"}\n\n')).toBe(true);
    const stream = anthropic().messages.stream({ model: 'mock-break-midstream', max_tokens: 5, messages });
    const err = await caught(stream.finalMessage());
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as AnthropicAPIError).type).toBe('api_error');
  });

  it('a stream that stalls midway ends with a timeout error event (never hangs)', async () => {
    plan = (_p, body) => ({ proxy: fastProxy, targets: [target('openai', String(body?.model))] });
    const started = Date.now();
    const raw = await rawPost('/v1/chat/completions', { model: 'mock-hang-midstream', messages, stream: true });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(raw.text).toContain('"code":"upstream_timeout"');
    await vendor.waitFor(() => vendor.abortedRequests === 1);
  });

  it('the breaker opens after repeated failures, fails fast with 503 UPSTREAM_UNAVAILABLE, and closes after a good probe', async () => {
    const shared = target('openai', 'mock-500');
    let model = 'mock-500';
    plan = () => ({ targets: [{ ...shared, model }] });
    await caught(openai().chat.completions.create({ model, messages })); // 3 failed attempts: opens
    expect(proxy.breakerState(shared.provider.id)).toBe('open');
    const before = vendor.requests.length;
    const started = Date.now();
    const err = await caught(openai().chat.completions.create({ model, messages }));
    expect(Date.now() - started).toBeLessThan(200);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as OpenAIAPIError).status).toBe(503);
    expect((err as OpenAIAPIError).code).toBe('upstream_unavailable');
    expect(Number((err as OpenAIAPIError).headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(vendor.requests.length).toBe(before);

    await new Promise((r) => setTimeout(r, 450)); // resetTimeout 400: half-open
    model = 'mock-model';
    const ok = await openai().chat.completions.create({ model, messages });
    expect(ok.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(proxy.breakerState(shared.provider.id)).toBe('closed');
  });

  it('falls back to the next target on connection errors, bad credentials and an open breaker', async () => {
    const dead = target('openai', 'mock-model', { baseUrl: 'http://127.0.0.1:1' });
    const badKey = { ...target('openai', 'mock-model'), apiKey: 'wrong-key-value' };
    const good = target('openai', 'mock-model');
    plan = () => ({ targets: [dead, badKey, good] });
    const completion = await openai().chat.completions.create({ model: 'mock-model', messages });
    expect(completion.choices[0]?.message.content).toBe(MOCK_TEXT);
    await waitForResults(1);
    // 3 attempts on the dead one (connect refused, retried), 1 on the bad key, 1 good.
    expect(results[0]).toMatchObject({ status: 200, attempts: 5, model: 'mock-model' });
    expect(results[0]?.providerId).toBe(good.provider.id);
  });

  it('a 4xx answer is final: no retry, no fallback', async () => {
    plan = (_p, body) => ({ targets: [target('openai', 'mock-400'), target('openai', String(body?.model))] });
    const err = await caught(openai().chat.completions.create({ model: 'mock-model', messages }));
    expect((err as OpenAIAPIError).status).toBe(400);
    expect(vendor.requests).toHaveLength(1);
  });

  it('when every target fails, the client gets the last one\'s failure', async () => {
    plan = () => ({ targets: [target('openai', 'mock-500'), target('openai', 'mock-429')] });
    const err = await caught(openai().chat.completions.create({ model: 'mock-model', messages }));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as OpenAIAPIError).code).toBe('upstream_rate_limited');
    await waitForResults(1);
    expect(results[0]).toMatchObject({ status: 429, attempts: 6, errorCode: 'UPSTREAM_RATE_LIMITED', model: 'mock-429' });
  });
});

describe('limits and cancellation', () => {
  it('the total time limit ends a stream that is still going with a timeout error event', async () => {
    plan = (_p, body) => ({ proxy: tinyProxy, targets: [target('openai', String(body?.model))] });
    const started = Date.now();
    const raw = await rawPost('/v1/chat/completions', { model: 'mock-hang-midstream', messages, stream: true });
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(raw.text.trim().split('\n\n').at(-1)).toContain('"code":"upstream_timeout"');
    await vendor.waitFor(() => vendor.abortedRequests === 1);
    await waitForResults(1);
    expect(results[0]).toMatchObject({ status: 200, errorCode: 'UPSTREAM_TIMEOUT', clientClosed: false });
  });

  it('a JSON answer larger than the buffer is streamed through unchanged, usage read from its tail', async () => {
    plan = (_p, body) => ({ proxy: tinyProxy, targets: [target('openai', String(body?.model))] });
    const raw = await rawPost('/v1/chat/completions', { model: 'mock-large', messages, max_tokens: 300 });
    expect(raw.status).toBe(200);
    expect(raw.text.length).toBeGreaterThan(300_000);
    expect(raw.text).toBe(vendor.requests[0]?.response);
    await waitForResults(1);
    expect(results[0]?.usage).toEqual({ inputTokens: MOCK_PROMPT_TOKENS, outputTokens: 300, estimated: false });
  });

  it('a JSON answer cut short is retried (nothing was sent yet), then reported as 502', async () => {
    const err = await caught(openai().chat.completions.create({ model: 'mock-break-midstream', messages }));
    expect((err as OpenAIAPIError).status).toBe(502);
    expect(vendor.requests).toHaveLength(3);
  });

  it('the caller\'s signal (e.g. shutdown) cancels the call and aborts upstream', async () => {
    const controller = new AbortController();
    plan = (_p, body) => ({ targets: [target('openai', String(body?.model))], signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const raw = await rawPost('/v1/chat/completions', { model: 'mock-hang-first-byte', messages });
    expect(raw.status).toBe(502);
    await vendor.waitFor(() => vendor.abortedRequests === 1);
    await waitForResults(1);
    expect(results[0]).toMatchObject({ status: 502, errorCode: 'UPSTREAM_ERROR', clientClosed: false });
  });

  it('refuses a chain whose provider speaks another format (a routing bug, not a client error)', async () => {
    plan = () => ({ targets: [target('anthropic', 'mock-model')] });
    const raw = await rawPost('/v1/chat/completions', { model: 'mock-model', messages });
    expect(raw.status).toBe(500);
    expect(raw.text).toContain('cannot serve a route in the openai format');
    expect(vendor.requests).toHaveLength(0);
  });
});

describe('client disconnects and backpressure', () => {
  it('a client that leaves mid-stream aborts the upstream request at once, not at the next chunk', async () => {
    const controller = new AbortController();
    // The provider sends 3 events and then thinks (sends nothing) for longer than this test waits.
    const res = await fetch(`${gateway}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-hang-midstream', messages, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body?.getReader();
    await reader?.read();
    controller.abort();
    await vendor.waitFor(() => vendor.abortedRequests === 1, 1_000);
    await waitForResults(1);
    expect(results[0]).toMatchObject({ clientClosed: true, status: 200 });
    expect(results[0]?.usage.estimated).toBe(true);
  });

  it('a client that leaves before the first byte aborts the upstream request too', async () => {
    const controller = new AbortController();
    const pending = fetch(`${gateway}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-hang-first-byte', messages }),
      signal: controller.signal,
    }).catch(() => null);
    await vendor.waitFor(() => vendor.requests.length === 1);
    controller.abort();
    await pending;
    await vendor.waitFor(() => vendor.abortedRequests === 1);
    await waitForResults(1);
    expect(results[0]).toMatchObject({ clientClosed: true, status: 499, attempts: 1 });
  });

  it('a paused client does not make the proxy buffer the stream: the upstream is held back instead', async () => {
    const events = 40_000; // about 41 MB of SSE
    const body = JSON.stringify({ model: 'mock-large', messages, stream: true, max_tokens: events });
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    socket.pause();
    await vendor.waitFor(() => vendor.streamedBytes > 0);
    // Let every buffer on the way fill up.
    let last = -1;
    while (vendor.streamedBytes !== last) {
      last = vendor.streamedBytes;
      await new Promise((r) => setTimeout(r, 200));
    }
    const total = events * 1100;
    expect(vendor.streamedBytes).toBeLessThan(total / 2);

    let received = 0;
    socket.on('data', (c: Buffer) => (received += c.length));
    socket.resume();
    await once(socket, 'end');
    await waitForResults(1);
    const result = results[0] as ForwardResult;
    expect(result.errorCode).toBeUndefined();
    expect(received).toBeGreaterThan(total * 0.9);
    // What waited in the proxy's own write buffer stayed around one chunk, not the stream.
    expect(result.peakBufferedBytes).toBeLessThan(512 * 1024);
    expect(result.usage).toEqual({ inputTokens: MOCK_PROMPT_TOKENS, outputTokens: events, estimated: false });
  });
});
