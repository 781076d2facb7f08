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
import type { AppError } from '../server/errors.ts';
import { adapterFor, type VendorErrorBody, type VendorErrorInput, type WireFormat } from './adapters/index.ts';

export {
  anthropicType,
  openAIType,
  toAnthropicErrorBody,
  toOpenAIErrorBody,
  type AnthropicErrorBody,
  type OpenAIErrorBody,
  type VendorErrorInput,
} from './adapters/index.ts';

// Codes no retry can fix: the operator has to act, or (a used-up monthly limit) weeks must pass.
const DO_NOT_RETRY = new Set(['UPSTREAM_HOST_NOT_ALLOWED', 'UPSTREAM_PORT_NOT_ALLOWED', 'UPSTREAM_ADDRESS_NOT_ALLOWED', 'GATEWAY_LOOP_DETECTED', 'NO_PROVIDER_CONFIGURED', 'UPSTREAM_SCHEME_NOT_ALLOWED', 'UPSTREAM_AUTH_FAILED', 'MONTHLY_LIMIT_REACHED']);

/**
 * The vendor-error input for a thrown `AppError` (a `GatewayError` included).
 * @example sendVendorError(res, 'openai', fromAppError(err, request.id))
 */
export function fromAppError(err: AppError, requestId?: string): VendorErrorInput {
  return { status: err.status, code: err.code, message: err.message, headers: err.headers, ...(requestId ? { requestId } : {}) };
}

/** The body for a Gatehouse error in `format`. */
export function toVendorErrorBody(format: WireFormat, input: VendorErrorInput): VendorErrorBody {
  return adapterFor(format).errorBody(input);
}

/**
 * The SSE text that ends a stream with an error, in `format`: `data: {"error":{...}}` for OpenAI,
 * `event: error` + `data: {"type":"error","error":{...}}` for Anthropic.
 */
export function toVendorSseErrorEvent(format: WireFormat, input: VendorErrorInput): string {
  return adapterFor(format).sseErrorEvent(input);
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
