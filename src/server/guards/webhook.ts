import { AppError } from '../errors.ts';
import type { GuardFn } from './types.ts';

/** An inbound webhook whose signature the provider's verifier accepts; unknown providers are refused. */
export const webhookGuard: GuardFn = async (request, spec, deps) => {
  if (spec.kind !== 'webhook') throw new Error('webhookGuard used for another guard kind');
  const verify = deps.verifiers.webhook?.[spec.provider];
  if (!verify) throw new AppError('UNAUTHENTICATED');
  const principal = await verify(request);
  if (!principal) throw new AppError('UNAUTHENTICATED');
  return principal;
};
