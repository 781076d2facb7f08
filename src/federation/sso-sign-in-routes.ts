/**
 * SSO sign-in routes (AUTH-9): browsers discover their org's connection by email, start a sign-in
 * and come back to the OIDC callback or the SAML ACS (the one route that takes a form post).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { defineRoute, type RouteDef } from '../server/route.ts';
import {
  checkReturnUrl,
  cookieResponse,
  DEVICE_COOKIE,
  redirectAfterCallback,
  RETURN_COOKIE,
  RETURN_COOKIE_OPTIONS,
  returnUrlOf,
  signedInReply,
  tokensResponse,
  type CallbackOutcome,
  type SecondFactorRequired,
  type SignedIn,
} from '../identity/index.ts';
import type { Sso } from './sso.ts';
import { SSO_OIDC_STATE_COOKIE, SSO_SAML_STATE_COOKIE } from './state.ts';

const COOKIE_BASE = { httpOnly: true, secure: true, path: '/' };
const mfaChallengeResponse = z.object({ mfaRequired: z.literal(true), mfaToken: z.string(), methods: z.array(z.string()), expiresIn: z.number() });

/** The path of the SAML ACS: the one route that accepts an HTML form post (the SAML HTTP-POST binding). */
export const SAML_ACS_URL = '/v1/auth/sso/saml/:connection/acs';

type Outcome = (SignedIn | SecondFactorRequired) & { mode: 'bearer' | 'cookie' };

/** JSON, or a 303 when the sign-in was started with `returnTo` (its cookie is checked again here). */
async function answerCallback(
  where: { publicOrigin: string; returnUrls: readonly string[]; now: () => number },
  request: FastifyRequest,
  reply: FastifyReply,
  finish: () => Promise<Outcome>,
) {
  const { publicOrigin, returnUrls, now } = where;
  reply.header('cache-control', 'no-store');
  const returnTo = returnUrlOf(request.cookies[RETURN_COOKIE], publicOrigin, returnUrls);
  if (returnTo === undefined) {
    const outcome = await finish();
    if ('mfaRequired' in outcome) {
      const { mode: _mode, ...challenge } = outcome;
      return challenge;
    }
    return signedInReply(reply, outcome.mode, outcome, now());
  }
  let result: CallbackOutcome;
  try {
    const outcome = await finish();
    if ('mfaRequired' in outcome) result = { kind: 'mfaRequired', mfaToken: outcome.mfaToken, methods: outcome.methods };
    else if (outcome.mode !== 'cookie') result = { kind: 'refused', code: 'VALIDATION_FAILED' };
    else {
      signedInReply(reply, 'cookie', outcome, now());
      result = { kind: 'signedIn' };
    }
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    result = { kind: 'refused', code: err.code };
  }
  return redirectAfterCallback(reply, result, returnTo);
}

export function ssoSignInRoutes(deps: { sso: Sso; publicOrigin: string; returnUrls: readonly string[]; now: () => number }): RouteDef[] {
  const { sso, publicOrigin, returnUrls, now } = deps;
  const clientOf = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'], deviceCookie: request.cookies[DEVICE_COOKIE] });
  const answer = (request: FastifyRequest, reply: FastifyReply, finish: () => Promise<Outcome>) => answerCallback({ publicOrigin, returnUrls, now }, request, reply, finish);
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/auth/sso/discover',
      summary: 'Whether an email\'s domain signs in through an organization\'s SSO (a verified domain with an enabled connection), and where to start.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        body: z.strictObject({ email: z.string().min(3).max(320) }),
        response: { 200: z.union([z.object({ sso: z.literal(true), connectionId: z.string(), kind: z.enum(['oidc', 'saml']), startUrl: z.string() }), z.object({ sso: z.literal(false) })]) },
      },
      handler: async ({ body }) => sso.discover(body.email),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/auth/sso/:connection/start',
      summary:
        "Start an SSO sign-in: redirects to the IdP (OIDC: code with PKCE S256, state and nonce; SAML: an AuthnRequest), bound to this browser by a short-lived __Host- cookie. mode \"cookie\" (default) or \"bearer\" is how the sign-in answers. `returnTo` (cookie mode; a console path or under `auth.returnUrls`) makes the callback redirect there instead of answering JSON.",
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        params: z.strictObject({ connection: z.string().min(1).max(64) }),
        querystring: z.strictObject({ mode: z.enum(['bearer', 'cookie']).default('cookie'), returnTo: z.string().max(2000).optional() }),
        response: { 302: z.null() },
      },
      handler: async ({ params, query, reply }) => {
        const returnTo = query.returnTo === undefined ? undefined : checkReturnUrl(query.returnTo, publicOrigin, returnUrls);
        if (returnTo !== undefined && query.mode !== 'cookie') throw new AppError('VALIDATION_FAILED', 'querystring.returnTo: only with mode "cookie"');
        const started = await sso.start(params.connection, query.mode);
        if (returnTo === undefined) reply.clearCookie(RETURN_COOKIE, { ...RETURN_COOKIE_OPTIONS, maxAge: undefined });
        else reply.setCookie(RETURN_COOKIE, returnTo, RETURN_COOKIE_OPTIONS);
        reply.setCookie(started.cookie.name, started.cookie.value, { ...COOKIE_BASE, sameSite: started.cookie.sameSite, maxAge: started.cookie.maxAgeSeconds });
        reply.header('cache-control', 'no-store');
        reply.code(302).header('location', started.url);
        return null;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/auth/sso/oidc/:connection/callback',
      summary: 'Where the OIDC IdP sends the browser back. Answers like a finished login (or { mfaRequired, mfaToken } for a user with a second factor); started with `returnTo`, a 303 to it (or to the console\'s sign-in page for a second step or a refusal).',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        params: z.strictObject({ connection: z.string().min(1).max(64) }),
        // IdPs add their own parameters (iss, session_state…): openid-client reads the raw URL.
        querystring: z.looseObject({}),
        response: { 200: z.union([tokensResponse, cookieResponse, mfaChallengeResponse]), 303: z.null() },
      },
      handler: async ({ params, request, reply }) => {
        const cookie = request.cookies[SSO_OIDC_STATE_COOKIE];
        reply.clearCookie(SSO_OIDC_STATE_COOKIE, { ...COOKIE_BASE, sameSite: 'lax' });
        reply.header('cache-control', 'no-store');
        return answer(request, reply, () => sso.oidcCallback(params.connection, new URL(request.url, publicOrigin), cookie, clientOf(request)));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/auth/sso/saml/:connection',
      summary:
        'The SAML service-provider metadata of a connection (its URL is the SP entity id): entity id, the ACS of the HTTP-POST binding, signed assertions wanted. For the IdP administrator to import.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { params: z.strictObject({ connection: z.string().min(1).max(64) }), response: { 200: z.string() } },
      handler: async ({ params, reply }) =>
        reply.type('application/samlmetadata+xml; charset=utf-8').header('cache-control', 'no-cache').send(await sso.samlMetadata(params.connection)),
    }),
    defineRoute({
      method: 'POST',
      url: SAML_ACS_URL,
      summary:
        'The SAML assertion consumer service (HTTP-POST binding, form-encoded SAMLResponse). Answers like a finished login (or { mfaRequired, mfaToken }); started with `returnTo`, a 303 to it (or to the console\'s sign-in page).',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      bodyLimit: 512 * 1024,
      // The SAML HTTP-POST binding: an HTML form post.
      formBody: true,
      schema: {
        params: z.strictObject({ connection: z.string().min(1).max(64) }),
        body: z.strictObject({ SAMLResponse: z.string().min(1).max(400_000), RelayState: z.string().max(1024).optional() }),
        response: { 200: z.union([tokensResponse, cookieResponse, mfaChallengeResponse]), 303: z.null() },
      },
      handler: async ({ params, body, request, reply }) => {
        const cookie = request.cookies[SSO_SAML_STATE_COOKIE];
        reply.clearCookie(SSO_SAML_STATE_COOKIE, { ...COOKIE_BASE, sameSite: 'none' });
        return answer(request, reply, () => sso.samlAcs(params.connection, body.SAMLResponse, cookie, clientOf(request)));
      },
    }),
  ];
}
