import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createSseParser,
  createStreamUsageTracker,
  estimateRequestInputTokens,
  estimateTokens,
  findUsageInJsonTail,
  usageFromJson,
  type SseBlock,
} from '../../src/gateway/usage.ts';

function feedAll(chunks: readonly string[], maxBlockChars?: number): SseBlock[] {
  const parser = createSseParser(maxBlockChars === undefined ? {} : { maxBlockChars });
  return [...chunks.flatMap((c) => parser.feed(c)), ...parser.end()];
}

/** Cuts `text` at the given positions. */
function cut(text: string, positions: readonly number[]): string[] {
  const sorted = [...new Set(positions.map((p) => p % (text.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let last = 0;
  for (const p of sorted) {
    out.push(text.slice(last, p));
    last = p;
  }
  out.push(text.slice(last));
  return out;
}

const OPENAI_STREAM = [
  'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
  ': keep-alive comment\n\n',
  'data: {"choices":[{"index":0,"delta":{"content":"Hello there"}}]}\n\n',
  'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
  'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}\n\n',
  'data: [DONE]\n\n',
].join('');

const ANTHROPIC_STREAM = [
  'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":20,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n',
  'event: ping\ndata: {"type":"ping"}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi!"}}\n\n',
  'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}\n\n',
  'event: message_stop\ndata: {"type":"message_stop"}\n\n',
].join('');

describe('SSE parser', () => {
  it('parses events, names, multi-line data and comments', () => {
    const blocks = feedAll(['event: a\ndata: 1\ndata: 2\n\n: comment\n\ndata:no-space\nid: 7\nretry: 10\n\n']);
    expect(blocks.map((b) => [b.event, b.data, b.hasData])).toEqual([
      ['a', '1\n2', true],
      [null, '', false],
      [null, 'no-space', true],
    ]);
  });

  it('gives the same blocks and the same raw text however the stream is cut (LF, CRLF and CR line ends)', () => {
    for (const ending of ['\n', '\r\n', '\r']) {
      const text = ANTHROPIC_STREAM.replaceAll('\n', ending);
      const whole = feedAll([text]);
      expect(whole.filter((b) => b.hasData)).toHaveLength(5);
      fc.assert(
        fc.property(fc.array(fc.nat(), { maxLength: 12 }), (positions) => {
          const blocks = feedAll(cut(text, positions));
          expect(blocks.filter((b) => !b.oversized).map((b) => [b.event, b.data])).toEqual(whole.map((b) => [b.event, b.data]));
          expect(blocks.map((b) => b.raw).join('')).toBe(text);
        }),
        { numRuns: 300 },
      );
    }
  });

  it('a CR at the end of a chunk followed by LF in the next is one line end', () => {
    const blocks = feedAll(['data: x\r', '\n\r', '\ndata: y\r\n\r\n']);
    expect(blocks.map((b) => b.data)).toEqual(['x', 'y']);
    expect(blocks.map((b) => b.raw).join('')).toBe('data: x\r\n\r\ndata: y\r\n\r\n');
  });

  it('passes an oversized block through raw, in pieces, and parses the blocks after it', () => {
    const big = `data: ${'x'.repeat(5000)}\n\n`;
    const text = `data: a\n\n${big}data: b\n\n`;
    const chunks = cut(text, [100, 2000, 4000, 5008]);
    const blocks = feedAll(chunks, 1000);
    expect(blocks.map((b) => b.raw).join('')).toBe(text);
    expect(blocks.filter((b) => b.hasData).map((b) => b.data)).toEqual(['a', 'b']);
    expect(blocks.some((b) => b.oversized)).toBe(true);
  });

  it('returns an unterminated last block raw at end()', () => {
    const blocks = feedAll(['data: 1\n\ndata: partial']);
    expect(blocks.map((b) => b.raw).join('')).toBe('data: 1\n\ndata: partial');
    expect(blocks.filter((b) => b.hasData).map((b) => b.data)).toEqual(['1']);
  });
});

describe('stream usage', () => {
  it('OpenAI: takes the final usage chunk and flags it as usage-only', () => {
    const tracker = createStreamUsageTracker('openai', {});
    const flags = feedAll([OPENAI_STREAM]).map((b) => tracker.observe(b).usageOnly);
    expect(flags).toEqual([false, false, false, false, true, false]);
    expect(tracker.usage()).toEqual({ inputTokens: 12, outputTokens: 3, estimated: false });
    expect(tracker.finished).toBe(true);
  });

  it('Anthropic: input from message_start (cached tokens included), output from message_delta', () => {
    const tracker = createStreamUsageTracker('anthropic', {});
    for (const b of feedAll(cut(ANTHROPIC_STREAM, [7, 50, 133, 260]))) tracker.observe(b);
    expect(tracker.usage()).toEqual({ inputTokens: 25, outputTokens: 9, estimated: false });
    expect(tracker.finished).toBe(true);
  });

  it('estimates what the stream did not report, and says so', () => {
    const body = { messages: [{ role: 'user', content: 'x'.repeat(40) }] };
    const openai = createStreamUsageTracker('openai', body);
    for (const b of feedAll([OPENAI_STREAM.replace(/data: \{"choices":\[\],"usage".*\n\n/, '')])) openai.observe(b);
    expect(openai.usage()).toEqual({ inputTokens: 10, outputTokens: 3, estimated: true }); // 40/4; "Hello there" = 11 chars -> 3

    // A stream cut after message_start: input is known, output estimated from the text so far.
    const anthropic = createStreamUsageTracker('anthropic', body);
    for (const b of feedAll([ANTHROPIC_STREAM.split('event: message_delta')[0] ?? ''])) anthropic.observe(b);
    expect(anthropic.usage()).toEqual({ inputTokens: 25, outputTokens: 1, estimated: true });
    expect(anthropic.finished).toBe(false);
  });

  it('counts every text delta for the estimate, past the bound on deltas held unparsed and across usage() calls', () => {
    const delta = (text: string): string => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: text } }] })}\n\n`;
    const tracker = createStreamUsageTracker('openai', {});
    // 400 deltas of 1,000 characters: more than the tracker holds before counting.
    const piece = 'y'.repeat(1_000);
    for (const b of feedAll(Array.from({ length: 400 }, () => delta(piece)))) tracker.observe(b);
    expect(tracker.usage()).toEqual({ inputTokens: 0, outputTokens: 100_000, estimated: true });
    for (const b of feedAll([delta('abcd'), 'data: [DONE]\n\n'])) tracker.observe(b);
    expect(tracker.usage()).toEqual({ inputTokens: 0, outputTokens: 100_001, estimated: true });
    expect(tracker.finished).toBe(true);
  });

  it('reads usage wherever the chunk puts it and however it is spaced; a delta that only mentions usage in its text is not usage', () => {
    const tracker = createStreamUsageTracker('openai', {});
    const chunks = [
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'the "usage": {} field' } }] })}\n\n`,
      // Two data lines: the JSON has a line end between the key and its object.
      'data: {"usage" :\ndata:  {"prompt_tokens": 5, "completion_tokens": 2}, "choices": []}\n\n',
      'data: [DONE]\n\n',
    ];
    expect(feedAll(chunks).map((b) => tracker.observe(b).usageOnly)).toEqual([false, true, false]);
    expect(tracker.usage()).toEqual({ inputTokens: 5, outputTokens: 2, estimated: false });
  });
});

describe('JSON usage', () => {
  it('reads OpenAI, embeddings and Anthropic usage', () => {
    expect(usageFromJson('openai', { usage: { prompt_tokens: 5, completion_tokens: 7 } }, {})).toEqual({ inputTokens: 5, outputTokens: 7, estimated: false });
    expect(usageFromJson('openai', { data: [], usage: { prompt_tokens: 8, total_tokens: 8 } }, {})).toEqual({ inputTokens: 8, outputTokens: 0, estimated: false });
    expect(
      usageFromJson('anthropic', { usage: { input_tokens: 3, cache_creation_input_tokens: 2, output_tokens: 4 } }, {}),
    ).toEqual({ inputTokens: 5, outputTokens: 4, estimated: false });
  });

  it('estimates when there is no usage: ceil(chars / 4) of the request text and of the answer text', () => {
    const request = {
      model: 'm',
      system: 'abcd',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'abcdefgh' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${'A'.repeat(9999)}` } }] },
      ],
    };
    expect(estimateRequestInputTokens(request)).toBe(3); // 12 chars, the image not counted
    const answer = { choices: [{ index: 0, message: { role: 'assistant', content: 'x'.repeat(9) }, finish_reason: 'stop' }] };
    expect(usageFromJson('openai', answer, request)).toEqual({ inputTokens: 3, outputTokens: 3, estimated: true });
    expect(usageFromJson('anthropic', { content: [{ type: 'text', text: 'abcde' }] }, request)).toEqual({ inputTokens: 3, outputTokens: 2, estimated: true });
    expect(estimateTokens(0)).toBe(0);
    expect(estimateTokens(1)).toBe(1);
  });

  it('counts embedding inputs given as token ids exactly', () => {
    expect(estimateRequestInputTokens({ input: [1, 2, 3] })).toBe(3);
    expect(estimateRequestInputTokens({ input: [[1, 2], [3]] })).toBe(3);
    expect(estimateRequestInputTokens({ input: ['abcd', 'efgh'] })).toBe(2);
  });

  it('finds usage in the tail of a large JSON answer', () => {
    const tail = `...0.1,0.2]}],"model":"m","usage":{"prompt_tokens":42,"total_tokens":42,"details":{"x":1}}}`;
    expect(findUsageInJsonTail(tail)).toEqual({ prompt_tokens: 42, total_tokens: 42, details: { x: 1 } });
    expect(findUsageInJsonTail('no usage here')).toBeUndefined();
    expect(findUsageInJsonTail('"usage":{"a":1')).toBeUndefined();
  });
});
