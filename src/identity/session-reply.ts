/**
 * The answer of a finished sign-in and the session cookies (AUTH-3, AUTH-4): bearer tokens in the
 * body, or __Host- cookies with a double-submit CSRF token for browsers. Every way to sign in
 * (password, second factor, passkey, social, SSO) answers through here; other folders import it
 * from identity's index.ts.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE } from '../server/guards/session.ts';
import { userSessionOf } from '../server/principal.ts';
import type { SignedIn } from './accounts.ts';
import { DEVICE_COOKIE } from './devices.ts';
import type { IssuedTokens } from './sessions.ts';

export const tokensResponse = z.object({
  tokenType: z.literal('Bearer'),
  accessToken: z.string(),
  expiresIn: z.number(),
  refreshToken: z.string(),
  refreshExpiresIn: z.number(),
  sessionId: z.string(),
});
export const cookieResponse = z.object({ sessionId: z.string(), expiresIn: z.number(), csrfToken: z.string() });

export const COOKIE_BASE = { httpOnly: true, secure: true, sameSite: 'lax' as const, path: '/' };

export function setSessionCookies(reply: FastifyReply, tokens: IssuedTokens, now: number): string {
  const csrf = randomBytes(32).toString('base64url');
  reply.setCookie(ACCESS_COOKIE, tokens.accessToken, { ...COOKIE_BASE, maxAge: Math.max(1, Math.floor((tokens.accessExpiresAt - now) / 1000)) });
  reply.setCookie(REFRESH_COOKIE, tokens.refreshToken, { ...COOKIE_BASE, maxAge: Math.max(1, Math.floor((tokens.refreshExpiresAt - now) / 1000)) });
  // Readable by the page's script, which echoes it in X-CSRF-Token (double submit).
  reply.setCookie(CSRF_COOKIE, csrf, { ...COOKIE_BASE, httpOnly: false, maxAge: Math.max(1, Math.floor((tokens.refreshExpiresAt - now) / 1000)) });
  return csrf;
}

export function clearSessionCookies(reply: FastifyReply): void {
  for (const name of [ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE]) reply.clearCookie(name, COOKIE_BASE);
}

export function tokenBody(tokens: IssuedTokens, now: number) {
  return {
    tokenType: 'Bearer' as const,
    accessToken: tokens.accessToken,
    expiresIn: Math.floor((tokens.accessExpiresAt - now) / 1000),
    refreshToken: tokens.refreshToken,
    refreshExpiresIn: Math.floor((tokens.refreshExpiresAt - now) / 1000),
    sessionId: tokens.sessionId,
  };
}

/** The answer of a finished sign-in, the same for the password step and the second-factor step. */
export function signedInReply(reply: FastifyReply, mode: 'bearer' | 'cookie', signedIn: SignedIn, t: number) {
  const { tokens, device } = signedIn;
  reply.setCookie(DEVICE_COOKIE, device.cookie, { ...COOKIE_BASE, maxAge: 400 * 86_400 });
  if (mode === 'cookie') {
    const csrfToken = setSessionCookies(reply, tokens, t);
    return { sessionId: tokens.sessionId, expiresIn: Math.floor((tokens.accessExpiresAt - t) / 1000), csrfToken };
  }
  return tokenBody(tokens, t);
}

/** The signed-in user and session of a request behind the session guard (UNAUTHENTICATED otherwise). */
export function sessionOf(request: FastifyRequest): { userId: string; sessionId: string } {
  return userSessionOf(request.principal);
}
