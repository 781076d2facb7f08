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
 *
 * The call is a pipeline over one explicit state object (./proxy-call.ts): select (the chain
 * checked, the call opened: ./proxy-call.ts) -> attempt with timeouts, retries and breakers
 * (./proxy-attempt.ts) -> relay JSON or SSE (./proxy-relay.ts).
 */
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { createBreakerRegistry, type BreakerRegistry, type BreakerState, type BreakerTransitionListener } from './breakers.ts';
import {
  breakerConfigSchema,
  retryConfigSchema,
  timeoutsConfigSchema,
  type BreakerConfig,
  type RetryConfig,
  type TimeoutsConfig,
} from './config.ts';
import { isGatewayError } from './errors.ts';
import { attemptChain, REFUSALS, type AttemptContext } from './proxy-attempt.ts';
import { cancelError, Cancelled, failCall, openCall, type ForwardRequest, type ForwardResult } from './proxy-call.ts';
import { relayAnswer } from './proxy-relay.ts';

export type { ForwardRequest, ForwardResult, ForwardTarget } from './proxy-call.ts';

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

/**
 * Creates the proxy: one per process, sharing the dispatcher's connection pools and one circuit
 * breaker per provider id.
 * @example const proxy = createGatewayProxy({ dispatcher: createUpstreamAgent(config.upstream), ...config })
 */
export function createGatewayProxy(options: GatewayProxyOptions): GatewayProxy {
  const timeouts = timeoutsConfigSchema.parse(options.timeouts ?? {});
  const breakers: BreakerRegistry = createBreakerRegistry(
    breakerConfigSchema.parse(options.breaker ?? {}),
    (err) => err instanceof Cancelled || isGatewayError(err, ...REFUSALS),
    Date.now,
    options.onBreakerTransition,
  );
  const ctx: AttemptContext = {
    dispatcher: options.dispatcher,
    timeouts,
    retry: retryConfigSchema.parse(options.retry ?? {}),
    breakers,
    maxJsonBufferBytes: options.maxJsonBufferBytes ?? 16 * 1024 * 1024,
    maxErrorBodyBytes: options.maxErrorBodyBytes ?? 64 * 1024,
    random: options.random ?? Math.random,
  };

  async function forward(request: ForwardRequest, res: ServerResponse): Promise<ForwardResult> {
    const state = openCall(request, res, timeouts.totalMs);
    try {
      const outcome = await attemptChain(ctx, state);
      if (outcome.kind === 'failed') return failCall(state, outcome.error);
      return await relayAnswer(state, outcome.answer);
    } catch (err) {
      if (err instanceof Cancelled) return failCall(state, cancelError(state));
      throw err;
    } finally {
      state.close();
    }
  }

  return {
    forward,
    breakerState: (providerId) => breakers.get(providerId).state,
    breakerStates: () => breakers.states(),
    close: () => breakers.shutdown(),
  };
}
