import { describe, expect, it } from 'vitest';
import { adapterFor } from '../../src/gateway/adapters/index.ts';
import { createSseRelayFilter } from '../../src/gateway/proxy-relay.ts';

const delta = (text: string): string => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: text } }] })}\n\n`;
const usageChunk = `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 5 } })}\n\n`;
const openai = adapterFor('openai');

describe('the stream relay filter', () => {
  it('passes a chunk of whole events on as the same bytes, and counts the usage it carries', () => {
    const filter = createSseRelayFilter(openai, {}, true);
    const chunk = Buffer.from(delta('Hello') + delta(' world'));
    expect(filter.chunk(chunk)).toBe(chunk);
    expect(filter.chunk(Buffer.from(usageChunk + 'data: [DONE]\n\n'))).toBe('data: [DONE]\n\n');
    expect(filter.end(false)).toBe('');
    expect(filter.usage()).toEqual({ inputTokens: 11, outputTokens: 5, estimated: false });
  });

  it('keeps the usage chunk when the client asked for it', () => {
    const filter = createSseRelayFilter(openai, {}, false);
    expect(String(filter.chunk(Buffer.from(usageChunk)))).toBe(usageChunk);
    expect(filter.usage()).toMatchObject({ inputTokens: 11, outputTokens: 5 });
  });

  it('holds back half an event and a character cut between chunks, and sends them whole with the next chunk', () => {
    const filter = createSseRelayFilter(openai, {}, true);
    const event = Buffer.from(delta('héllo'));
    const cut = event.indexOf(Buffer.from('é')) + 1; // inside the two bytes of é
    expect(filter.chunk(event.subarray(0, cut))).toBe('');
    expect(filter.atBlockEnd).toBe(true);
    expect(String(filter.chunk(event.subarray(cut)))).toBe(delta('héllo'));
  });

  it('at a broken end drops a partial last event when only complete ones may go, and estimates usage from what was seen', () => {
    const filter = createSseRelayFilter(openai, { messages: [{ role: 'user', content: 'abcdefgh' }] }, true);
    filter.chunk(Buffer.from(delta('12345678')));
    filter.chunk(Buffer.from('data: {"choices":[{"delta":{"content":"cut'));
    expect(filter.end(true)).toBe('');
    expect(filter.atBlockEnd).toBe(true);
    expect(filter.usage()).toEqual({ inputTokens: 2, outputTokens: 2, estimated: true });
  });

  it('passes the last bytes on when a stream ends without a final blank line', () => {
    const filter = createSseRelayFilter(adapterFor('anthropic'), {}, false);
    filter.chunk(Buffer.from('event: message_stop\ndata: {"type":"message_stop"}\n'));
    expect(filter.end(false)).toBe('event: message_stop\ndata: {"type":"message_stop"}\n');
  });
});
