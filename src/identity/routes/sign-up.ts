/**
 * Creating an account and confirming its email address (AUTH-1, AUTH-2), and the first-run operator account.
 */
import { z } from 'zod';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import type { Accounts } from '../accounts.ts';
import { accepted, email, ok, password, token, userSchema } from './schemas.ts';

export function signUpRoutes({ accounts }: { accounts: Accounts }): RouteDef[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/auth/signup',
      summary: 'Create an account; a verification code is emailed. The answer is the same whether or not the email already has an account.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'signup',
      schema: { body: z.strictObject({ email, password }), response: { 202: accepted } },
      handler: async ({ body, request, reply }) => {
        await accounts.signup(body, request.ip);
        reply.code(202);
        return { status: 'accepted' as const };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/verify-email',
      summary: 'Confirm an email address with the emailed code.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ token }), response: { 200: ok } },
      handler: async ({ body }) => {
        await accounts.verifyEmail(body.token);
        return { ok: true as const };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/setup',
      summary: 'First run: create the operator account with the one-time setup code printed at start.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'signup',
      schema: { body: z.strictObject({ token, email, password }), response: { 201: userSchema } },
      handler: async ({ body, reply }) => {
        const user = await accounts.completeSetup(body.token, body);
        reply.code(201);
        return user;
      },
    }),
  ];
}
