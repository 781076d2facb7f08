import { constantTimeEqual } from '../../crypto/compare.ts';
import { AppError } from '../errors.ts';
import { bearerToken } from './bearer.ts';
import type { GuardFn } from './types.ts';

/** A scheduler presenting `cron.secret` as a bearer token. Unconfigured: always refused. */
export const cronGuard: GuardFn = async (request, _spec, deps) => {
  const secret = deps.config.cron.secret;
  const token = bearerToken(request);
  if (!secret || !token || !constantTimeEqual(token, secret)) throw new AppError('UNAUTHENTICATED');
  return { kind: 'service', id: 'cron' };
};
