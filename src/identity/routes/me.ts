/**
 * The signed-in account: who it is, its devices, the export of its data and its deletion (AUTH-6).
 */
import { z } from 'zod';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import type { Accounts } from '../accounts.ts';
import { DEVICE_COOKIE, listDevices } from '../devices.ts';
import { clearSessionCookies, COOKIE_BASE, sessionOf } from '../session-reply.ts';
import { deviceSchema, mfaStatusSchema, ok, password, sessionSchema, userSchema } from './schemas.ts';

export function meRoutes({ accounts }: { accounts: Accounts }): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/me',
      summary: 'The signed-in user, with which second factors are active.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: userSchema.extend({ mfa: mfaStatusSchema }) } },
      handler: async ({ request }) => accounts.meWithMfa(sessionOf(request).userId),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/me/devices',
      summary: 'Devices that signed in to this account, with the networks they used.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.object({ devices: z.array(deviceSchema) }) } },
      handler: async ({ request, services }) => ({ devices: await listDevices(services.db, sessionOf(request).userId) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/me/export',
      summary: 'Everything Gatehouse holds about the signed-in user, as JSON.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'read',
      schema: {
        response: {
          200: z.object({
            exportedAt: z.string(),
            user: userSchema,
            sessions: z.array(sessionSchema),
            devices: z.array(deviceSchema),
            mfa: mfaStatusSchema,
            socialIdentities: z.array(z.object({ provider: z.string(), email: z.string(), linkedAt: z.string() })),
            passkeys: z.array(z.object({ id: z.string(), name: z.string(), createdAt: z.string(), lastUsedAt: z.string().nullable() })),
          }),
        },
      },
      handler: async ({ request, reply }) => {
        const { userId, sessionId } = sessionOf(request);
        reply.header('content-disposition', 'attachment; filename="gatehouse-export.json"');
        return accounts.exportData(userId, sessionId);
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/me',
      summary:
        'Delete the account: needs the password again and, with a second factor, a step-up within the last 5 minutes; sessions end, personal data is deleted or anonymised and its key destroyed.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'write',
      schema: { body: z.strictObject({ password }), response: { 200: ok } },
      handler: async ({ body, request, reply }) => {
        const { userId, sessionId } = sessionOf(request);
        await accounts.deleteAccount(userId, sessionId, body.password);
        clearSessionCookies(reply);
        reply.clearCookie(DEVICE_COOKIE, COOKIE_BASE);
        return { ok: true as const };
      },
    }),
  ];
}
