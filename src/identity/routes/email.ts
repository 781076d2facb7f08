import { z } from 'zod';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import type { EmailChange } from '../email-change.ts';
import { sessionOf } from '../session-reply.ts';
import { accepted, email, ok, password, token } from './schemas.ts';

/** Changing the account's email address (AUTH-2, AUTH-7): requested signed in, confirmed from the new address. */
export function emailChangeRoutes(emailChange: EmailChange): RouteDef[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/me/email',
      summary:
        'Ask to change the account\'s email address: the password again (an account without one: a sign-in within 5 minutes) and, when the user has a second factor, one verified within 5 minutes. A code goes to the new address; the same 202 whether or not the address is free.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ email, password: password.optional() }), response: { 202: accepted } },
      handler: async ({ body, request, reply }) => {
        const { userId, sessionId } = sessionOf(request);
        await emailChange.request(userId, sessionId, body);
        reply.code(202);
        return { status: 'accepted' as const };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/email-change/confirm',
      summary: 'Confirm an email change with the code mailed to the new address; the address becomes the account\'s, verified.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ token }), response: { 200: ok } },
      handler: async ({ body }) => {
        await emailChange.confirm(body.token);
        return { ok: true as const };
      },
    }),
  ];
}
