/**
 * Route-category rate limits (ABUSE-1): per client IP before anything else runs, and per
 * principal once the guard knows who is calling. Headers follow the IETF RateLimit fields
 * draft: `RateLimit-Policy: "ip-auth";q=30;w=60` and `RateLimit: "ip-auth";r=12;t=41`.
 */
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { rateLimitsFor, type Config, type RateCategory } from '../config/schema.ts';
import type { Kv, SlidingWindowResult } from '../store/kv/types.ts';
import { AppError } from './errors.ts';

export interface RateLimiterDeps {
  config: Config;
  kv: Kv;
  logger: Logger;
  now: () => number;
  hits: Counter<'category' | 'scope'>;
}

// The policy header is constant per policy and limit; built once.
const policyHeaders = new Map<string, string>();

function setHeaders(reply: FastifyReply, policy: string, result: SlidingWindowResult, windowSeconds: number): void {
  const key = `${policy}|${result.limit}|${windowSeconds}`;
  let header = policyHeaders.get(key);
  if (header === undefined) {
    header = `"${policy}";q=${result.limit};w=${windowSeconds}`;
    policyHeaders.set(key, header);
  }
  reply.header('ratelimit-policy', header);
  reply.header('ratelimit', `"${policy}";r=${result.remaining};t=${Math.ceil(result.resetMs / 1000)}`);
}

/**
 * Counts one request against `scope` (ip or principal) of a category; throws RATE_LIMITED or,
 * when the counter store fails and `rateLimit.onStoreError` is closed, SERVICE_UNAVAILABLE with
 * Retry-After (open, and the ops category always, let the request through uncounted). `own` replaces the
 * category's window for a principal that carries its own limit (an API key's).
 */
export async function enforceRateLimit(
  deps: RateLimiterDeps,
  reply: FastifyReply,
  category: RateCategory,
  scope: 'ip' | 'principal',
  subject: string,
  own?: { limit: number; windowSeconds: number },
): Promise<void> {
  if (!deps.config.rateLimit.enabled) return;
  const window = own ?? rateLimitsFor(deps.config, category)[scope];
  const policy = `${scope}-${category}`;
  let result: SlidingWindowResult;
  try {
    result = await deps.kv.hitSlidingWindow(`rl:${policy}:${subject}`, window.limit, window.windowSeconds * 1000, deps.now());
  } catch (err) {
    deps.logger.error({ err, category, scope }, 'rate limit store unavailable');
    // Operators' routes (readiness, metrics) are let through whatever the setting: they are
    // cheap, read-only, and are how an operator sees that the counter store is down.
    if (deps.config.rateLimit.onStoreError === 'open' || category === 'ops') return;
    // The error handler adds Retry-After to every 503.
    throw new AppError('SERVICE_UNAVAILABLE');
  }
  setHeaders(reply, policy, result, window.windowSeconds);
  if (!result.allowed) {
    deps.hits.inc({ category, scope });
    const retryAfter = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
    throw new AppError('RATE_LIMITED', undefined, { headers: { 'retry-after': String(retryAfter) } });
  }
}
