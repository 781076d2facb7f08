import { describe, expect, it } from 'vitest';
import { createSseParser } from '../../../src/gateway/sse.ts';
import { adapterFor, adapterOfKind } from '../../../src/gateway/adapters/index.ts';
import { openaiAdapter } from '../../../src/gateway/adapters/openai.ts';
import type { ProviderConfig } from '../../../src/gateway/adapters/types.ts';

const base = { origin: 'https://api.example', basePath: '' };
const provider = (over: Partial<ProviderConfig> = {}): ProviderConfig => ({ id: 'p', kind: 'openai', baseUrl: 'https://api.example', models: ['*'], ...over }) as ProviderConfig;

describe('the OpenAI wire adapter', () => {
  it('is the adapter of the openai, openai-compatible and azure-openai kinds', () => {
    expect(adapterFor('openai')).toBe(openaiAdapter);
    for (const kind of ['openai', 'openai-compatible', 'azure-openai'] as const) expect(adapterOfKind(kind)).toBe(openaiAdapter);
  });

  it('builds a call with Bearer auth, the target model, and the usage option it adds for a streamed chat', () => {
    const call = openaiAdapter.buildCall({ provider: provider(), apiKey: 'sk-1', model: 'gpt-x', path: '/v1/chat/completions', method: 'POST', body: { model: 'alias', messages: [] }, stream: true }, base);
    expect(call.path).toBe('/v1/chat/completions');
    expect(call.headers).toMatchObject({ authorization: 'Bearer sk-1', accept: 'text/event-stream', 'content-type': 'application/json' });
    expect(JSON.parse(call.body ?? '')).toEqual({ model: 'gpt-x', messages: [], stream: true, stream_options: { include_usage: true } });
    expect(call.addedUsageOption).toBe(true);
  });

  it('sends no auth header for a compatible server without a key, and Azure gets its deployment path and api-key', () => {
    const open = openaiAdapter.buildCall({ provider: provider({ kind: 'openai-compatible' }), apiKey: '', model: 'm', path: '/v1/embeddings', method: 'POST', body: { input: 'x' }, stream: false }, base);
    expect(open.headers.authorization).toBeUndefined();
    expect(open.addedUsageOption).toBe(false);
    const azure = openaiAdapter.buildCall({ provider: provider({ kind: 'azure-openai', deployments: { m: 'dep 1' } }), apiKey: 'k', model: 'm', path: '/v1/chat/completions', method: 'POST', body: {}, stream: false }, base);
    expect(azure.path).toBe('/openai/deployments/dep%201/chat/completions?api-version=2024-10-21');
    expect(azure.headers['api-key']).toBe('k');
    expect(() => openaiAdapter.buildCall({ provider: provider({ kind: 'azure-openai' }), apiKey: 'k', model: 'm', path: '/v1/models', method: 'GET', body: undefined, stream: false }, base)).toThrow(TypeError);
  });

  it('reads usage from JSON (chat and embeddings) and estimates what is missing', () => {
    expect(openaiAdapter.usageFromJson({ usage: { prompt_tokens: 7, completion_tokens: 3 } }, {})).toEqual({ inputTokens: 7, outputTokens: 3, estimated: false });
    expect(openaiAdapter.usageFromJson({ usage: { prompt_tokens: 5 } }, {})).toEqual({ inputTokens: 5, outputTokens: 0, estimated: false });
    const estimated = openaiAdapter.usageFromJson({ choices: [{ message: { role: 'assistant', content: '12345678' } }] }, { messages: [{ role: 'user', content: 'abcd' }] });
    expect(estimated).toEqual({ inputTokens: 1, outputTokens: 2, estimated: true });
    expect(openaiAdapter.estimateInputTokens({ input: [1, 2, 3] })).toBe(3);
  });

  it('tracks a stream: the usage chunk is read and flagged usage-only, deltas count when no usage comes', () => {
    const parser = createSseParser();
    const tracker = openaiAdapter.streamUsageTracker({});
    const blocks = parser.feed('data: {"choices":[{"delta":{"content":"Hello!!!"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\ndata: [DONE]\n\n');
    expect(blocks.map((b) => tracker.observe(b).usageOnly)).toEqual([false, true, false]);
    expect(tracker.finished).toBe(true);
    expect(tracker.usage()).toEqual({ inputTokens: 4, outputTokens: 2, estimated: false });
    const cut = openaiAdapter.streamUsageTracker({ messages: [{ role: 'user', content: 'abcd' }] });
    for (const b of createSseParser().feed('data: {"choices":[{"delta":{"content":"Hello!!!"}}]}\n\n')) cut.observe(b);
    expect(cut.finished).toBe(false);
    expect(cut.usage()).toEqual({ inputTokens: 1, outputTokens: 2, estimated: true });
  });

  it('renders errors as {error:{...}} and a data: event in a stream; a provider 4xx keeps only checked fields', () => {
    const input = { status: 429, code: 'MONTHLY_LIMIT_REACHED', message: 'Limit.' };
    expect(openaiAdapter.errorBody(input)).toEqual({ error: { message: 'Limit.', type: 'rate_limit_error', param: null, code: 'insufficient_quota' } });
    expect(openaiAdapter.sseErrorEvent(input)).toBe(`data: ${JSON.stringify(openaiAdapter.errorBody(input))}\n\n`);
    expect(openaiAdapter.upstreamErrorBody(400, { message: 'bad', type: null, code: 'c', param: null })).toEqual({ error: { message: 'bad', type: 'invalid_request_error', param: null, code: 'c' } });
  });

  it('lists models in one page', () => {
    expect(openaiAdapter.modelsQuery(null)).toBe('');
    expect(openaiAdapter.nextModelsCursor({ has_more: true, last_id: 'x' })).toBeNull();
  });
});
