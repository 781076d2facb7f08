import { AppError } from '../errors.ts';
import { bearerToken } from './bearer.ts';
import type { GuardFn } from './types.ts';

/**
 * A signed-in user: a bearer access token checked by the identity feature's verifier.
 * Without a verifier registered, no session can exist, so every request is refused.
 */
export const sessionGuard: GuardFn = async (request, _spec, deps) => {
  const token = bearerToken(request);
  const verify = deps.verifiers.session;
  if (!token || !verify) throw new AppError('UNAUTHENTICATED');
  const principal = await verify(token, request);
  if (!principal) throw new AppError('UNAUTHENTICATED');
  return principal;
};
