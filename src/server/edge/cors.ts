/**
 * CORS (EDGE-3). Everywhere: only for the configured origins; any other origin gets no CORS
 * headers at all.
 *
 * Routes that declare `cors: 'any-origin'` (the AI gateway's routes, GW-6) are the exception: a
 * preflight cannot carry the credential (browsers send no Authorization header with it), so it
 * cannot know which origins the client token presented later allows. Their preflights and
 * responses are allowed for every origin, without credentials (no cookies: these routes take a
 * header credential only), and the guard's verifier refuses the actual request whose `Origin` the
 * presented credential does not allow (403 ORIGIN_NOT_ALLOWED). So a page on an origin a token
 * does not name sends its request but never gets an answer but the refusal.
 */
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Feature } from '../route.ts';

const STRICT_BASE = {
  credentials: true,
  methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
  allowedHeaders: ['authorization', 'content-type', 'x-api-key', 'x-csrf-token', 'idempotency-key'],
  exposedHeaders: ['x-request-id', 'ratelimit', 'ratelimit-policy', 'retry-after'],
  maxAge: 600,
  strictPreflight: true,
} satisfies FastifyCorsOptions;

/**
 * Open to every origin, no credentials; the request headers a preflight asks for are reflected
 * (the vendors' browser SDKs send their own `x-stainless-*` / `anthropic-*` headers).
 */
const OPEN: FastifyCorsOptions = {
  origin: true,
  credentials: false,
  methods: ['GET', 'POST'],
  exposedHeaders: ['x-request-id', 'ratelimit', 'ratelimit-policy', 'retry-after', 'x-should-retry'],
  maxAge: 600,
  strictPreflight: true,
};

/**
 * `origins` is read per request (the list reloads); its parsed set is kept until the list changes.
 * @param openPaths exact paths of routes declaring `cors: 'any-origin'` (parameterless by rule).
 */
export async function registerCors(app: FastifyInstance, origins: () => readonly string[], openPaths: ReadonlySet<string> = new Set()): Promise<void> {
  let list: readonly string[] | undefined;
  let allowed = new Set<string>();
  const current = (): Set<string> => {
    const now = origins();
    if (now !== list) {
      list = now;
      allowed = new Set(now.map((o) => new URL(o).origin));
    }
    return allowed;
  };
  const strict: FastifyCorsOptions = {
    ...STRICT_BASE,
    origin: (origin, cb) => {
      cb(null, origin !== undefined && current().has(origin));
    },
  };
  if (openPaths.size === 0) {
    await app.register(cors, strict);
    return;
  }
  await app.register(cors, {
    delegator: (request: FastifyRequest, cb: (err: Error | null, options: FastifyCorsOptions) => void) => {
      const path = request.url.split('?', 1)[0] ?? '';
      cb(null, openPaths.has(path) ? OPEN : strict);
    },
  });
}

/** The paths of routes that open CORS to any origin (their guard checks the origin per credential). */
export function openCorsPaths(features: readonly Feature[]): Set<string> {
  return new Set(features.flatMap((f) => f.routes.filter((r) => r.cors === 'any-origin').map((r) => r.url)));
}
