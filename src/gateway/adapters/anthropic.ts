/**
 * Anthropic's Messages API: `/v1/messages` and `/v1/models` (paged), spoken by the `anthropic`
 * provider kind: `x-api-key: <key>` + `anthropic-version`, base + `/v1/messages`.
 *
 * Usage: `usage.input_tokens` (+ `cache_creation_input_tokens` + `cache_read_input_tokens`, since
 * Anthropic counts cached prompt tokens apart and they are still prompt tokens) and
 * `usage.output_tokens`. Streams: `message_start` carries the input count, `message_delta` the
 * final cumulative output count.
 * Errors: `{ type: 'error', error: { type, message }, request_id? }`; in a stream, an `event: error`
 * block with that JSON.
 */
import { z } from 'zod';
import type { SseBlock } from '../sse.ts';
import { combine, count, createDeferredText, estimateRequestInputTokens, estimateTokens, isRecord, parseJson, textChars, type ReportedUsage, type StreamUsageTracker, type Usage } from '../tokens.ts';
import { baseHeaders, clientMessage, jsonBody } from './common.ts';
import type { SafeErrorFields, VendorErrorInput, WireAdapter } from './types.ts';

/** The `anthropic-version` header sent when a provider names none. */
export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
  request_id?: string;
}

/** The Anthropic `error.type` for a status. */
export function anthropicType(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    case 504:
      return 'timeout_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/**
 * The Anthropic-shaped body for a Gatehouse error.
 * @example toAnthropicErrorBody({ status: 429, code: 'RATE_LIMITED', message: 'Too many requests.' })
 */
export function toAnthropicErrorBody(input: VendorErrorInput): AnthropicErrorBody {
  const body: AnthropicErrorBody = { type: 'error', error: { type: anthropicType(input.status), message: clientMessage(input) } };
  if (input.requestId) body.request_id = input.requestId;
  return body;
}

/** The counts a usage object reports; cached prompt tokens are prompt tokens. */
function readUsage(usage: unknown): ReportedUsage {
  if (!isRecord(usage)) return {};
  const input = count(usage.input_tokens);
  const cached = (count(usage.cache_creation_input_tokens) ?? 0) + (count(usage.cache_read_input_tokens) ?? 0);
  return { input: input === undefined ? undefined : input + cached, output: count(usage.output_tokens) };
}

function streamUsageTracker(requestBody: unknown): StreamUsageTracker {
  let reported: ReportedUsage = {};
  let finished = false;
  const text = createDeferredText((payload) => textChars(payload.delta));
  const observe = (block: SseBlock): void => {
    const type = block.event;
    if (type === 'message_stop') {
      finished = true;
      return;
    }
    if (type === 'content_block_delta') {
      text.defer(block.data);
      return;
    }
    if (type !== 'message_start' && type !== 'message_delta') return;
    const payload = parseJson(block.data);
    if (!isRecord(payload)) return;
    if (type === 'message_start') {
      const message = payload.message;
      if (isRecord(message)) {
        const u = readUsage(message.usage);
        // message_start's output count is a placeholder (often 1); message_delta gives the total.
        reported = { input: u.input ?? reported.input, output: reported.output };
      }
    } else {
      const u = readUsage(payload.usage);
      reported = { input: u.input ?? reported.input, output: u.output ?? reported.output };
    }
  };
  return {
    observe(block) {
      if (block.hasData) observe(block);
      return { usageOnly: false };
    },
    get finished(): boolean {
      return finished;
    },
    usage: (): Usage =>
      combine(
        reported,
        () => estimateRequestInputTokens(requestBody),
        () => estimateTokens(text.chars()),
      ),
  };
}

export const anthropicAdapter: WireAdapter<'anthropic', AnthropicErrorBody> = {
  format: 'anthropic',
  kinds: ['anthropic'],
  errorSchema: z.object({ type: z.literal('error'), error: z.object({ type: z.string(), message: z.string() }), request_id: z.string().optional() }),

  buildCall(input, { origin, basePath }) {
    const headers = baseHeaders(input.stream);
    headers['x-api-key'] = input.apiKey;
    headers['anthropic-version'] = input.provider.apiVersion ?? DEFAULT_ANTHROPIC_VERSION;
    const body = jsonBody(input, headers);
    return { origin, path: `${basePath}${input.path}`, method: input.method, headers, body, addedUsageOption: false };
  },
  modelsQuery: (afterId) => `?limit=1000${afterId === null ? '' : `&after_id=${encodeURIComponent(afterId)}`}`,
  nextModelsCursor: (page) => (page.has_more === true && page.last_id ? page.last_id : null),

  estimateInputTokens: estimateRequestInputTokens,
  usageFromJson(response, requestBody) {
    const record = isRecord(response) ? response : {};
    return combine(
      readUsage(record.usage),
      () => estimateRequestInputTokens(requestBody),
      () => estimateTokens(textChars(record.content)),
    );
  },
  streamUsageTracker,

  errorBody: toAnthropicErrorBody,
  sseErrorEvent: (input) => `event: error\ndata: ${JSON.stringify(toAnthropicErrorBody(input))}\n\n`,
  upstreamErrorBody(status, fields: SafeErrorFields, requestId) {
    const body: AnthropicErrorBody = { type: 'error', error: { type: fields.type ?? anthropicType(status), message: fields.message } };
    if (requestId) body.request_id = requestId;
    return body;
  },
};
