import type { FastifyRequest } from 'fastify';
import { publicOriginOf } from '../../config/schema.ts';
import { constantTimeEqual } from '../../crypto/compare.ts';
import { AppError } from '../errors.ts';
import { bearerToken } from './bearer.ts';
import type { GuardFn } from './types.ts';

/** Browser sessions (AUTH-4): __Host- cookies are Secure, Path=/ and bound to this host. */
export const ACCESS_COOKIE = '__Host-gh_access';
export const REFRESH_COOKIE = '__Host-gh_refresh';
export const CSRF_COOKIE = '__Host-gh_csrf';
export const CSRF_HEADER = 'x-csrf-token';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * For a cookie-authenticated state-changing request: the X-CSRF-Token header must equal the CSRF
 * cookie (double submit), and the request must come from an allowed origin (Origin header, or
 * Sec-Fetch-Site same-origin when the browser sends no Origin). Throws CSRF_FAILED.
 */
export function assertCsrf(request: FastifyRequest, allowedOrigins: readonly string[]): void {
  const header = request.headers[CSRF_HEADER];
  const cookie = request.cookies?.[CSRF_COOKIE];
  if (typeof header !== 'string' || !cookie || header.length > 256 || !constantTimeEqual(header, cookie)) throw new AppError('CSRF_FAILED');
  const origin = request.headers.origin;
  if (typeof origin === 'string') {
    if (!allowedOrigins.includes(origin)) throw new AppError('CSRF_FAILED');
    return;
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== 'same-origin' && site !== 'none') throw new AppError('CSRF_FAILED');
}

/**
 * A signed-in user: a bearer access token, or the access cookie of a browser session (then
 * state-changing methods also need the CSRF checks). The identity feature's verifier decides
 * whether the token is valid and not revoked; without one, every request is refused.
 */
export const sessionGuard: GuardFn = async (request, _spec, deps) => {
  const verify = deps.verifiers.session;
  let token = bearerToken(request);
  if (!token) {
    const cookie = request.cookies?.[ACCESS_COOKIE];
    if (cookie && cookie.length <= 4096) {
      if (!SAFE_METHODS.has(request.method)) assertCsrf(request, [publicOriginOf(deps.config), ...deps.config.cors.origins]);
      token = cookie;
    }
  }
  if (!token || !verify) throw new AppError('UNAUTHENTICATED');
  const principal = await verify(token, request);
  if (!principal) throw new AppError('UNAUTHENTICATED');
  return principal;
};
