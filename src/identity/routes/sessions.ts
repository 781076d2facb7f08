/**
 * Sessions (AUTH-4): refreshing tokens, signing out of one or every session, listing and ending sessions.
 */
import { z } from 'zod';
import { AppError } from '../../server/errors.ts';
import { assertCsrf, REFRESH_COOKIE } from '../../server/guards/session.ts';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import type { Sessions } from '../sessions.ts';
import { clearSessionCookies, cookieResponse, sessionOf, setSessionCookies, tokenBody, tokensResponse } from '../session-reply.ts';
import { ok, sessionSchema } from './schemas.ts';

export function sessionRoutes(deps: { sessions: Sessions; allowedOrigins: () => readonly string[]; now: () => number }): RouteDef[] {
  const { sessions, now } = deps;
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/auth/refresh',
      summary: 'Exchange a refresh token (body, or the refresh cookie with X-CSRF-Token) for new tokens; the old refresh token stops working.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ refreshToken: z.string().min(1).max(200).optional() }), response: { 200: z.union([tokensResponse, cookieResponse]) } },
      handler: async ({ body, request, reply }) => {
        const t = now();
        if (body.refreshToken) return tokenBody(await sessions.refresh(body.refreshToken), t);
        const fromCookie = request.cookies[REFRESH_COOKIE];
        if (!fromCookie) throw new AppError('REFRESH_TOKEN_INVALID');
        assertCsrf(request, deps.allowedOrigins());
        const tokens = await sessions.refresh(fromCookie);
        const csrfToken = setSessionCookies(reply, tokens, t);
        return { sessionId: tokens.sessionId, expiresIn: Math.floor((tokens.accessExpiresAt - t) / 1000), csrfToken };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/logout',
      summary: 'End this session (its access and refresh tokens stop working on every node).',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({}), response: { 200: ok } },
      handler: async ({ request, reply }) => {
        const { userId, sessionId } = sessionOf(request);
        await sessions.revokeSession(userId, sessionId, 'logout');
        clearSessionCookies(reply);
        return { ok: true as const };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/logout-all',
      summary: 'End every session of this account, this one included.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({}), response: { 200: z.object({ ok: z.literal(true), revoked: z.number() }) } },
      handler: async ({ request, reply }) => {
        const { userId } = sessionOf(request);
        const revoked = await sessions.revokeAllForUser(userId, 'logout-all');
        clearSessionCookies(reply);
        return { ok: true as const, revoked };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/me/sessions',
      summary: 'Active sessions of the signed-in user.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.object({ sessions: z.array(sessionSchema) }) } },
      handler: async ({ request }) => {
        const { userId, sessionId } = sessionOf(request);
        return { sessions: await sessions.list(userId, sessionId) };
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/me/sessions/:id',
      summary: 'End one of the signed-in user\'s sessions.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'write',
      schema: { params: z.strictObject({ id: z.uuid() }), response: { 200: ok } },
      handler: async ({ params, request }) => {
        const { userId } = sessionOf(request);
        if (!(await sessions.revokeSession(userId, params.id, 'revoked-by-user'))) throw new AppError('NOT_FOUND', 'No such session.');
        return { ok: true as const };
      },
    }),
  ];
}
