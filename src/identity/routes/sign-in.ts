/**
 * Signing in with email and password, and its second step with a second factor (AUTH-3, AUTH-10).
 */
import { z } from 'zod';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import type { Accounts } from '../accounts.ts';
import { DEVICE_COOKIE } from '../devices.ts';
import { cookieResponse, signedInReply, tokensResponse } from '../session-reply.ts';
import { email, mfaChallengeResponse, ONE_PROOF, oneProof, password, proofFields, proofOf } from './schemas.ts';

export function signInRoutes({ accounts, now }: { accounts: Accounts; now: () => number }): RouteDef[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/auth/login',
      summary:
        'Sign in with email and password. mode "bearer" returns tokens; mode "cookie" sets __Host- cookies for browsers. A user with a second factor gets { mfaRequired, mfaToken } instead and finishes at /v1/auth/mfa/verify.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        body: z.strictObject({ email, password, mode: z.enum(['bearer', 'cookie']).default('bearer') }),
        response: { 200: z.union([tokensResponse, cookieResponse, mfaChallengeResponse]) },
      },
      handler: async ({ body, request, reply }) => {
        const result = await accounts.login(body, {
          mode: body.mode,
          ip: request.ip,
          userAgent: request.headers['user-agent'],
          deviceCookie: request.cookies[DEVICE_COOKIE],
        });
        if ('mfaRequired' in result) return result;
        return signedInReply(reply, body.mode, result, now());
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/mfa/verify',
      summary:
        'Second step of a sign-in: the mfaToken from /v1/auth/login with a TOTP code, a recovery code or a passkey assertion (`webauthn`, options from /v1/auth/mfa/webauthn/options). Answers like a finished login, in the mode the login asked for.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        body: z.strictObject({ mfaToken: z.string().min(10).max(200), ...proofFields }).refine(oneProof, ONE_PROOF),
        response: { 200: z.union([tokensResponse, cookieResponse]) },
      },
      handler: async ({ body, request, reply }) => {
        const signedIn = await accounts.completeSecondFactor(body.mfaToken, proofOf(body), {
          ip: request.ip,
          userAgent: request.headers['user-agent'],
          deviceCookie: request.cookies[DEVICE_COOKIE],
        });
        return signedInReply(reply, signedIn.mode, signedIn, now());
      },
    }),
  ];
}
