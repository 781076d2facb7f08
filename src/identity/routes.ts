/**
 * The accounts, sessions and second-factor API (AUTH-1..7, AUTH-10). Paths are part of the
 * product; bodies are documented by their schemas in OpenAPI.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE, assertCsrf } from '../server/guards/session.ts';
import { defineRoute, type Feature } from '../server/route.ts';
import type { Accounts, SignedIn } from './accounts.ts';
import type { EmailChange } from './email-change.ts';
import { DEVICE_COOKIE, listDevices } from './devices.ts';
import { MFA_SEALED_COLUMNS, type Mfa, type SecondFactorProof } from './mfa.ts';
import { authenticationResponseSchema, type AuthenticationResponse } from './passkeys.ts';
import type { IssuedTokens, Sessions } from './sessions.ts';
import { SOCIAL_STATE_COOKIE, type Social } from './social.ts';

export const IDENTITY_ERROR_CODES = {
  INVALID_CREDENTIALS: { status: 401, message: 'Email or password is incorrect.', doc: 'Sign-in failed. The same answer for an unknown email and a wrong password.' },
  LOGIN_THROTTLED: {
    status: 429,
    message: 'Too many sign-in attempts; retry later.',
    doc: 'Failed sign-ins for this account or from this IP crossed the threshold; `Retry-After` says when to retry. Unknown emails are throttled the same way.',
  },
  EMAIL_NOT_VERIFIED: { status: 403, message: 'Verify your email address first.', doc: 'Correct credentials, but the email address is not verified yet.' },
  ACCOUNT_DISABLED: { status: 403, message: 'This account is disabled.', doc: 'An operator disabled the account.' },
  TOKEN_INVALID: { status: 400, message: 'The code is invalid, expired or already used.', doc: 'An email verification, password reset or setup code that is unknown, expired or used.' },
  REFRESH_TOKEN_INVALID: { status: 401, message: 'The refresh token is invalid or expired.', doc: 'Unknown, malformed or expired refresh token, or its session ended.' },
  REFRESH_TOKEN_REUSED: {
    status: 401,
    message: 'The refresh token was already used; the session has been ended.',
    doc: 'A refresh token was presented again after its grace window: treated as theft, the whole session is revoked.',
  },
  PASSWORD_TOO_SHORT: { status: 400, message: 'The password is too short.', doc: 'Shorter than `auth.passwordMinLength` code points.' },
  PASSWORD_TOO_LONG: { status: 400, message: 'The password is too long.', doc: 'Longer than `auth.passwordMaxLength` code points or 4096 bytes.' },
  PASSWORD_COMMON: { status: 400, message: 'This password is too common.', doc: 'On the shipped list of common and breached passwords, or the placeholder of one of Gatehouse\'s own example commands (the first-run `curl`).' },
  PASSWORD_BREACHED: { status: 400, message: 'This password appeared in a data breach.', doc: 'The optional online breach check found it.' },
  PASSWORD_TOO_WEAK: { status: 400, message: 'This password is too easy to guess.', doc: 'Below `auth.passwordMinStrength` by the strength estimate.' },
  PASSWORD_CHECK_UNAVAILABLE: {
    status: 503,
    message: 'The password could not be checked; retry later.',
    doc: 'The breach check is fail-closed and could not be reached.',
  },
  MFA_CODE_INVALID: {
    status: 401,
    message: 'The second-factor code is wrong or was already used.',
    doc: 'A TOTP code that matches no time step within one step of the server\'s clock, one already accepted (replay), or an unknown or used recovery code.',
  },
  MFA_TOKEN_INVALID: {
    status: 401,
    message: 'The sign-in has expired or was already completed; sign in again.',
    doc: 'The `mfaToken` of the second sign-in step is unknown, expired (5 minutes), already used, or spent by too many wrong codes.',
  },
  MFA_STEP_UP_REQUIRED: {
    status: 403,
    message: 'Confirm with your second factor first.',
    doc: 'A sensitive action (account deletion, removing a factor, new recovery codes) needs a second factor verified in this session within the last 5 minutes: `POST /v1/me/mfa/step-up`.',
  },
  MFA_ALREADY_ENROLLED: { status: 409, message: 'A TOTP factor is already active.', doc: 'Remove the active TOTP factor before enrolling another.' },
  MFA_NOT_ENROLLED: { status: 409, message: 'No second factor is active.', doc: 'Step-up and recovery codes need an active second factor.' },
  MFA_THROTTLED: {
    status: 429,
    message: 'Too many failed second-factor attempts; retry later.',
    doc: 'The user\'s failed second-factor attempts (10 per 15 minutes, 30 per day; a correct factor does not count) are used up; `Retry-After` says when to retry. The owner is mailed.',
  },
  REAUTHENTICATION_REQUIRED: {
    status: 403,
    message: 'Sign in again first.',
    doc: 'An account without a password changes its email address only within 5 minutes of signing in.',
  },
  EMAIL_UNCHANGED: { status: 400, message: 'That is already the account\'s email address.', doc: 'An email change to the address the account already has.' },
  EMAIL_TAKEN: {
    status: 409,
    message: 'Another account took this address; nothing was changed.',
    doc: 'An email change was confirmed after another account started using the address. The code is spent; request a change again.',
  },
  SOCIAL_PROVIDER_UNKNOWN: { status: 404, message: 'No such sign-in provider.', doc: 'The provider id in the path is not configured in `social.providers`.' },
  SOCIAL_STATE_INVALID: {
    status: 400,
    message: 'The sign-in could not be matched to this browser; start again.',
    doc: 'The social callback came without the state cookie of the browser that started it, with a state that is not that cookie\'s, after its expiry, or a second time.',
  },
  SOCIAL_EXCHANGE_FAILED: {
    status: 400,
    message: 'The provider\'s answer could not be accepted; start again.',
    doc: 'The code exchange or the id_token check failed: a code already spent, a wrong PKCE verifier, an id_token from another issuer or audience, a wrong nonce, an expired token, or a provider error.',
  },
  SOCIAL_EMAIL_UNVERIFIED: {
    status: 403,
    message: 'The provider did not confirm this email address.',
    doc: 'The provider account has no email it verified: it neither links to an account nor creates one.',
  },
  SOCIAL_LAST_SIGN_IN_METHOD: {
    status: 409,
    message: 'This is the only way to sign in to this account.',
    doc: 'The account has no password and no other linked provider: set a password (password reset) before removing this link.',
  },
  SOCIAL_LINK_INVALID: { status: 400, message: 'The link request is invalid, expired or already used.', doc: 'A `linkToken` that is unknown, expired (10 minutes) or used.' },
} as const;

const email = z.string().min(3).max(320);
const password = z.string().min(1).max(8192);
const token = z.string().min(10).max(200);
export const tokensResponse = z.object({
  tokenType: z.literal('Bearer'),
  accessToken: z.string(),
  expiresIn: z.number(),
  refreshToken: z.string(),
  refreshExpiresIn: z.number(),
  sessionId: z.string(),
});
export const cookieResponse = z.object({ sessionId: z.string(), expiresIn: z.number(), csrfToken: z.string() });
const userSchema = z.object({ id: z.string(), email: z.string(), emailVerified: z.boolean(), isOperator: z.boolean(), createdAt: z.string() });
const mfaStatusSchema = z.object({ totp: z.boolean(), passkeys: z.number(), recoveryCodesLeft: z.number() });
const mfaChallengeResponse = z.object({
  mfaRequired: z.literal(true),
  mfaToken: z.string(),
  methods: z.array(z.enum(['totp', 'recovery', 'webauthn'])),
  expiresIn: z.number(),
});
const totpCode = z.string().regex(/^[0-9]{6}$/, 'six digits');
const recoveryCode = z.string().min(1).max(64);
// A second factor is a TOTP code, a recovery code or a passkey assertion: exactly one of them (oneProof).
const proofFields = { code: totpCode.optional(), recoveryCode: recoveryCode.optional(), webauthn: authenticationResponseSchema.optional() };
type ProofBody = { code?: string | undefined; recoveryCode?: string | undefined; webauthn?: AuthenticationResponse | undefined };
const oneProof = (b: ProofBody): boolean => [b.code, b.recoveryCode, b.webauthn].filter((p) => p !== undefined).length === 1;
const ONE_PROOF = { message: 'give exactly one of code, recoveryCode and webauthn' };
const accepted = z.object({ status: z.literal('accepted') });
const ok = z.object({ ok: z.literal(true) });
const sessionSchema = z.object({ id: z.string(), mode: z.enum(['bearer', 'cookie']), ip: z.string().nullable(), userAgent: z.string().nullable(), createdAt: z.string(), lastUsedAt: z.string(), current: z.boolean() });
const deviceSchema = z.object({ id: z.string(), userAgent: z.string().nullable(), networks: z.array(z.string()), firstSeenAt: z.string(), lastSeenAt: z.string() });

const COOKIE_BASE = { httpOnly: true, secure: true, sameSite: 'lax' as const, path: '/' };

function setSessionCookies(reply: FastifyReply, tokens: IssuedTokens, now: number): string {
  const csrf = randomBytes(32).toString('base64url');
  reply.setCookie(ACCESS_COOKIE, tokens.accessToken, { ...COOKIE_BASE, maxAge: Math.max(1, Math.floor((tokens.accessExpiresAt - now) / 1000)) });
  reply.setCookie(REFRESH_COOKIE, tokens.refreshToken, { ...COOKIE_BASE, maxAge: Math.max(1, Math.floor((tokens.refreshExpiresAt - now) / 1000)) });
  // Readable by the page's script, which echoes it in X-CSRF-Token (double submit).
  reply.setCookie(CSRF_COOKIE, csrf, { ...COOKIE_BASE, httpOnly: false, maxAge: Math.max(1, Math.floor((tokens.refreshExpiresAt - now) / 1000)) });
  return csrf;
}

function clearSessionCookies(reply: FastifyReply): void {
  for (const name of [ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE]) reply.clearCookie(name, COOKIE_BASE);
}

function tokenBody(tokens: IssuedTokens, now: number) {
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

function proofOf(body: ProofBody): SecondFactorProof {
  if (body.webauthn !== undefined) return { webauthn: body.webauthn };
  return body.code !== undefined ? { code: body.code } : { recoveryCode: body.recoveryCode ?? '' };
}

export function sessionOf(request: FastifyRequest): { userId: string; sessionId: string } {
  const p = request.principal;
  if (!p || p.kind !== 'user' || !p.sessionId) throw new AppError('UNAUTHENTICATED');
  return { userId: p.id, sessionId: p.sessionId };
}

/** The accounts feature, bound to its services. */
export function createIdentityFeature(deps: {
  accounts: Accounts;
  sessions: Sessions;
  mfa: Mfa;
  social?: Social;
  emailChange?: EmailChange;
  publicOrigin?: string;
  allowedOrigins: () => readonly string[];
  now: () => number;
}): Feature {
  const { accounts, sessions, mfa, now } = deps;
  const clientOf = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'], deviceCookie: request.cookies[DEVICE_COOKIE] });
  return {
    id: 'accounts',
    errorCodes: IDENTITY_ERROR_CODES,
    sealedColumns: MFA_SEALED_COLUMNS,
    routes: [
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
      ...(deps.emailChange ? emailChangeRoutes(deps.emailChange) : []),
      ...(deps.social ? socialRoutes(deps.social, accounts, deps.publicOrigin ?? '', clientOf, now) : []),
    ],
  };
}


const linkRequiredResponse = z.object({ linkRequired: z.literal(true), linkToken: z.string(), expiresIn: z.number() });
const STATE_COOKIE_OPTIONS = { httpOnly: true, secure: true, sameSite: 'lax' as const, path: '/' };

/** Social sign-in (AUTH-8): start at the provider, come back, confirm a link to an existing account. */
function socialRoutes(
  social: Social,
  accounts: Accounts,
  publicOrigin: string,
  clientOf: (request: FastifyRequest) => { ip: string; userAgent: string | undefined; deviceCookie: string | undefined },
  now: () => number,
) {
  const provider = z.strictObject({ provider: z.string().min(1).max(32) });
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/auth/social/:provider/start',
      summary:
        'Start a social sign-in: redirects to the provider (authorization code with PKCE S256, state, and a nonce for OIDC), bound to this browser by a short-lived __Host- cookie. mode "cookie" (default) or "bearer" is how the callback answers.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: { params: provider, querystring: z.strictObject({ mode: z.enum(['bearer', 'cookie']).default('cookie') }), response: { 302: z.null() } },
      handler: async ({ params, query, reply }) => {
        const started = await social.start(params.provider, query.mode);
        // lax, not strict: the provider's redirect back is a top-level cross-site navigation.
        reply.setCookie(SOCIAL_STATE_COOKIE, started.cookie, { ...STATE_COOKIE_OPTIONS, maxAge: started.maxAgeSeconds });
        reply.header('cache-control', 'no-store');
        reply.code(302).header('location', started.url);
        return null;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/auth/social/:provider/callback',
      summary:
        'Where the provider sends the browser back. Signs in a linked account (or answers { mfaRequired, mfaToken }), creates an account for a new verified email, or, when an account already has that email, answers { linkRequired, linkToken } for /v1/auth/social/link/confirm.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        params: provider,
        // Providers add their own parameters (scope, iss, session_state…): openid-client reads the raw URL.
        querystring: z.looseObject({}),
        response: { 200: z.union([tokensResponse, cookieResponse, mfaChallengeResponse, linkRequiredResponse]) },
      },
      handler: async ({ params, request, reply }) => {
        const cookie = request.cookies[SOCIAL_STATE_COOKIE];
        reply.clearCookie(SOCIAL_STATE_COOKIE, STATE_COOKIE_OPTIONS);
        reply.header('cache-control', 'no-store');
        const outcome = await social.callback(params.provider, new URL(request.url, publicOrigin), cookie, clientOf(request));
        if ('linkRequired' in outcome) return { linkRequired: true as const, linkToken: outcome.linkToken, expiresIn: outcome.expiresIn };
        if ('mfaRequired' in outcome) {
          const { mode: _mode, ...challenge } = outcome;
          return challenge;
        }
        return signedInReply(reply, outcome.mode, outcome, now());
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/me/social/:provider',
      summary: 'Remove the link to a sign-in provider (needs a recent second factor when the account has one; refused for the last way to sign in).',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { params: provider, response: { 204: z.null() } },
      handler: async ({ params, request, reply }) => {
        const { userId, sessionId } = sessionOf(request);
        await accounts.unlinkSocial(userId, sessionId, params.provider);
        reply.code(204);
        return null;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/me/social/link',
      summary: 'Link a provider account to the signed-in account: the linkToken the social callback answered for this account\'s email.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ linkToken: z.string().min(10).max(200) }), response: { 200: ok } },
      handler: async ({ body, request }) => {
        await social.confirmLinkSignedIn(body.linkToken, sessionOf(request).userId);
        return { ok: true as const };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/auth/social/link/confirm',
      summary:
        'Link a provider account to the existing account with its email: the account\'s password confirms it. Answers like a sign-in (or { mfaRequired, mfaToken } for a user with a second factor).',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        body: z.strictObject({ linkToken: z.string().min(10).max(200), password }),
        response: { 200: z.union([tokensResponse, cookieResponse, mfaChallengeResponse]) },
      },
      handler: async ({ body, request, reply }) => {
        const outcome = await social.confirmLink(body.linkToken, body.password, clientOf(request));
        if ('mfaRequired' in outcome) {
          const { mode: _mode, ...challenge } = outcome;
          return challenge;
        }
        return signedInReply(reply, outcome.mode, outcome, now());
      },
    }),
  ];
}

/** Changing the account's email address (AUTH-2, AUTH-7): requested signed in, confirmed from the new address. */
function emailChangeRoutes(emailChange: EmailChange) {
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
