/**
 * Passwords (AUTH-5): reset by emailed code, and change while signed in.
 */
import { z } from 'zod';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import type { Accounts } from '../accounts.ts';
import { sessionOf } from '../session-reply.ts';
import { accepted, email, ok, password, token } from './schemas.ts';

export function passwordRoutes({ accounts }: { accounts: Accounts }): RouteDef[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/auth/password-reset',
      summary: 'Email a password reset code. The answer is the same for any email.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ email }), response: { 202: accepted } },
      handler: async ({ body, reply }) => {
        await accounts.requestPasswordReset(body.email);
        reply.code(202);
        return { status: 'accepted' as const };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/password-reset/confirm',
      summary: 'Set a new password with the emailed code; every session ends.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ token, password }), response: { 200: ok } },
      handler: async ({ body }) => {
        await accounts.confirmPasswordReset(body.token, body.password);
        return { ok: true as const };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/password-change',
      summary: 'Change the password; every other session ends.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ currentPassword: password, newPassword: password }), response: { 200: ok } },
      handler: async ({ body, request }) => {
        const { userId, sessionId } = sessionOf(request);
        await accounts.changePassword(userId, sessionId, body.currentPassword, body.newPassword);
        return { ok: true as const };
      },
    }),
  ];
}
