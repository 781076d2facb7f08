/**
 * The passkey API (AUTH-7, issue 8 item 3): managing the signed-in user's passkeys, the passkey
 * options of the second sign-in step and of step-up, passwordless sign-in, and the small page
 * that runs these ceremonies in a browser (passkey-page.ts). The assertions themselves are
 * answered at /v1/auth/mfa/verify and /v1/me/mfa/step-up (`webauthn`), or /v1/auth/passkey/verify.
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../server/errors.ts';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import type { Accounts } from '../accounts.ts';
import { DEVICE_COOKIE } from '../devices.ts';
import { STEP_UP_MAX_AGE_MS, type Mfa } from '../mfa.ts';
import { PASSKEY_PAGE_CSP, PASSKEY_PAGE_HTML, PASSKEY_PAGE_SCRIPT } from '../passkey-page.ts';
import { authenticationResponseSchema, passkeyNameSchema, registrationResponseSchema, type Passkeys } from '../passkeys.ts';
import { cookieResponse, sessionOf, signedInReply, tokensResponse } from '../session-reply.ts';
import type { Sessions } from '../sessions.ts';

/** Ceremony bodies are small: a credential is a few kilobytes at most. */
const PASSKEY_BODY_LIMIT = 64 * 1024;

const passkeySchema = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  transports: z.array(z.string()),
  deviceType: z.enum(['singleDevice', 'multiDevice']),
  backedUp: z.boolean(),
});
// The options are built by @simplewebauthn/server and passed to navigator.credentials as they are.
const creationOptions = z.looseObject({ challenge: z.string(), rp: z.looseObject({}), user: z.looseObject({}) });
const requestOptions = z.looseObject({ challenge: z.string() });
const ok = z.object({ ok: z.literal(true) });

type PasskeyRouteDeps = { passkeys: Passkeys; mfa: Mfa; accounts: Accounts; sessions: Sessions; now: () => number };

/** The passkey routes: managing the signed-in user's passkeys, and the ceremonies and page. */
export function passkeyRoutes(deps: PasskeyRouteDeps): RouteDef[] {
  return [...passkeyManagementRoutes(deps), ...passkeyCeremonyRoutes(deps)];
}

/** The signed-in user's passkeys: list, options to add one, add, rename, remove. */
function passkeyManagementRoutes(deps: PasskeyRouteDeps): RouteDef[] {
  const { passkeys, mfa, accounts, sessions, now } = deps;

  /**
   * Adding a passkey changes how the account signs in: with a second factor already, it needs a
   * step-up within the last 5 minutes; without one, a sign-in (or the password) within the last
   * 5 minutes, so a stolen session alone cannot add the thief's passkey.
   */
  async function requireMayAddPasskey(userId: string, sessionId: string, typed?: string): Promise<void> {
    if (await mfa.hasActiveFactor(userId)) {
      await mfa.requireFreshSecondFactor(userId, sessionId);
      return;
    }
    if (typeof typed === 'string') {
      await accounts.reauthenticate(userId, sessionId, typed);
      return;
    }
    const at = await sessions.reauthenticatedAt(userId, sessionId);
    if (at === null || now() - at > STEP_UP_MAX_AGE_MS) throw new AppError('PASSKEY_REAUTH_REQUIRED');
  }

  const routes = [
    defineRoute({
      method: 'GET',
      url: '/v1/me/passkeys',
      summary: 'The signed-in user\'s passkeys.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.object({ passkeys: z.array(passkeySchema) }) } },
      handler: async ({ request }) => ({ passkeys: await passkeys.list(sessionOf(request).userId) }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/me/passkeys/options',
      summary:
        'Start adding a passkey: creation options for navigator.credentials.create() (a discoverable credential). Needs a step-up within 5 minutes when the user has a second factor, else a sign-in within 5 minutes or the password.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      bodyLimit: PASSKEY_BODY_LIMIT,
      schema: { body: z.strictObject({ password: z.string().min(1).max(8192).optional() }), response: { 200: creationOptions } },
      handler: async ({ body, request, reply }) => {
        const { userId, sessionId } = sessionOf(request);
        await requireMayAddPasskey(userId, sessionId, body.password);
        const user = await accounts.me(userId);
        reply.header('cache-control', 'no-store');
        return passkeys.registrationOptions(userId, user.email);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/me/passkeys',
      summary: 'Finish adding a passkey: its name and the result of navigator.credentials.create() for the options just given. The owner is mailed.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      bodyLimit: PASSKEY_BODY_LIMIT,
      schema: { body: z.strictObject({ name: passkeyNameSchema, response: registrationResponseSchema }), response: { 201: passkeySchema } },
      handler: async ({ body, request, reply }) => {
        const { userId, sessionId } = sessionOf(request);
        await requireMayAddPasskey(userId, sessionId);
        const added = await passkeys.register(userId, body.name, body.response);
        reply.code(201);
        return added;
      },
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/me/passkeys/:id',
      summary: 'Rename a passkey.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'write',
      schema: { params: z.strictObject({ id: z.uuid() }), body: z.strictObject({ name: passkeyNameSchema }), response: { 200: passkeySchema } },
      handler: async ({ params, body, request }) => passkeys.rename(sessionOf(request).userId, params.id, body.name),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/me/passkeys/:id',
      summary: 'Remove a passkey (needs a second factor within the last 5 minutes). Removing the last factor also voids the recovery codes. The owner is mailed.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'write',
      schema: { params: z.strictObject({ id: z.uuid() }), response: { 200: ok } },
      handler: async ({ params, request }) => {
        const { userId, sessionId } = sessionOf(request);
        if (!(await passkeys.list(userId)).some((p) => p.id === params.id)) throw new AppError('PASSKEY_NOT_FOUND');
        await mfa.requireFreshSecondFactor(userId, sessionId);
        await passkeys.remove(userId, params.id);
        return { ok: true as const };
      },
    }),
  ];
  return routes as unknown as RouteDef[];
}

/** Options and assertions of the second step, of step-up and of passwordless sign-in, and the browser page. */
function passkeyCeremonyRoutes(deps: PasskeyRouteDeps): RouteDef[] {
  const { passkeys, mfa, accounts, now } = deps;
  const clientOf = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'], deviceCookie: request.cookies[DEVICE_COOKIE] });
  const routes = [
    defineRoute({
      method: 'POST',
      url: '/v1/me/mfa/step-up/webauthn/options',
      summary: 'Request options for a passkey step-up of this session; the assertion goes to /v1/me/mfa/step-up as `webauthn`.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({}), response: { 200: requestOptions } },
      handler: async ({ request }) => {
        const { userId, sessionId } = sessionOf(request);
        return passkeys.assertionOptions('step-up', sessionId, userId);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/mfa/webauthn/options',
      summary: 'Request options for the passkey of the second sign-in step (the mfaToken from /v1/auth/login); the assertion goes to /v1/auth/mfa/verify as `webauthn`.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ mfaToken: z.string().min(10).max(200) }), response: { 200: requestOptions } },
      handler: async ({ body }) => {
        const { userId, flowOwner } = await mfa.challengeUser(body.mfaToken);
        return passkeys.assertionOptions('mfa', flowOwner, userId);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/passkey/options',
      summary: 'Start a passwordless sign-in: request options with no email and no allowed credentials (the authenticator offers its discoverable passkeys), user verification required.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({}), response: { 200: requestOptions } },
      handler: async () => passkeys.assertionOptions('login', null, null),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/passkey/verify',
      summary:
        'Finish a passwordless sign-in with the result of navigator.credentials.get(). A user-verified passkey is multi-factor: answers like a finished login (mode "bearer" tokens, mode "cookie" __Host- cookies), with the second factor done.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      bodyLimit: PASSKEY_BODY_LIMIT,
      schema: {
        body: z.strictObject({ response: authenticationResponseSchema, mode: z.enum(['bearer', 'cookie']).default('bearer') }),
        response: { 200: z.union([tokensResponse, cookieResponse]) },
      },
      handler: async ({ body, request, reply }) => {
        const { userId } = await passkeys.verifyAssertion('login', null, null, body.response);
        const outcome = await accounts.signInVerifiedUser(userId, { mode: body.mode, ...clientOf(request) }, 'passkey', { multiFactor: true });
        if ('mfaRequired' in outcome) throw new AppError('INTERNAL');
        reply.header('cache-control', 'no-store');
        return signedInReply(reply, body.mode, outcome, now());
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/passkeys',
      summary: 'A minimal page for passkeys in a browser: sign in, add a passkey, sign in with it, use it as the second step, remove it.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.string() } },
      handler: async ({ reply }) => reply.header('content-security-policy', PASSKEY_PAGE_CSP).type('text/html; charset=utf-8').send(PASSKEY_PAGE_HTML),
    }),
    defineRoute({
      method: 'GET',
      url: '/passkeys/app.js',
      summary: 'The script of the passkeys page (served apart, so the page\'s CSP allows no inline script).',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.string() } },
      handler: async ({ reply }) => reply.type('text/javascript; charset=utf-8').send(PASSKEY_PAGE_SCRIPT),
    }),
  ];
  return routes as unknown as RouteDef[];
}
