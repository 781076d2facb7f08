/**
 * Token usage of one gateway call (GW-4), read from what the provider reports and estimated when it
 * reports nothing.
 *
 * Reported usage:
 * - OpenAI-compatible JSON: `usage.prompt_tokens` / `usage.completion_tokens` (embeddings: prompt
 *   only, output 0). Streams: the final chunk sent when `stream_options.include_usage` is set (the
 *   proxy sets it), which has `choices: []` and a `usage` object.
 * - Anthropic JSON: `usage.input_tokens` (+ `cache_creation_input_tokens` + `cache_read_input_tokens`,
 *   since Anthropic counts cached prompt tokens apart and they are still prompt tokens) and
 *   `usage.output_tokens`. Streams: `message_start` carries the input count, `message_delta` the
 *   final cumulative output count.
 *
 * Estimate, when a count is missing (a compatible server that sends no usage, or a stream that
 * broke before its usage event): one token per 4 characters, rounded up, of
 * - input: the text of the request: every string under `messages`, `system`, `prompt`, `input` and
 *   `tools`, except keys that hold no prompt text (role, type, ids, images, audio, files);
 *   embedding inputs given as token arrays count one token per element;
 * - output: the generated text (message content, tool-call arguments, reasoning), or for streams the
 *   text of every delta seen.
 * 4 characters per token is the usual rule of thumb for English with current tokenizers; it is off
 * for code and for other scripts, which is why such records carry `estimated: true`.
 */
import { adapterFor, type WireFormat } from './adapters/index.ts';
import type { StreamUsageTracker, Usage } from './tokens.ts';

export type { WireFormat } from './adapters/index.ts';
export { createSseParser, type SseBlock, type SseParser, type SseParserOptions } from './sse.ts';
export { estimateRequestInputTokens, estimateTokens, findUsageInJsonTail, type StreamUsageTracker, type Usage } from './tokens.ts';

/**
 * Usage of a complete JSON response: what the provider reports, estimated where it reports nothing.
 * @example usageFromJson('openai', JSON.parse(body), requestBody)
 */
export function usageFromJson(format: WireFormat, response: unknown, requestBody: unknown): Usage {
  return adapterFor(format).usageFromJson(response, requestBody);
}

/**
 * Tracks usage through a stream in `format`. Pass the request body for the input estimate.
 * @example const t = createStreamUsageTracker('openai', body); for (const b of blocks) t.observe(b); t.usage()
 */
export function createStreamUsageTracker(format: WireFormat, requestBody: unknown): StreamUsageTracker {
  return adapterFor(format).streamUsageTracker(requestBody);
}
