import { describe, expect, it } from 'vitest';
import { createSseParser } from '../../../src/gateway/sse.ts';
import { anthropicAdapter } from '../../../src/gateway/adapters/anthropic.ts';
import { adapterFor, adapterOfKind } from '../../../src/gateway/adapters/index.ts';
import type { ProviderConfig } from '../../../src/gateway/adapters/types.ts';

const provider = { id: 'a', kind: 'anthropic', baseUrl: 'https://api.anthropic.example', models: ['*'] } as ProviderConfig;

describe('the Anthropic wire adapter', () => {
  it('is the adapter of the anthropic kind', () => {
    expect(adapterFor('anthropic')).toBe(anthropicAdapter);
    expect(adapterOfKind('anthropic')).toBe(anthropicAdapter);
  });

  it('builds a call with x-api-key, anthropic-version and the target model, never a usage option', () => {
    const call = anthropicAdapter.buildCall({ provider, apiKey: 'ak', model: 'claude-x', path: '/v1/messages', method: 'POST', body: { model: 'alias', max_tokens: 5 }, stream: true }, { origin: 'https://a', basePath: '/proxy' });
    expect(call).toMatchObject({ origin: 'https://a', path: '/proxy/v1/messages', method: 'POST', addedUsageOption: false });
    expect(call.headers).toMatchObject({ 'x-api-key': 'ak', 'anthropic-version': '2023-06-01', accept: 'text/event-stream' });
    expect(call.headers.authorization).toBeUndefined();
    expect(JSON.parse(call.body ?? '')).toEqual({ model: 'claude-x', max_tokens: 5, stream: true });
  });

  it('reads usage with cached prompt tokens counted as input, and estimates from content when none is reported', () => {
    expect(anthropicAdapter.usageFromJson({ usage: { input_tokens: 10, cache_read_input_tokens: 5, cache_creation_input_tokens: 1, output_tokens: 4 } }, {})).toEqual({ inputTokens: 16, outputTokens: 4, estimated: false });
    expect(anthropicAdapter.usageFromJson({ content: [{ type: 'text', text: '12345678' }] }, { messages: [{ role: 'user', content: 'abcd' }] })).toEqual({ inputTokens: 1, outputTokens: 2, estimated: true });
  });

  it('tracks a stream: input from message_start, the total output from message_delta, the end at message_stop', () => {
    const tracker = anthropicAdapter.streamUsageTracker({});
    const text = [
      'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}\n\n',
      'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":6}}\n\n',
      'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ].join('');
    for (const b of createSseParser().feed(text)) expect(tracker.observe(b).usageOnly).toBe(false);
    expect(tracker.finished).toBe(true);
    expect(tracker.usage()).toEqual({ inputTokens: 9, outputTokens: 6, estimated: false });
    // Broken off before message_delta: the output is estimated from the deltas seen.
    const cut = anthropicAdapter.streamUsageTracker({});
    for (const b of createSseParser().feed(text.split('event: message_delta')[0] ?? '')) cut.observe(b);
    expect(cut.usage()).toEqual({ inputTokens: 9, outputTokens: 1, estimated: true });
  });

  it('renders errors in Anthropic\'s shape, with an event: error block in a stream and the request id', () => {
    const input = { status: 503, code: 'UPSTREAM_UNAVAILABLE', message: 'secret detail', requestId: 'r1' };
    const body = anthropicAdapter.errorBody(input);
    expect(body).toMatchObject({ type: 'error', error: { type: 'overloaded_error' }, request_id: 'r1' });
    expect(body.error.message).not.toContain('secret');
    expect(anthropicAdapter.sseErrorEvent(input)).toBe(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
    expect(anthropicAdapter.upstreamErrorBody(404, { message: 'nope', type: null, code: null, param: null }, 'r2')).toEqual({ type: 'error', error: { type: 'not_found_error', message: 'nope' }, request_id: 'r2' });
  });

  it('pages a model list with after_id while has_more is set', () => {
    expect(anthropicAdapter.modelsQuery(null)).toBe('?limit=1000');
    expect(anthropicAdapter.modelsQuery('m/1')).toBe('?limit=1000&after_id=m%2F1');
    expect(anthropicAdapter.nextModelsCursor({ has_more: true, last_id: 'm9' })).toBe('m9');
    expect(anthropicAdapter.nextModelsCursor({ has_more: false, last_id: 'm9' })).toBeNull();
  });
});
