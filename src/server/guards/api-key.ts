import { AppError } from '../errors.ts';
import { bearerToken } from './bearer.ts';
import type { GuardFn } from './types.ts';

/**
 * A Gatehouse API key (bearer, or `x-api-key` as Anthropic clients send it) holding the
 * route's scope, checked by the keys feature's verifier. Without one, every request is refused.
 */
export const apiKeyGuard: GuardFn = async (request, spec, deps) => {
  if (spec.kind !== 'apiKey') throw new Error('apiKeyGuard used for another guard kind');
  const header = request.headers['x-api-key'];
  const key = bearerToken(request) ?? (typeof header === 'string' && header.length <= 4096 ? header : undefined);
  const verify = deps.verifiers.apiKey;
  if (!key || !verify) throw new AppError('UNAUTHENTICATED');
  const principal = await verify(key, spec.scope, request);
  if (!principal) throw new AppError('UNAUTHENTICATED');
  if (!principal.scopes?.includes(spec.scope)) throw new AppError('FORBIDDEN', `This API key lacks the scope ${spec.scope}.`);
  return principal;
};
