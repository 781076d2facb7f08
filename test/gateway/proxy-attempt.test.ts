import { describe, expect, it } from 'vitest';
import { retryConfigSchema } from '../../src/gateway/config.ts';
import { GatewayError, isGatewayError } from '../../src/gateway/errors.ts';
import { outcomeOfAnswer, parseRetryAfter, retryDelayMs, type Outcome } from '../../src/gateway/proxy-attempt.ts';
import type { Answer } from '../../src/gateway/proxy-call.ts';

const answer = (status: number, headers: Answer['headers'] = {}): Answer => ({ status, headers, sse: false, head: Buffer.alloc(0), rest: null, addedUsageOption: false, destroy: () => undefined });
const retry = retryConfigSchema.parse({ maxRetries: 2, baseDelayMs: 100, maxDelayMs: 1_000 });
const failed = (retryable: boolean, retryAfterMs?: number): Extract<Outcome, { kind: 'failed' }> => ({
  kind: 'failed',
  error: new GatewayError('UPSTREAM_ERROR'),
  retry: retryable,
  ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
});

describe('proxy attempt decisions', () => {
  it('sorts answers: 2xx and 4xx are relayed, 401/403 fail as UPSTREAM_AUTH_FAILED without retry, 3xx fail, 429 retries', () => {
    expect(outcomeOfAnswer(answer(200)).kind).toBe('answer');
    expect(outcomeOfAnswer(answer(400)).kind).toBe('answer');
    for (const status of [401, 403]) {
      const o = outcomeOfAnswer(answer(status));
      expect(o.kind === 'failed' && isGatewayError(o.error, 'UPSTREAM_AUTH_FAILED') && !o.retry).toBe(true);
    }
    const redirect = outcomeOfAnswer(answer(302));
    expect(redirect.kind === 'failed' && isGatewayError(redirect.error, 'UPSTREAM_ERROR') && !redirect.retry).toBe(true);
    const limited = outcomeOfAnswer(answer(429, { 'retry-after': '3' }));
    expect(limited).toMatchObject({ kind: 'failed', retry: true, retryAfterMs: 3_000 });
    expect(limited.kind === 'failed' && limited.error.code === 'UPSTREAM_RATE_LIMITED' && limited.error.headers?.['retry-after']).toBe('3');
  });

  it('a 429 asking for more than a day is passed on as one day', () => {
    const o = outcomeOfAnswer(answer(429, { 'retry-after': '999999' }));
    expect(o.kind === 'failed' && o.error.headers?.['retry-after']).toBe('86400');
  });

  it('backs off exponentially with jitter, up to maxRetries, then moves to the next target', () => {
    expect(retryDelayMs(failed(true), 1, retry, () => 0)).toBe(50);
    expect(retryDelayMs(failed(true), 1, retry, () => 0.999_999)).toBe(100);
    expect(retryDelayMs(failed(true), 2, retry, () => 0)).toBe(100);
    expect(retryDelayMs(failed(true), 3, retry, () => 0)).toBeNull();
    expect(retryDelayMs(failed(false), 1, retry, () => 0)).toBeNull();
    // Capped at maxDelayMs.
    expect(retryDelayMs(failed(true), 2, { ...retry, maxRetries: 20, baseDelayMs: 800 }, () => 1)).toBe(1_000);
  });

  it('honours a short Retry-After, and falls back at once when the provider asks for a long pause', () => {
    expect(retryDelayMs(failed(true, 400), 1, retry, () => 0)).toBe(400);
    expect(retryDelayMs(failed(true, 0), 1, retry, () => 0)).toBe(50);
    expect(retryDelayMs(failed(true, 2_000), 1, retry, () => 0)).toBeNull();
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2_000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
