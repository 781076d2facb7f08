/** Prometheus metrics of the HTTP edge (OPS-2); one registry per server instance. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

export interface HttpMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route'>;
  rateLimitHits: Counter<'category' | 'scope'>;
}

export function createHttpMetrics(options: { defaultMetrics: boolean }): HttpMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
  return {
    registry,
    requests: new Counter({
      name: 'gatehouse_http_requests_total',
      help: 'HTTP requests by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'HTTP request latency by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    rateLimitHits: new Counter({
      name: 'gatehouse_rate_limit_hits_total',
      help: 'Requests refused by a rate limit, by route category and scope (ip or principal).',
      labelNames: ['category', 'scope'],
      registers: [registry],
    }),
  };
}

/** A breaker state as the gauge reports it: 0 closed, 1 half-open, 2 open. */
export const BREAKER_STATE_VALUES = { closed: 0, 'half-open': 1, open: 2 } as const;
export type BreakerStateName = keyof typeof BREAKER_STATE_VALUES;

export interface BreakerMetrics {
  /** Counts one state change of a provider's breaker. */
  transition(provider: string, from: BreakerStateName, to: BreakerStateName): void;
  /** The metrics, for `registry.registerMetric` once the server's registry exists. */
  metrics: Metric[];
}

/**
 * Circuit-breaker metrics (OPS-2, GW-3): a gauge of each provider breaker's state, read from
 * `readStates` at scrape time, and a counter of state changes. Provider labels are provider ids
 * (`platform:<id>`, `workspace:<workspace id>:<name>`): the endpoint is for operators only.
 * @example const m = createBreakerMetrics(() => proxy.breakerStates()); m.metrics.forEach((x) => registry.registerMetric(x))
 */
export function createBreakerMetrics(readStates: () => Iterable<readonly [string, BreakerStateName]>): BreakerMetrics {
  const state = new Gauge({
    name: 'gatehouse_gateway_breaker_state',
    help: 'Circuit breaker state per AI provider: 0 closed, 1 half-open, 2 open.',
    labelNames: ['provider'],
    registers: [],
    collect() {
      this.reset();
      for (const [provider, name] of readStates()) this.set({ provider }, BREAKER_STATE_VALUES[name]);
    },
  });
  const transitions = new Counter({
    name: 'gatehouse_gateway_breaker_transitions_total',
    help: 'Circuit breaker state changes per AI provider, by the state left and the state entered.',
    labelNames: ['provider', 'from', 'to'],
    registers: [],
  });
  return {
    transition: (provider, from, to) => transitions.inc({ provider, from, to }),
    metrics: [state, transitions],
  };
}
