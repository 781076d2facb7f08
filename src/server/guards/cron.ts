import { constantTimeEqual } from '../../crypto/compare.ts';
import { AppError } from '../errors.ts';
import { bearerToken } from './bearer.ts';
import type { GuardFn } from './types.ts';

/**
 * A scheduler presenting `cron.secret` (or, during a rotation, one of `cron.previousSecrets`) as a
 * bearer token. Every configured secret is compared, in constant time, whatever matched first, so
 * the time taken says nothing about which one matched. Unconfigured: always refused.
 */
export const cronGuard: GuardFn = async (request, _spec, deps) => {
  const { secret, previousSecrets } = deps.config.cron;
  const token = bearerToken(request);
  if (!secret || !token) throw new AppError('UNAUTHENTICATED');
  let matched = false;
  for (const candidate of [secret, ...previousSecrets]) matched = constantTimeEqual(token, candidate) || matched;
  if (!matched) throw new AppError('UNAUTHENTICATED');
  return { kind: 'service', id: 'cron' };
};
