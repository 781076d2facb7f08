/**
 * Operators managing users: disabling an account, resetting the second factors of one who lost them.
 */
import { z } from 'zod';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import type { Accounts } from '../accounts.ts';
import { USER_CURSOR_RE } from '../accounts-operator.ts';
import { sessionOf } from '../session-reply.ts';
import { ok } from './schemas.ts';

const listedUser = z.object({ id: z.string(), email: z.string(), createdAt: z.string(), disabled: z.boolean(), hasSecondFactor: z.boolean() });
const listQuery = z.strictObject({
  q: z.string().min(1).max(254).optional(),
  cursor: z.string().max(60).regex(USER_CURSOR_RE, 'not a cursor this list gave').optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

export function adminUserRoutes({ accounts }: { accounts: Accounts }): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/admin/users',
      summary:
        'Operators: the users, oldest first, with whether each is disabled and has a second factor (never a hash or a secret); `q` keeps those whose email contains it; `cursor` is the `nextCursor` of the previous page.',
      guard: { kind: 'session' },
      permission: 'platform.users.manage',
      rateCategory: 'read',
      schema: { querystring: listQuery, response: { 200: z.object({ users: z.array(listedUser), nextCursor: z.string().nullable() }) } },
      handler: async ({ query, request }) => accounts.listUsers(sessionOf(request).userId, query),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/admin/users/:id/disable',
      summary: 'Operators: disable a user; their sessions end on every node at once.',
      guard: { kind: 'session' },
      permission: 'platform.users.manage',
      rateCategory: 'write',
      schema: { params: z.strictObject({ id: z.uuid() }), body: z.strictObject({ disabled: z.boolean() }), response: { 200: ok } },
      handler: async ({ params, body, request }) => {
        await accounts.setOperatorDisabled(sessionOf(request).userId, params.id, body.disabled);
        return { ok: true as const };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/admin/users/:id/mfa/reset',
      summary:
        'Operators: remove every second factor of a user who lost them (TOTP, passkeys, recovery codes); their sessions end and they are mailed. Needs a second factor of the operator\'s own within 5 minutes.',
      guard: { kind: 'session' },
      permission: 'platform.users.manage',
      rateCategory: 'write',
      schema: { params: z.strictObject({ id: z.uuid() }), body: z.strictObject({}), response: { 200: ok } },
      handler: async ({ params, request }) => {
        const { userId, sessionId } = sessionOf(request);
        await accounts.resetSecondFactors(userId, sessionId, params.id);
        return { ok: true as const };
      },
    }),
  ];
}
