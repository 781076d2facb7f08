import type { FastifyRequest } from 'fastify';
import type { Config } from '../../config/schema.ts';
import type { GuardSpec, Principal, Verifiers } from '../route.ts';

export interface GuardDeps {
  config: Config;
  verifiers: Verifiers;
}

/** A guard lets a request through with its principal (undefined for public) or throws UNAUTHENTICATED/FORBIDDEN. */
export type GuardFn = (request: FastifyRequest, spec: GuardSpec, deps: GuardDeps) => Promise<Principal | undefined>;
