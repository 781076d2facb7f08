/**
 * One circuit breaker per provider (GW-3), with opossum. A breaker guards the part of a call that
 * decides whether the provider is healthy: connecting and receiving the answer's headers (and, for a
 * JSON answer, its body). Connect errors, timeouts and 5xx count as failures; 4xx and 429 do not
 * (the provider is up and answering), nor do calls the client or the gateway cancelled.
 *
 * opossum opens a breaker when, within the rolling window, at least `volumeThreshold` calls were
 * made and more than `errorThresholdPercentage` of them failed. While open it rejects at once; after
 * `resetTimeoutMs` it lets one probe through (half-open), which closes it on success and opens it
 * again on failure.
 */
import CircuitBreaker from 'opossum';
import type { BreakerConfig } from './config.ts';

/** The state of one provider's breaker. */
export type BreakerState = 'closed' | 'open' | 'half-open';

type Action = () => Promise<unknown>;

export interface ProviderBreaker {
  /** Runs `action` through the breaker. Rejects with an error whose code is `EOPENBREAKER` when open. */
  fire<T>(action: () => Promise<T>): Promise<T>;
  readonly state: BreakerState;
  /** Seconds until an open breaker lets a probe through (at least 1), or 0 when it is not open. */
  retryAfterSeconds(): number;
}

export interface BreakerRegistry {
  get(providerId: string): ProviderBreaker;
  /** Every breaker made so far with its state, for the metrics gauge. */
  states(): [providerId: string, state: BreakerState][];
  /** Stops every breaker's timers. */
  shutdown(): void;
}

/** True for the rejection of a call that an open breaker refused. */
export function isBreakerOpenError(err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'EOPENBREAKER';
}

/** Called when a provider's breaker changes state (OPS-2: counted in /metrics). */
export type BreakerTransitionListener = (providerId: string, from: BreakerState, to: BreakerState) => void;

/**
 * Breakers for providers, made on first use. `isNeutral(err)` tells errors that must not count as
 * failures (cancellations, the gateway's own refusals).
 * @example const breakers = createBreakerRegistry(config.breaker, (e) => isClientAbort(e))
 */
export function createBreakerRegistry(
  config: BreakerConfig,
  isNeutral: (err: unknown) => boolean,
  now: () => number = Date.now,
  onTransition: BreakerTransitionListener = () => undefined,
): BreakerRegistry {
  const breakers = new Map<string, ProviderBreaker & { circuit: CircuitBreaker<[Action], unknown> }>();
  // opossum splits its window into buckets; 10 keeps the count fine-grained.
  const buckets = 10;
  const window = Math.max(buckets, Math.round(config.windowMs / buckets) * buckets);

  return {
    get(providerId) {
      const existing = breakers.get(providerId);
      if (existing) return existing;
      const circuit = new CircuitBreaker<[Action], unknown>((action: Action) => action(), {
        name: providerId,
        timeout: false, // the proxy enforces its own timeouts
        resetTimeout: config.resetTimeoutMs,
        rollingCountTimeout: window,
        rollingCountBuckets: buckets,
        volumeThreshold: config.volumeThreshold,
        errorThresholdPercentage: config.errorThresholdPercentage,
        errorFilter: (err: unknown) => isNeutral(err),
      });
      let openedAt = 0;
      let last: BreakerState = 'closed';
      const moveTo = (next: BreakerState): void => {
        if (next === last) return;
        const from = last;
        last = next;
        onTransition(providerId, from, next);
      };
      circuit.on('open', () => {
        openedAt = now();
        moveTo('open');
      });
      circuit.on('halfOpen', () => moveTo('half-open'));
      circuit.on('close', () => moveTo('closed'));
      const breaker = {
        circuit,
        fire<T>(action: () => Promise<T>): Promise<T> {
          return circuit.fire(action) as Promise<T>;
        },
        get state(): BreakerState {
          if (circuit.halfOpen) return 'half-open';
          return circuit.opened ? 'open' : 'closed';
        },
        retryAfterSeconds(): number {
          if (!circuit.opened && !circuit.halfOpen) return 0;
          return Math.max(1, Math.ceil((openedAt + config.resetTimeoutMs - now()) / 1000));
        },
      };
      breakers.set(providerId, breaker);
      return breaker;
    },
    states() {
      return [...breakers].map(([id, b]) => [id, b.state]);
    },
    shutdown() {
      for (const b of breakers.values()) b.circuit.shutdown();
      breakers.clear();
    },
  };
}
