import { constantTimeEqual } from '../../crypto/compare.ts';
import { AppError } from '../errors.ts';
import { bearerToken } from './bearer.ts';
import type { GuardFn } from './types.ts';

/** A Prometheus scraper presenting `metrics.token`, unless metrics are configured open. */
export const metricsGuard: GuardFn = async (request, _spec, deps) => {
  if (deps.config.metrics.open) return { kind: 'service', id: 'metrics' };
  const expected = deps.config.metrics.token;
  const token = bearerToken(request);
  if (!expected || !token || !constantTimeEqual(token, expected)) throw new AppError('UNAUTHENTICATED');
  return { kind: 'service', id: 'metrics' };
};
