/** Prometheus metrics of the HTTP edge (OPS-2); one registry per server instance. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
