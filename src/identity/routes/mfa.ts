/**
 * Second factors of the signed-in user (AUTH-10): TOTP enrollment and removal, recovery codes, step-up.
 */
import { z } from 'zod';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import type { Accounts } from '../accounts.ts';
import type { Mfa } from '../mfa.ts';
import { sessionOf } from '../session-reply.ts';
import { ok, ONE_PROOF, oneProof, password, proofFields, proofOf, totpCode } from './schemas.ts';

export function mfaRoutes({ accounts, mfa }: { accounts: Accounts; mfa: Mfa }): RouteDef[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/me/mfa/totp',
      summary:
        'Start enrolling an authenticator app: needs the password again; answers the otpauth URI and its QR code, shown this once. The factor is active after /v1/me/mfa/totp/confirm.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        body: z.strictObject({ password }),
        response: { 201: z.object({ factorId: z.string(), otpauthUri: z.string(), qrCodeDataUrl: z.string() }) },
      },
      handler: async ({ body, request, reply }) => {
        const { userId, sessionId } = sessionOf(request);
        const user = await accounts.reauthenticate(userId, sessionId, body.password);
        const enrollment = await mfa.startTotpEnrollment(userId, user.email);
        reply.code(201);
        // The secret is in this answer: no cache may keep it.
        reply.header('cache-control', 'no-store');
        return enrollment;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/me/mfa/totp/confirm',
      summary: 'Activate the pending TOTP factor with a first code from the app; the session counts as having just verified it.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ factorId: z.uuid(), code: totpCode }), response: { 200: ok } },
      handler: async ({ body, request }) => {
        const { userId, sessionId } = sessionOf(request);
        await mfa.confirmTotp(userId, sessionId, body.factorId, body.code);
        return { ok: true as const };
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/me/mfa/totp/:id',
      summary: 'Remove a TOTP factor (needs a second factor within the last 5 minutes). Removing the last factor also voids the recovery codes.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'write',
      schema: { params: z.strictObject({ id: z.uuid() }), response: { 200: ok } },
      handler: async ({ params, request }) => {
        const { userId, sessionId } = sessionOf(request);
        await mfa.removeTotp(userId, sessionId, params.id);
        return { ok: true as const };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/me/mfa/recovery-codes',
      summary: 'Ten new single-use recovery codes, shown this once; the earlier set stops working. Needs an active factor verified within the last 5 minutes.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({}), response: { 201: z.object({ recoveryCodes: z.array(z.string()) }) } },
      handler: async ({ request, reply }) => {
        const { userId, sessionId } = sessionOf(request);
        const recoveryCodes = await mfa.regenerateRecoveryCodes(userId, sessionId);
        reply.code(201);
        reply.header('cache-control', 'no-store');
        return { recoveryCodes };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/me/mfa/step-up',
      summary:
        'Verify a second factor (TOTP code, recovery code or passkey assertion, options from /v1/me/mfa/step-up/webauthn/options) for this session, so sensitive actions are allowed for the next 5 minutes.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject(proofFields).refine(oneProof, ONE_PROOF), response: { 200: z.object({ ok: z.literal(true), method: z.enum(['totp', 'recovery', 'webauthn']) }) } },
      handler: async ({ body, request }) => {
        const { userId, sessionId } = sessionOf(request);
        const method = await mfa.stepUp(userId, sessionId, proofOf(body));
        return { ok: true as const, method };
      },
    }),
  ];
}
