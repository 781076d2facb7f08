/**
 * Forwards one client call to an AI provider and relays the answer (GW-2, GW-3, GW-4).
 *
 * The call goes to the first target of a chain; each target is tried up to `1 + maxRetries` times
 * (exponential backoff with jitter, honouring a short `Retry-After`) on connect errors, timeouts,
 * 5xx and 429, and the next target is tried when one gives up, is refused (allowlist, credentials)
 * or has its circuit breaker open. All of this happens before the first byte reaches the client:
 * once a stream has started it is relayed to its end, and if the provider breaks it off the client
 * gets a terminal SSE error event in its own API's shape.
 *
 * What reaches the client:
 * - a success: the provider's status, `content-type`, and body unchanged (JSON is read whole, up to
 *   `maxJsonBufferBytes`, before anything is sent, so a JSON answer cut short can still be retried);
 *   streams are relayed as they arrive, whole events at a time, with the provider's bytes: the only
 *   change is that the usage chunk the proxy asked for on the client's behalf is taken out again
 *   (a stream's headers leave with its first event, or alone after 20 ms when that event is late);
 * - a 4xx from the provider other than 401, 403 and 429: its status, and its error rebuilt in the
 *   client's format from known fields only (type, code, param, and a message with every vendor key
 *   cut out, or withheld when it holds an encoded copy of one): src/gateway/upstream-errors.ts;
 * - anything else: a Gatehouse error in the vendor's shape (src/gateway/vendor-errors.ts): 401/403
 *   from the provider become UPSTREAM_AUTH_FAILED (the client's own key was fine), 429 becomes
 *   UPSTREAM_RATE_LIMITED (the provider's message can name the platform's account), 5xx and
 *   connection failures UPSTREAM_ERROR, timeouts UPSTREAM_TIMEOUT, an open breaker
 *   UPSTREAM_UNAVAILABLE.
 * No response header from the provider is passed on except `content-type` (and the sanitised
 * `Retry-After` of a 429), and vendor keys never appear in an error message.
 *
 * The client leaving (`res` closing before it finished) aborts the upstream call at once.
 */
import type { ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { createBreakerRegistry, isBreakerOpenError, type BreakerRegistry, type BreakerState, type BreakerTransitionListener } from './breakers.ts';
import {
  breakerConfigSchema,
  retryConfigSchema,
  timeoutsConfigSchema,
  type BreakerConfig,
  type RetryConfig,
  type TimeoutsConfig,
} from './config.ts';
import type { GatewayErrorCode } from './error-codes.ts';
import { GatewayError, isGatewayError } from './errors.ts';
import { HOPS_HEADER, isLoopAnswer } from './loop.ts';
import { buildUpstreamCall, formatOfKind, type ProviderConfig } from './providers.ts';
import { rebuildVendorError } from './upstream-errors.ts';
import {
  createSseParser,
  createStreamUsageTracker,
  findUsageInJsonTail,
  usageFromJson,
  type SseBlock,
  type Usage,
  type WireFormat,
} from './usage.ts';
import { fromAppError, sendVendorError, toVendorSseErrorEvent } from './vendor-errors.ts';

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

export interface GatewayProxyOptions {
  /** The upstream dispatcher: `createUpstreamAgent(...)` in production (the SSRF defence lives there). */
  dispatcher: Dispatcher;
  timeouts?: Partial<TimeoutsConfig>;
  retry?: Partial<RetryConfig>;
  breaker?: Partial<BreakerConfig>;
  /** A JSON answer larger than this is streamed through instead of read whole first. Default 16 MiB. */
  maxJsonBufferBytes?: number;
  /** The part of an upstream error body that is kept (and scrubbed); the rest is dropped. Default 64 KiB. */
  maxErrorBodyBytes?: number;
  /** Random source for the backoff jitter, in [0, 1). */
  random?: () => number;
  /** Told of every breaker state change (the metrics counter). */
  onBreakerTransition?: BreakerTransitionListener;
}

export interface GatewayProxy {
  /**
   * Forwards `request` and writes the answer (or a vendor-shaped error) to `res`; never throws for
   * upstream failures. Headers set on `res` with `setHeader` before the call are kept.
   * @example const result = await proxy.forward({ format: 'openai', path: '/v1/chat/completions', body, stream: body.stream === true, targets }, reply.raw)
   */
  forward(request: ForwardRequest, res: ServerResponse): Promise<ForwardResult>;
  breakerState(providerId: string): BreakerState;
  /** Every provider breaker made so far with its state (the metrics gauge). */
  breakerStates(): [providerId: string, state: BreakerState][];
  /** Stops the breakers' timers. */
  close(): void;
}

/** An answer with its headers and as much of its body as the attempt read. */
interface Answer {
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

/** A 5xx: thrown inside the breaker so it counts as a failure, unwrapped outside. */
class FailedAnswer extends Error {
  readonly answer: Answer;
  constructor(answer: Answer) {
    super('upstream answered with a server error');
    this.answer = answer;
  }
}

/** The call was cancelled by the client, the caller or the total timeout: not the provider's fault. */
class Cancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

type StopReason = 'client' | 'caller' | 'total-timeout';

type Outcome =
  | { kind: 'answer'; answer: Answer }
  | { kind: 'failed'; error: GatewayError; retry: boolean; retryAfterMs?: number };

const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, estimated: false };

/** A stream's headers wait this long for its first event to travel with; then they go alone. */
const STREAM_HEADERS_FLUSH_MS = 20;

function header(headers: Answer['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `Retry-After` (seconds or an HTTP date) in milliseconds, or undefined. */
function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d{1,9}$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Resolves when `res` can take more data, or when it closed (then false). */
function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** True when `text` ends with a blank line (two line ends), i.e. after a complete SSE event. */
function endsWithBlankLine(text: string): boolean {
  const lineEnd = text.endsWith('\r\n') ? 2 : text.endsWith('\n') || text.endsWith('\r') ? 1 : 0;
  if (lineEnd === 0) return false;
  const before = text.slice(0, -lineEnd);
  return before.endsWith('\n') || before.endsWith('\r');
}

function errorCodeOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const REFUSALS: readonly GatewayErrorCode[] = ['UPSTREAM_HOST_NOT_ALLOWED', 'UPSTREAM_PORT_NOT_ALLOWED', 'UPSTREAM_ADDRESS_NOT_ALLOWED', 'UPSTREAM_SCHEME_NOT_ALLOWED', 'GATEWAY_LOOP_DETECTED'];

/**
 * Creates the proxy: one per process, sharing the dispatcher's connection pools and one circuit
 * breaker per provider id.
 * @example const proxy = createGatewayProxy({ dispatcher: createUpstreamAgent(config.upstream), ...config })
 */
export function createGatewayProxy(options: GatewayProxyOptions): GatewayProxy {
  const timeouts = timeoutsConfigSchema.parse(options.timeouts ?? {});
  const retry = retryConfigSchema.parse(options.retry ?? {});
  const maxJsonBufferBytes = options.maxJsonBufferBytes ?? 16 * 1024 * 1024;
  const maxErrorBodyBytes = options.maxErrorBodyBytes ?? 64 * 1024;
  const random = options.random ?? Math.random;
  const breakers: BreakerRegistry = createBreakerRegistry(
    breakerConfigSchema.parse(options.breaker ?? {}),
    (err) => err instanceof Cancelled || isGatewayError(err, ...REFUSALS),
    Date.now,
    options.onBreakerTransition,
  );

  /** Reads `iterator` until `limit` bytes; returns them and whether the body ended. */
  async function readUpTo(iterator: AsyncIterator<Buffer>, limit: number): Promise<{ head: Buffer; complete: boolean }> {
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return { head: Buffer.concat(chunks), complete: true };
      chunks.push(next.value);
      size += next.value.length;
      if (size > limit) return { head: Buffer.concat(chunks), complete: false };
    }
  }

  /** Backoff before retry number `retryNumber` (1-based): exponential, half of it random. */
  function backoffMs(retryNumber: number): number {
    const full = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (retryNumber - 1));
    return Math.round(full / 2 + random() * (full / 2));
  }

  async function forward(request: ForwardRequest, res: ServerResponse): Promise<ForwardResult> {
    const started = performance.now();
    const method = request.method ?? 'POST';
    if (request.targets.length === 0) throw new TypeError('gateway: forward needs at least one target');
    for (const t of request.targets) {
      if (formatOfKind(t.provider.kind) !== request.format) {
        throw new TypeError(`gateway: provider ${t.provider.id} (${t.provider.kind}) cannot serve a route in the ${request.format} format`);
      }
    }
    const secrets = request.targets.map((t) => t.apiKey).filter((k) => k.length > 0);
    const stream = request.stream;

    // One controller for the whole call; each attempt has its own, linked to it.
    const call = new AbortController();
    let stopReason: StopReason | null = null;
    // The answer being relayed: destroying its body is what aborts the upstream request then.
    let active: Answer | null = null;
    const stop = (reason: StopReason): void => {
      if (stopReason !== null) return;
      stopReason = reason;
      call.abort();
      active?.destroy();
    };
    const onResClose = (): void => {
      if (!res.writableFinished) stop('client');
    };
    res.on('close', onResClose);
    if (res.destroyed) stop('client');
    const onCallerAbort = (): void => stop('caller');
    request.signal?.addEventListener('abort', onCallerAbort, { once: true });
    if (request.signal?.aborted) stop('caller');
    const totalTimer = setTimeout(() => stop('total-timeout'), timeouts.totalMs);

    let attempts = 0;
    let current = request.targets[0] as ForwardTarget;
    let peakBufferedBytes = 0;

    const result = (status: number, usage: Usage, error?: GatewayError): ForwardResult => ({
      status,
      usage,
      upstreamMs: Math.round(performance.now() - started),
      providerId: current.provider.id,
      model: current.model,
      attempts,
      ...(error ? { errorCode: error.code, error } : {}),
      clientClosed: stopReason === 'client',
      peakBufferedBytes,
    });

    /** The error a cancelled call ends with, for whoever is still listening. */
    const cancelError = (): GatewayError => {
      if (stopReason === 'total-timeout') return new GatewayError('UPSTREAM_TIMEOUT');
      const reason: unknown = request.signal?.reason;
      if (stopReason === 'caller' && reason instanceof GatewayError) return reason;
      return new GatewayError('UPSTREAM_ERROR');
    };

    const fail = (error: GatewayError): ForwardResult => {
      if (stopReason === 'client' || res.destroyed) return result(499, NO_USAGE, error);
      sendVendorError(res, request.format, fromAppError(error, request.requestId));
      return result(error.status, NO_USAGE, error);
    };

    /** One upstream request: connect, headers, and for non-streams the body up to the limit. */
    async function attempt(target: ForwardTarget): Promise<Answer> {
      const upstream = buildUpstreamCall({ ...target, path: request.path, method, body: request.body, stream });
      const controller = new AbortController();
      const onCall = (): void => controller.abort();
      call.signal.addEventListener('abort', onCall, { once: true });
      let firstByteTimedOut = false;
      const firstByteMs = stream ? timeouts.firstByteMs : timeouts.firstByteNonStreamMs;
      const timer = setTimeout(() => {
        firstByteTimedOut = true;
        controller.abort();
      }, firstByteMs);
      attempts++;
      let body: Dispatcher.ResponseData['body'] | null = null;
      try {
        const response = await options.dispatcher.request({
          origin: upstream.origin,
          path: upstream.path,
          method: upstream.method,
          headers: request.hops ? { ...upstream.headers, [HOPS_HEADER]: request.hops.join(',') } : upstream.headers,
          body: upstream.body ?? null,
          signal: controller.signal,
          // The timer above is the first-byte limit; undici's is a backstop just behind it.
          headersTimeout: firstByteMs + 1_000,
          bodyTimeout: timeouts.idleMs,
        });
        body = response.body;
        clearTimeout(timer);
        // Another Gatehouse (or this one) refused the call as a loop: give up on this target at once.
        if (isLoopAnswer(response.headers)) {
          // Discarded with dump(), not destroy(): an unread body destroyed emits an unhandled abort.
          body = null;
          void response.body.dump().catch(() => undefined);
          throw new GatewayError('GATEWAY_LOOP_DETECTED');
        }
        const readable = response.body;
        const iterator = readable[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        const contentType = header(response.headers, 'content-type') ?? '';
        const sse = response.statusCode < 300 && contentType.toLowerCase().startsWith('text/event-stream');
        const answer: Answer = {
          status: response.statusCode,
          headers: response.headers,
          sse,
          head: Buffer.alloc(0),
          rest: iterator,
          addedUsageOption: upstream.addedUsageOption,
          destroy: () => readable.destroy(),
        };
        if (!sse) {
          const limit = response.statusCode < 300 ? maxJsonBufferBytes : maxErrorBodyBytes;
          const { head, complete } = await readUpTo(iterator, limit);
          answer.head = head;
          if (complete) answer.rest = null;
          else if (response.statusCode >= 300) {
            // Only the first part of an error body is kept.
            readable.destroy();
            answer.rest = null;
          }
        }
        if (answer.status >= 500) throw new FailedAnswer(answer);
        return answer;
      } catch (err) {
        body?.destroy();
        if (err instanceof FailedAnswer) throw err;
        if (stopReason !== null) throw new Cancelled();
        if (firstByteTimedOut) throw new GatewayError('UPSTREAM_TIMEOUT', undefined, { cause: err });
        if (isGatewayError(err)) throw err;
        const code = errorCodeOf(err);
        // The cause keeps undici's error for logs: it names host and port, never headers or keys.
        throw new GatewayError(code !== undefined && TIMEOUT_CODES.has(code) ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_ERROR', undefined, { cause: err });
      } finally {
        clearTimeout(timer);
        call.signal.removeEventListener('abort', onCall);
      }
    }

    /** One attempt through the target's breaker, sorted into what to do next. */
    async function tryOnce(target: ForwardTarget): Promise<Outcome> {
      try {
        const answer = await breakers.get(target.provider.id).fire(() => attempt(target));
        if (answer.status === 401 || answer.status === 403) {
          return { kind: 'failed', error: new GatewayError('UPSTREAM_AUTH_FAILED'), retry: false };
        }
        if (answer.status === 429) {
          const retryAfterMs = parseRetryAfter(header(answer.headers, 'retry-after'));
          const seconds = retryAfterMs === undefined ? undefined : Math.min(86_400, Math.ceil(retryAfterMs / 1000));
          const error = new GatewayError('UPSTREAM_RATE_LIMITED', undefined, seconds === undefined ? undefined : { headers: { 'retry-after': String(seconds) } });
          return { kind: 'failed', error, retry: true, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
        }
        if (answer.status >= 300 && answer.status < 400) {
          return { kind: 'failed', error: new GatewayError('UPSTREAM_ERROR'), retry: false };
        }
        return { kind: 'answer', answer };
      } catch (err) {
        if (err instanceof Cancelled) throw err;
        if (err instanceof FailedAnswer) {
          const retryAfterMs = parseRetryAfter(header(err.answer.headers, 'retry-after'));
          return { kind: 'failed', error: new GatewayError('UPSTREAM_ERROR'), retry: true, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
        }
        if (isBreakerOpenError(err)) {
          const seconds = breakers.get(target.provider.id).retryAfterSeconds();
          return { kind: 'failed', error: new GatewayError('UPSTREAM_UNAVAILABLE', undefined, { headers: { 'retry-after': String(seconds) } }), retry: false };
        }
        if (isGatewayError(err, ...REFUSALS)) return { kind: 'failed', error: err, retry: false };
        if (isGatewayError(err)) return { kind: 'failed', error: err, retry: true };
        throw err;
      }
    }

    try {
      // Every failure moves on to the next target: another provider may be healthy, allowed and
      // hold working credentials.
      let outcome: Outcome | null = null;
      chain: for (const target of request.targets) {
        current = target;
        for (let retryNumber = 0; ; retryNumber++) {
          if (stopReason !== null) throw new Cancelled();
          outcome = await tryOnce(target);
          if (outcome.kind === 'answer') break chain;
          if (!outcome.retry || retryNumber >= retry.maxRetries) break;
          let wait = backoffMs(retryNumber + 1);
          if (outcome.retryAfterMs !== undefined) {
            // A provider that asks for a long pause is better served by the next fallback.
            if (outcome.retryAfterMs > retry.maxDelayMs) break;
            wait = Math.max(wait, outcome.retryAfterMs);
          }
          await sleep(wait, undefined, { signal: call.signal }).catch(() => {
            throw new Cancelled();
          });
        }
      }
      if (outcome === null) throw new Cancelled();
      if (outcome.kind === 'failed') return fail(outcome.error);

      const { answer } = outcome;
      active = answer;
      if (stopReason !== null) {
        answer.destroy();
        throw new Cancelled();
      }
      if (answer.sse) return await relayStream(answer);
      if (answer.status >= 400) return relayUpstreamError(answer);
      return await relayJson(answer);
    } catch (err) {
      if (err instanceof Cancelled) return fail(cancelError());
      throw err;
    } finally {
      clearTimeout(totalTimer);
      res.off('close', onResClose);
      request.signal?.removeEventListener('abort', onCallerAbort);
    }

    /** A 4xx from the provider: its status, and its error rebuilt from safe fields (src/gateway/upstream-errors.ts). */
    function relayUpstreamError(answer: Answer): ForwardResult {
      const text = JSON.stringify(rebuildVendorError(request.format, answer.status, answer.head.toString('utf8'), secrets, request.requestId));
      res.writeHead(answer.status, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': String(Buffer.byteLength(text)),
        ...(request.requestId ? { 'x-request-id': request.requestId } : {}),
      });
      res.end(text);
      return result(answer.status, NO_USAGE);
    }

    /** A JSON success: sent whole when it was read whole; otherwise streamed with its tail kept for usage. */
    async function relayJson(answer: Answer): Promise<ForwardResult> {
      const contentType = header(answer.headers, 'content-type') ?? 'application/json';
      if (answer.rest === null) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(answer.head.toString('utf8'));
        } catch {
          parsed = undefined;
        }
        // Metered even if the client is gone by now: the provider has done (and billed) the work.
        const usage = usageFromJson(request.format, parsed, request.body);
        if (res.destroyed) return result(499, usage);
        res.writeHead(answer.status, { 'content-type': contentType, 'content-length': String(answer.head.length) });
        res.end(answer.head);
        return result(answer.status, usage);
      }
      // Too large to hold: pass it through and look for `usage` in the last part.
      res.writeHead(answer.status, { 'content-type': contentType });
      let tail = answer.head.subarray(-65_536);
      const ok = await pipe(answer, answer.head, (chunk) => {
        tail = Buffer.concat([tail, chunk]).subarray(-65_536);
        return chunk;
      });
      if (!ok.completed) {
        // A JSON body cut short cannot carry an error event: breaking the connection tells the client.
        if (!res.destroyed) res.destroy();
        return result(answer.status, usageFromJson(request.format, undefined, request.body), ok.error ?? new GatewayError('UPSTREAM_ERROR'));
      }
      res.end();
      const usage = usageFromJson(request.format, { usage: findUsageInJsonTail(tail.toString('utf8')) }, request.body);
      return result(answer.status, usage);
    }

    /** A stream: relayed chunk by chunk with backpressure, usage read on the way. */
    async function relayStream(answer: Answer): Promise<ForwardResult> {
      res.writeHead(answer.status, {
        'content-type': header(answer.headers, 'content-type') ?? 'text/event-stream',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
      });
      // The headers leave with the first event, in one write; only a provider slow to send its
      // first event gets them on their own, so the client knows the stream has started.
      let relayed = false;
      const headersTimer = setTimeout(() => {
        if (!relayed && !res.destroyed) res.flushHeaders();
      }, STREAM_HEADERS_FLUSH_MS);
      const stripUsage = answer.addedUsageOption;
      const parser = createSseParser();
      const tracker = createStreamUsageTracker(request.format, request.body);
      // Node's StringDecoder: holds a character cut between chunks, and is cheaper per chunk than TextDecoder.
      const decoder = new StringDecoder('utf8');
      let atBlockEnd = true; // what the client got so far ends with a complete event
      const keep = (blocks: SseBlock[]): string => {
        let out = '';
        for (const block of blocks) {
          const { usageOnly } = tracker.observe(block);
          // The usage chunk was asked for by the gateway, not the client, who may not expect it.
          if (!(stripUsage && usageOnly)) out += block.raw;
        }
        if (out.length > 0) atBlockEnd = endsWithBlankLine(out);
        return out;
      };
      // Whole events only (the parser holds back a partial one), so that if the provider breaks
      // off, the error event is not glued to half an event. The bytes are the provider's.
      // No character of the previous chunk is still held by the decoder (it ended in an ASCII byte).
      let decoderEmpty = true;
      const ok = await pipe(answer, Buffer.alloc(0), (chunk) => {
        const text = decoder.write(chunk);
        const out = keep(parser.feed(text));
        if (out.length > 0) {
          relayed = true;
          clearTimeout(headersTimer);
        }
        // The usual case, a chunk of whole events passed on entirely: its own bytes go out, not
        // the same text encoded again.
        const whole = decoderEmpty && out === text && (chunk[chunk.length - 1] ?? 0) < 0x80;
        decoderEmpty = (chunk[chunk.length - 1] ?? 0) < 0x80;
        return whole ? chunk : out;
      });
      clearTimeout(headersTimer);
      const rest = [...parser.feed(decoder.end()), ...parser.end()];
      if (stopReason === 'client' || res.destroyed) {
        keep(rest);
        return result(answer.status, tracker.usage(), ok.error);
      }
      if (!ok.completed) {
        // A partial last event is dropped; the client's parser would discard it anyway.
        const complete = keep(rest.filter((b) => !b.oversized));
        const error = ok.error ?? new GatewayError('UPSTREAM_ERROR');
        const event = toVendorSseErrorEvent(request.format, fromAppError(error, request.requestId));
        res.end(`${complete}${atBlockEnd ? '' : '\n\n'}${event}`);
        return result(answer.status, tracker.usage(), error);
      }
      // The provider ended without a final blank line: pass the last bytes on as they are.
      const tail = keep(rest);
      if (tail.length > 0) res.write(tail);
      res.end();
      return result(answer.status, tracker.usage());
    }

    /**
     * Copies the rest of `answer` to `res`, first `head`, passing each chunk through `transform`,
     * waiting for 'drain' whenever `write` says the buffer is full.
     */
    async function pipe(answer: Answer, head: Buffer, transform: (chunk: Buffer) => Buffer | string): Promise<{ completed: boolean; error?: GatewayError }> {
      const send = async (data: Buffer | string): Promise<boolean> => {
        if (data.length === 0) return true;
        if (stopReason === 'client' || res.destroyed) return false;
        const fits = res.write(data);
        peakBufferedBytes = Math.max(peakBufferedBytes, res.writableLength);
        return fits || (await drained(res));
      };
      try {
        if (!(await send(head))) return { completed: false };
        const iterator = answer.rest;
        if (iterator === null) return { completed: true };
        for (;;) {
          const next = await iterator.next();
          if (next.done) return { completed: true };
          if (!(await send(transform(next.value)))) {
            answer.destroy();
            return { completed: false };
          }
        }
      } catch (err) {
        answer.destroy();
        // The client leaving is not an upstream failure.
        if (stopReason === 'client') return { completed: false };
        if (stopReason === 'total-timeout' || TIMEOUT_CODES.has(errorCodeOf(err) ?? '')) return { completed: false, error: new GatewayError('UPSTREAM_TIMEOUT', undefined, { cause: err }) };
        if (stopReason === 'caller') return { completed: false, error: cancelError() };
        return { completed: false, error: new GatewayError('UPSTREAM_ERROR', undefined, { cause: err }) };
      }
    }
  }

  return {
    forward,
    breakerState: (providerId) => breakers.get(providerId).state,
    breakerStates: () => breakers.states(),
    close: () => breakers.shutdown(),
  };
}
