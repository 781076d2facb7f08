/**
 * Social sign-in (AUTH-8): start at the provider, come back, confirm a link to an existing account,
 * unlink a provider.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../server/errors.ts';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import type { Accounts } from '../accounts.ts';
import { checkReturnUrl, redirectAfterCallback, RETURN_COOKIE, RETURN_COOKIE_OPTIONS, returnUrlOf, type CallbackOutcome } from '../return-url.ts';
import { cookieResponse, sessionOf, signedInReply, tokensResponse } from '../session-reply.ts';
import { SOCIAL_STATE_COOKIE, type Social } from '../social.ts';
import { mfaChallengeResponse, ok, password } from './schemas.ts';

const linkRequiredResponse = z.object({ linkRequired: z.literal(true), linkToken: z.string(), expiresIn: z.number() });
const STATE_COOKIE_OPTIONS = { httpOnly: true, secure: true, sameSite: 'lax' as const, path: '/' };

const PRESET_NAMES: Record<string, string> = { google: 'Google', microsoft: 'Microsoft', github: 'GitHub', discord: 'Discord' };

/** GET /v1/auth/social/providers: the configured providers, for a sign-in page's buttons. */
function providersRoute(providers: ReadonlyArray<{ id: string; preset?: string | undefined }>): RouteDef {
  const listed = providers.map((p) => ({ id: p.id, name: (p.preset && PRESET_NAMES[p.preset]) || p.id }));
  return defineRoute({
    method: 'GET',
    url: '/v1/auth/social/providers',
    summary: 'The social sign-in providers this node offers (id and display name), for a sign-in page\'s buttons.',
    guard: { kind: 'public' },
    permission: null,
    rateCategory: 'read',
    schema: { response: { 200: z.object({ providers: z.array(z.object({ id: z.string(), name: z.string() })) }) } },
    handler: async () => ({ providers: listed }),
  }) as unknown as RouteDef;
}

/** A social callback in redirect mode (started with `returnTo`): a 303, never JSON (return-url.ts). */
async function redirectMode(reply: FastifyReply, returnTo: string, now: () => number, finish: () => ReturnType<Social['callback']>): Promise<null> {
  let outcome: CallbackOutcome;
  try {
    const result = await finish();
    if ('linkRequired' in result) outcome = { kind: 'linkRequired', linkToken: result.linkToken };
    else if ('mfaRequired' in result) outcome = { kind: 'mfaRequired', mfaToken: result.mfaToken, methods: result.methods };
    else if (result.mode !== 'cookie') outcome = { kind: 'refused', code: 'VALIDATION_FAILED' };
    else {
      signedInReply(reply, 'cookie', result, now());
      outcome = { kind: 'signedIn' };
    }
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    outcome = { kind: 'refused', code: err.code };
  }
  return redirectAfterCallback(reply, outcome, returnTo);
}

export function socialRoutes(
  social: Social,
  accounts: Accounts,
  where: { publicOrigin: string; returnUrls: readonly string[]; providers: ReadonlyArray<{ id: string; preset?: string | undefined }> },
  clientOf: (request: FastifyRequest) => { ip: string; userAgent: string | undefined; deviceCookie: string | undefined },
  now: () => number,
): RouteDef[] {
  const { publicOrigin, returnUrls } = where;
  const provider = z.strictObject({ provider: z.string().min(1).max(32) });
  return [
    providersRoute(where.providers),
    defineRoute({
      method: 'GET',
      url: '/v1/auth/social/:provider/start',
      summary:
        'Start a social sign-in: redirects to the provider (authorization code with PKCE S256, state, and a nonce for OIDC), bound to this browser by a short-lived __Host- cookie. mode "cookie" (default) or "bearer" is how the callback answers. `returnTo` (cookie mode; a console path or under `auth.returnUrls`) makes the callback redirect there instead of answering JSON.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        params: provider,
        querystring: z.strictObject({ mode: z.enum(['bearer', 'cookie']).default('cookie'), returnTo: z.string().max(2000).optional() }),
        response: { 302: z.null() },
      },
      handler: async ({ params, query, reply }) => {
        const returnTo = query.returnTo === undefined ? undefined : checkReturnUrl(query.returnTo, publicOrigin, returnUrls);
        if (returnTo !== undefined && query.mode !== 'cookie') throw new AppError('VALIDATION_FAILED', 'querystring.returnTo: only with mode "cookie"');
        const started = await social.start(params.provider, query.mode);
        if (returnTo === undefined) reply.clearCookie(RETURN_COOKIE, { ...RETURN_COOKIE_OPTIONS, maxAge: undefined });
        else reply.setCookie(RETURN_COOKIE, returnTo, RETURN_COOKIE_OPTIONS);
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
        'Where the provider sends the browser back. Signs in a linked account (or answers { mfaRequired, mfaToken }), creates an account for a new verified email, or, when an account already has that email, answers { linkRequired, linkToken } for /v1/auth/social/link/confirm. Started with `returnTo`, it answers 303: to the return URL once signed in, else to the console\'s sign-in page with what is left to do (or the refusal\'s code) in the fragment.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        params: provider,
        // Providers add their own parameters (scope, iss, session_state…): openid-client reads the raw URL.
        querystring: z.looseObject({}),
        response: { 200: z.union([tokensResponse, cookieResponse, mfaChallengeResponse, linkRequiredResponse]), 303: z.null() },
      },
      handler: async ({ params, request, reply }) => {
        const cookie = request.cookies[SOCIAL_STATE_COOKIE];
        reply.clearCookie(SOCIAL_STATE_COOKIE, STATE_COOKIE_OPTIONS);
        reply.header('cache-control', 'no-store');
        const returnTo = returnUrlOf(request.cookies[RETURN_COOKIE], publicOrigin, returnUrls);
        if (returnTo !== undefined) return redirectMode(reply, returnTo, now, () => social.callback(params.provider, new URL(request.url, publicOrigin), cookie, clientOf(request)));
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
