/**
 * Error bodies in the vendors' shapes, so the stock SDKs pointed at Gatehouse raise their usual
 * exceptions: the `openai` client builds `APIError` subclasses from the status (400 BadRequest, 401
 * Authentication, 403 PermissionDenied, 404 NotFound, 429 RateLimit, >= 500 InternalServer) and reads
 * `error.message`, `error.type`, `error.code` and `error.param` from `{ error: {...} }`; the
 * `@anthropic-ai/sdk` client does the same from the status and reads `error.type` and
 * `error.message` from `{ type: 'error', error: {...} }`. Inside a stream that already started,
 * the OpenAI client raises `APIError` on a `data:` event whose JSON has an `error` member, and the
 * Anthropic client on an `event: error` block.
 *
 * Both clients honour `x-should-retry`: it is set to `false` for failures a retry cannot fix
 * (configuration, credentials), so SDK retries do not pile onto them.
 *
 * As everywhere in Gatehouse, a 5xx says only what kind of failure it was.
 */
import type { ServerResponse } from 'node:http';
import { type AppError, errorCodeInfo } from '../server/errors.ts';
// Registers the gateway's codes, whose generic 5xx messages are looked up below.
import './errors.ts';
import type { WireFormat } from './usage.ts';

/** A Gatehouse error as the gateway routes render it. */
export interface VendorErrorInput {
  status: number;
  /** The Gatehouse error code (UPPER_SNAKE), e.g. `UNAUTHENTICATED`, `UPSTREAM_TIMEOUT`. */
  code: string;
  message: string;
  /** Extra response headers, e.g. `retry-after`. */
  headers?: Record<string, string>;
  /** The request id, echoed where the vendor's shape has a place for it. */
  requestId?: string;
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
  request_id?: string;
}

// The `code` values OpenAI itself uses for these situations, so client code that checks
// `err.code === 'invalid_api_key'` keeps working; other codes are sent in lower case.
const OPENAI_CODE_ALIASES: Record<string, string> = {
  UNAUTHENTICATED: 'invalid_api_key',
  MODEL_NOT_FOUND: 'model_not_found',
  RATE_LIMITED: 'rate_limit_exceeded',
  MONTHLY_LIMIT_REACHED: 'insufficient_quota',
};

// Codes no retry can fix: the operator has to act, or (a used-up monthly limit) weeks must pass.
const DO_NOT_RETRY = new Set(['UPSTREAM_HOST_NOT_ALLOWED', 'UPSTREAM_PORT_NOT_ALLOWED', 'UPSTREAM_ADDRESS_NOT_ALLOWED', 'GATEWAY_LOOP_DETECTED', 'NO_PROVIDER_CONFIGURED', 'UPSTREAM_SCHEME_NOT_ALLOWED', 'UPSTREAM_AUTH_FAILED', 'MONTHLY_LIMIT_REACHED']);

/** The OpenAI `error.type` for a status. */
export function openAIType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
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

/** The message a client may see: for a 5xx only the code's generic message. */
function clientMessage(input: VendorErrorInput): string {
  if (input.status >= 500) return errorCodeInfo(input.code)?.message ?? 'Internal error.';
  return input.message;
}

/**
 * The OpenAI-shaped body for a Gatehouse error.
 * @example toOpenAIErrorBody({ status: 401, code: 'UNAUTHENTICATED', message: 'Invalid API key.' })
 */
export function toOpenAIErrorBody(input: VendorErrorInput): OpenAIErrorBody {
  return {
    error: {
      message: clientMessage(input),
      type: openAIType(input.status),
      param: null,
      code: OPENAI_CODE_ALIASES[input.code] ?? input.code.toLowerCase(),
    },
  };
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

/**
 * The vendor-error input for a thrown `AppError` (a `GatewayError` included).
 * @example sendVendorError(res, 'openai', fromAppError(err, request.id))
 */
export function fromAppError(err: AppError, requestId?: string): VendorErrorInput {
  return { status: err.status, code: err.code, message: err.message, headers: err.headers, ...(requestId ? { requestId } : {}) };
}

/** The body for a Gatehouse error in `format`. */
export function toVendorErrorBody(format: WireFormat, input: VendorErrorInput): OpenAIErrorBody | AnthropicErrorBody {
  return format === 'anthropic' ? toAnthropicErrorBody(input) : toOpenAIErrorBody(input);
}

/**
 * The SSE text that ends a stream with an error, in `format`: `data: {"error":{...}}` for OpenAI,
 * `event: error` + `data: {"type":"error","error":{...}}` for Anthropic.
 */
export function toVendorSseErrorEvent(format: WireFormat, input: VendorErrorInput): string {
  if (format === 'anthropic') return `event: error\ndata: ${JSON.stringify(toAnthropicErrorBody(input))}\n\n`;
  return `data: ${JSON.stringify(toOpenAIErrorBody(input))}\n\n`;
}

/** Headers that go with a vendor-shaped error response. */
export function vendorErrorHeaders(input: VendorErrorInput): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', ...input.headers };
  if (DO_NOT_RETRY.has(input.code)) headers['x-should-retry'] = 'false';
  if (input.requestId) headers['x-request-id'] = input.requestId;
  return headers;
}

/**
 * Writes a Gatehouse error to `res` in `format` and ends it. When the response already started
 * (a stream), it writes the terminal SSE error event instead of a status line.
 * @example sendVendorError(reply.raw, 'openai', { status: 401, code: 'UNAUTHENTICATED', message: 'Invalid API key.' })
 */
export function sendVendorError(res: ServerResponse, format: WireFormat, input: VendorErrorInput): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) {
    res.end(toVendorSseErrorEvent(format, input));
    return;
  }
  const body = JSON.stringify(toVendorErrorBody(format, input));
  res.writeHead(input.status, { ...vendorErrorHeaders(input), 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}
