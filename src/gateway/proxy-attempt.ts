/**
 * The attempt stage of a proxied call (src/gateway/proxy.ts): each target of the chain is tried up
 * to `1 + maxRetries` times (exponential backoff with jitter, honouring a short `Retry-After`) on
 * connect errors, timeouts, 5xx and 429, through the target's circuit breaker; the next target is
 * tried when one gives up, is refused (allowlist, credentials, a loop) or has its breaker open.
 * The decisions (`outcomeOfAnswer`, `retryDelayMs`) are pure functions, tested without HTTP.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { isBreakerOpenError, type BreakerRegistry } from './breakers.ts';
import type { RetryConfig, TimeoutsConfig } from './config.ts';
import type { GatewayErrorCode } from './error-codes.ts';
import { GatewayError, isGatewayError } from './errors.ts';
import { HOPS_HEADER, isLoopAnswer } from './loop.ts';
import { buildUpstreamCall } from './providers.ts';
import { Cancelled, type Answer, type CallState, type ForwardTarget } from './proxy-call.ts';

/** What the attempt stage needs of the proxy: shared by every call of the process. */
export interface AttemptContext {
  dispatcher: Dispatcher;
  timeouts: TimeoutsConfig;
  retry: RetryConfig;
  breakers: BreakerRegistry;
  maxJsonBufferBytes: number;
  maxErrorBodyBytes: number;
  /** Random source for the backoff jitter, in [0, 1). */
  random: () => number;
}

export type Outcome =
  | { kind: 'answer'; answer: Answer }
  | { kind: 'failed'; error: GatewayError; retry: boolean; retryAfterMs?: number };

/** A 5xx: thrown inside the breaker so it counts as a failure, unwrapped outside. */
class FailedAnswer extends Error {
  readonly answer: Answer;
  constructor(answer: Answer) {
    super('upstream answered with a server error');
    this.answer = answer;
  }
}

export const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
/** Refusals: never a breaker failure, never retried on the same target. */
export const REFUSALS: readonly GatewayErrorCode[] = ['UPSTREAM_HOST_NOT_ALLOWED', 'UPSTREAM_PORT_NOT_ALLOWED', 'UPSTREAM_ADDRESS_NOT_ALLOWED', 'UPSTREAM_SCHEME_NOT_ALLOWED', 'GATEWAY_LOOP_DETECTED'];

export function header(headers: Answer['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function errorCodeOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
}

/** `Retry-After` (seconds or an HTTP date) in milliseconds, or undefined. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d{1,9}$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Sorts an answer below 500 (a 5xx was thrown through the breaker): relay it, or fail, retryable or not. */
export function outcomeOfAnswer(answer: Answer): Outcome {
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
}

/**
 * How long to wait before retry number `retryNumber` (1-based) of the same target after a failed
 * `outcome`, or null to move on to the next target (not retryable, retries used up, or a
 * `Retry-After` longer than the longest backoff: the next fallback serves the client better).
 * The backoff is exponential, half of it random.
 */
export function retryDelayMs(outcome: Extract<Outcome, { kind: 'failed' }>, retryNumber: number, retry: RetryConfig, random: () => number): number | null {
  if (!outcome.retry || retryNumber > retry.maxRetries) return null;
  const full = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (retryNumber - 1));
  const wait = Math.round(full / 2 + random() * (full / 2));
  if (outcome.retryAfterMs === undefined) return wait;
  if (outcome.retryAfterMs > retry.maxDelayMs) return null;
  return Math.max(wait, outcome.retryAfterMs);
}

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

/** One upstream request: connect, headers, and for non-streams the body up to the limit. */
async function attempt(ctx: AttemptContext, state: CallState, target: ForwardTarget): Promise<Answer> {
  const { request } = state;
  const { stream } = request;
  const upstream = buildUpstreamCall({ ...target, path: request.path, method: state.method, body: request.body, stream });
  const controller = new AbortController();
  const onCall = (): void => controller.abort();
  state.controller.signal.addEventListener('abort', onCall, { once: true });
  let firstByteTimedOut = false;
  const firstByteMs = stream ? ctx.timeouts.firstByteMs : ctx.timeouts.firstByteNonStreamMs;
  const timer = setTimeout(() => {
    firstByteTimedOut = true;
    controller.abort();
  }, firstByteMs);
  state.attempts++;
  let body: Dispatcher.ResponseData['body'] | null = null;
  try {
    const response = await ctx.dispatcher.request({
      origin: upstream.origin,
      path: upstream.path,
      method: upstream.method,
      headers: request.hops ? { ...upstream.headers, [HOPS_HEADER]: request.hops.join(',') } : upstream.headers,
      body: upstream.body ?? null,
      signal: controller.signal,
      // The timer above is the first-byte limit; undici's is a backstop just behind it.
      headersTimeout: firstByteMs + 1_000,
      bodyTimeout: ctx.timeouts.idleMs,
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
      const limit = response.statusCode < 300 ? ctx.maxJsonBufferBytes : ctx.maxErrorBodyBytes;
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
    if (state.stopReason !== null) throw new Cancelled();
    if (firstByteTimedOut) throw new GatewayError('UPSTREAM_TIMEOUT', undefined, { cause: err });
    if (isGatewayError(err)) throw err;
    const code = errorCodeOf(err);
    // The cause keeps undici's error for logs: it names host and port, never headers or keys.
    throw new GatewayError(code !== undefined && TIMEOUT_CODES.has(code) ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_ERROR', undefined, { cause: err });
  } finally {
    clearTimeout(timer);
    state.controller.signal.removeEventListener('abort', onCall);
  }
}

/** One attempt through the target's breaker, sorted into what to do next. */
async function tryOnce(ctx: AttemptContext, state: CallState, target: ForwardTarget): Promise<Outcome> {
  try {
    const answer = await ctx.breakers.get(target.provider.id).fire(() => attempt(ctx, state, target));
    return outcomeOfAnswer(answer);
  } catch (err) {
    if (err instanceof Cancelled) throw err;
    if (err instanceof FailedAnswer) {
      const retryAfterMs = parseRetryAfter(header(err.answer.headers, 'retry-after'));
      return { kind: 'failed', error: new GatewayError('UPSTREAM_ERROR'), retry: true, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    }
    if (isBreakerOpenError(err)) {
      const seconds = ctx.breakers.get(target.provider.id).retryAfterSeconds();
      return { kind: 'failed', error: new GatewayError('UPSTREAM_UNAVAILABLE', undefined, { headers: { 'retry-after': String(seconds) } }), retry: false };
    }
    if (isGatewayError(err, ...REFUSALS)) return { kind: 'failed', error: err, retry: false };
    if (isGatewayError(err)) return { kind: 'failed', error: err, retry: true };
    throw err;
  }
}

/**
 * The attempt stage: the chain in order, each target with its retries, until one answers. Every
 * failure moves on to the next target: another provider may be healthy, allowed and hold working
 * credentials. Returns the answer, or the last failure; throws Cancelled when the call stopped.
 */
export async function attemptChain(ctx: AttemptContext, state: CallState): Promise<Outcome> {
  let outcome: Outcome | null = null;
  for (const target of state.request.targets) {
    state.current = target;
    for (let retryNumber = 1; ; retryNumber++) {
      if (state.stopReason !== null) throw new Cancelled();
      outcome = await tryOnce(ctx, state, target);
      if (outcome.kind === 'answer') return outcome;
      const wait = retryDelayMs(outcome, retryNumber, ctx.retry, ctx.random);
      if (wait === null) break;
      await sleep(wait, undefined, { signal: state.controller.signal }).catch(() => {
        throw new Cancelled();
      });
    }
  }
  if (outcome === null) throw new Cancelled();
  return outcome;
}
