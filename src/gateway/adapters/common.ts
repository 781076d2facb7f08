/**
 * Pieces the wire-format adapters share: the headers every upstream call carries, the JSON body
 * with the target's model, and the message a client may see in an error.
 */
import { errorCodeInfo } from '../../server/errors.ts';
// Registers the gateway's codes, whose generic 5xx messages are looked up below.
import '../errors.ts';
import type { UpstreamCallInput, VendorErrorInput } from './types.ts';

/** The headers of every upstream call, before the format's auth. */
export function baseHeaders(stream: boolean): Record<string, string> {
  return {
    accept: stream ? 'text/event-stream' : 'application/json',
    'user-agent': 'Gatehouse',
  };
}

/**
 * The body sent upstream for a POST (the client's, with the target's model and `stream: true` for
 * streams; `extend` may add fields), or undefined for a GET. Sets `content-type` when there is a body.
 */
export function jsonBody(input: UpstreamCallInput, headers: Record<string, string>, extend?: (body: Record<string, unknown>) => void): string | undefined {
  if (input.method !== 'POST') return undefined;
  const upstreamBody: Record<string, unknown> = { ...input.body, model: input.model };
  if (input.stream) upstreamBody.stream = true;
  extend?.(upstreamBody);
  headers['content-type'] = 'application/json';
  return JSON.stringify(upstreamBody);
}

/** The message a client may see: for a 5xx only the code's generic message. */
export function clientMessage(input: VendorErrorInput): string {
  if (input.status >= 500) return errorCodeInfo(input.code)?.message ?? 'Internal error.';
  return input.message;
}
