/**
 * The explicit state of one proxied call (src/gateway/proxy.ts), shared by the pipeline's stages:
 * select (./proxy-call.ts: the chain checked, the call opened) -> attempt (./proxy-attempt.ts:
 * timeouts, retries, fallbacks, breakers) -> relay (./proxy-relay.ts: JSON or SSE to the client).
 *
 * The state holds what the stages used to share as closure variables: why the call was stopped
 * (the client left, the caller aborted, the total timeout), the answer being relayed (destroying
 * its body is what aborts the upstream request once relaying started), the target tried last,
 * how many upstream requests were made and the peak of the response's write buffer.
 */
import type { ServerResponse } from 'node:http';
import { adapterFor, type WireAdapter, type WireFormat } from './adapters/index.ts';
import type { GatewayErrorCode } from './error-codes.ts';
import { GatewayError } from './errors.ts';
import type { ProviderConfig } from './providers.ts';
import type { Usage } from './tokens.ts';
import { fromAppError, sendVendorError } from './vendor-errors.ts';

/** One place a call can go: a provider, the vendor key to use there, and the model name it knows. */
export interface ForwardTarget {
  provider: ProviderConfig;
  /** The vendor key (plaintext, from the keyring). Never logged, never in an error. */
  apiKey: string;
  /** The model name sent upstream (after the workspace's aliases were applied). */
  model: string;
}

export interface ForwardRequest {
  /** The wire format of the route the client called; every target must speak it. */
  format: WireFormat;
  /** The API path the client called: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`, `/v1/messages`. */
  path: string;
  /** Default POST; GET sends no body. */
  method?: 'GET' | 'POST';
  /** The parsed request body; `model` is replaced by each target's model. */
  body?: Record<string, unknown>;
  stream: boolean;
  /** The chain: the first target, then the fallbacks in order. */
  targets: readonly ForwardTarget[];
  /**
   * Cancels the call from outside (e.g. shutdown). When its abort reason is a `GatewayError`, the
   * client gets that error (a JSON call not yet answered: as the response; a stream: as its terminal
   * error event); otherwise UPSTREAM_ERROR. The client leaving is noticed on `res`.
   */
  signal?: AbortSignal;
  /** Echoed in error bodies where the vendor shape has a place for it. */
  requestId?: string;
  /** The Gatehouse nodes the call went through, this one last (src/gateway/loop.ts); sent upstream. */
  hops?: readonly string[];
}

/** What happened, for metering and logs. */
export interface ForwardResult {
  /** The status sent to the client; 499 when the client left before an answer started. */
  status: number;
  usage: Usage;
  /** Milliseconds from the start of the call to the end of the relay. */
  upstreamMs: number;
  /** The target that answered (or the last one tried). */
  providerId: string;
  model: string;
  /** Upstream requests made, retries and fallbacks included. */
  attempts: number;
  /** Set when the call failed, or a started stream ended with an error. */
  errorCode?: GatewayErrorCode;
  /** The error behind `errorCode`, for logs: its `cause` holds the network error (host and port, never keys). */
  error?: GatewayError;
  clientClosed: boolean;
  /** The most bytes that waited in the response's write buffer: bounded when backpressure works. */
  peakBufferedBytes: number;
}

/** An answer with its headers and as much of its body as the attempt read. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  sse: boolean;
  /** The body read so far: all of it when `rest` is null. */
  head: Buffer;
  /** The unread remainder (a stream, or a JSON body over the buffer limit). */
  rest: AsyncIterator<Buffer> | null;
  /** The request carried `stream_options.include_usage` only because the proxy added it. */
  addedUsageOption: boolean;
  destroy(): void;
}

/** The call was cancelled by the client, the caller or the total timeout: not the provider's fault. */
export class Cancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

export type StopReason = 'client' | 'caller' | 'total-timeout';

/** One call's state, created by `openCall` and passed through every stage. */
export interface CallState {
  readonly request: ForwardRequest;
  readonly res: ServerResponse;
  readonly adapter: WireAdapter<WireFormat>;
  readonly method: 'GET' | 'POST';
  /** The vendor keys of the chain, cut out of anything relayed from a provider's error. */
  readonly secrets: readonly string[];
  /** performance.now() at the start. */
  readonly started: number;
  /** Aborted when the call stops; each attempt's own controller follows it. */
  readonly controller: AbortController;
  stopReason: StopReason | null;
  /** The answer being relayed: destroying its body is what aborts the upstream request then. */
  active: Answer | null;
  /** The target tried last (the one that answered, in the end). */
  current: ForwardTarget;
  attempts: number;
  peakBufferedBytes: number;
  /** Removes the listeners and the timer `openCall` set. */
  close(): void;
}

export const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, estimated: false };

/** Stops the call once: aborts the attempt in flight, or the relay's upstream body. */
export function stopCall(state: CallState, reason: StopReason): void {
  if (state.stopReason !== null) return;
  state.stopReason = reason;
  state.controller.abort();
  state.active?.destroy();
}

/**
 * The select stage: checks that every target of the chain speaks the route's format (throws a
 * TypeError, a routing bug, before anything is set up), then opens the call: the client leaving,
 * the caller's signal and the total timeout stop it.
 */
export function openCall(request: ForwardRequest, res: ServerResponse, totalMs: number): CallState {
  if (request.targets.length === 0) throw new TypeError('gateway: forward needs at least one target');
  const adapter = adapterFor(request.format);
  for (const t of request.targets) {
    if (!adapter.kinds.includes(t.provider.kind)) {
      throw new TypeError(`gateway: provider ${t.provider.id} (${t.provider.kind}) cannot serve a route in the ${request.format} format`);
    }
  }
  const state: CallState = {
    request,
    res,
    adapter,
    method: request.method ?? 'POST',
    secrets: request.targets.map((t) => t.apiKey).filter((k) => k.length > 0),
    started: performance.now(),
    controller: new AbortController(),
    stopReason: null,
    active: null,
    current: request.targets[0] as ForwardTarget,
    attempts: 0,
    peakBufferedBytes: 0,
    close: () => undefined,
  };
  const onResClose = (): void => {
    if (!res.writableFinished) stopCall(state, 'client');
  };
  res.on('close', onResClose);
  if (res.destroyed) stopCall(state, 'client');
  const onCallerAbort = (): void => stopCall(state, 'caller');
  request.signal?.addEventListener('abort', onCallerAbort, { once: true });
  if (request.signal?.aborted) stopCall(state, 'caller');
  const totalTimer = setTimeout(() => stopCall(state, 'total-timeout'), totalMs);
  state.close = () => {
    clearTimeout(totalTimer);
    res.off('close', onResClose);
    request.signal?.removeEventListener('abort', onCallerAbort);
  };
  return state;
}

/** The result of the call as it stands. */
export function resultOf(state: CallState, status: number, usage: Usage, error?: GatewayError): ForwardResult {
  return {
    status,
    usage,
    upstreamMs: Math.round(performance.now() - state.started),
    providerId: state.current.provider.id,
    model: state.current.model,
    attempts: state.attempts,
    ...(error ? { errorCode: error.code, error } : {}),
    clientClosed: state.stopReason === 'client',
    peakBufferedBytes: state.peakBufferedBytes,
  };
}

/** The error a cancelled call ends with, for whoever is still listening. */
export function cancelError(state: CallState): GatewayError {
  if (state.stopReason === 'total-timeout') return new GatewayError('UPSTREAM_TIMEOUT');
  const reason: unknown = state.request.signal?.reason;
  if (state.stopReason === 'caller' && reason instanceof GatewayError) return reason;
  return new GatewayError('UPSTREAM_ERROR');
}

/** Ends a call that got no answer to relay: the error in the client's format, unless the client left. */
export function failCall(state: CallState, error: GatewayError): ForwardResult {
  if (state.stopReason === 'client' || state.res.destroyed) return resultOf(state, 499, NO_USAGE, error);
  sendVendorError(state.res, state.request.format, fromAppError(error, state.request.requestId));
  return resultOf(state, error.status, NO_USAGE, error);
}
