/**
 * SSO sign-in routes (AUTH-9): browsers discover their org's connection by email, start a sign-in
 * and come back to the OIDC callback or the SAML ACS (the one route that takes a form post).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { defineRoute, type RouteDef } from '../server/route.ts';
import { cookieResponse, DEVICE_COOKIE, signedInReply, tokensResponse, type SecondFactorRequired, type SignedIn } from '../identity/index.ts';
import type { Sso } from './sso.ts';
import { SSO_OIDC_STATE_COOKIE, SSO_SAML_STATE_COOKIE } from './state.ts';

const COOKIE_BASE = { httpOnly: true, secure: true, path: '/' };
const mfaChallengeResponse = z.object({ mfaRequired: z.literal(true), mfaToken: z.string(), methods: z.array(z.string()), expiresIn: z.number() });

/** The path of the SAML ACS: the one route that accepts an HTML form post (the SAML HTTP-POST binding). */
export const SAML_ACS_URL = '/v1/auth/sso/saml/:connection/acs';

/**
 * Parses `application/x-www-form-urlencoded` for the SAML ACS only; every other route keeps
 * refusing it with 415 (so no JSON route becomes reachable by a cross-site form).
 */
export function registerSamlFormBody(app: FastifyInstance): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) => {
    if (request.routeOptions.url !== SAML_ACS_URL) {
      done(new AppError('UNSUPPORTED_MEDIA_TYPE'), undefined);
      return;
    }
    const out: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, v] of new URLSearchParams(body as string)) {
      // A repeated field is ambiguous: refused rather than picking one.
      if (k in out) {
        done(new AppError('VALIDATION_FAILED', `body.${k.slice(0, 40)}: given twice`), undefined);
        return;
      }
      out[k] = v;
    }
    done(null, out);
  });
}

export function ssoSignInRoutes(deps: { sso: Sso; publicOrigin: string; now: () => number }): RouteDef[] {
  const { sso, publicOrigin, now } = deps;
  const clientOf = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'], deviceCookie: request.cookies[DEVICE_COOKIE] });
  const answer = (reply: FastifyReply, outcome: (SignedIn | SecondFactorRequired) & { mode: 'bearer' | 'cookie' }) => {
    reply.header('cache-control', 'no-store');
    if ('mfaRequired' in outcome) {
      const { mode: _mode, ...challenge } = outcome;
      return challenge;
    }
    return signedInReply(reply, outcome.mode, outcome, now());
  };
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
        'Start an SSO sign-in: redirects to the IdP (OIDC: code with PKCE S256, state and nonce; SAML: an AuthnRequest), bound to this browser by a short-lived __Host- cookie. mode "cookie" (default) or "bearer" is how the sign-in answers.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: { params: z.strictObject({ connection: z.string().min(1).max(64) }), querystring: z.strictObject({ mode: z.enum(['bearer', 'cookie']).default('cookie') }), response: { 302: z.null() } },
      handler: async ({ params, query, reply }) => {
        const started = await sso.start(params.connection, query.mode);
        reply.setCookie(started.cookie.name, started.cookie.value, { ...COOKIE_BASE, sameSite: started.cookie.sameSite, maxAge: started.cookie.maxAgeSeconds });
        reply.header('cache-control', 'no-store');
        reply.code(302).header('location', started.url);
        return null;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/auth/sso/oidc/:connection/callback',
      summary: 'Where the OIDC IdP sends the browser back. Answers like a finished login (or { mfaRequired, mfaToken } for a user with a second factor).',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      schema: {
        params: z.strictObject({ connection: z.string().min(1).max(64) }),
        // IdPs add their own parameters (iss, session_state…): openid-client reads the raw URL.
        querystring: z.looseObject({}),
        response: { 200: z.union([tokensResponse, cookieResponse, mfaChallengeResponse]) },
      },
      handler: async ({ params, request, reply }) => {
        const cookie = request.cookies[SSO_OIDC_STATE_COOKIE];
        reply.clearCookie(SSO_OIDC_STATE_COOKIE, { ...COOKIE_BASE, sameSite: 'lax' });
        reply.header('cache-control', 'no-store');
        return answer(reply, await sso.oidcCallback(params.connection, new URL(request.url, publicOrigin), cookie, clientOf(request)));
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
        'The SAML assertion consumer service (HTTP-POST binding, form-encoded SAMLResponse). Answers like a finished login (or { mfaRequired, mfaToken }).',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      bodyLimit: 512 * 1024,
      schema: {
        params: z.strictObject({ connection: z.string().min(1).max(64) }),
        body: z.strictObject({ SAMLResponse: z.string().min(1).max(400_000), RelayState: z.string().max(1024).optional() }),
        response: { 200: z.union([tokensResponse, cookieResponse, mfaChallengeResponse]) },
      },
      handler: async ({ params, body, request, reply }) => {
        const cookie = request.cookies[SSO_SAML_STATE_COOKIE];
        reply.clearCookie(SSO_SAML_STATE_COOKIE, { ...COOKIE_BASE, sameSite: 'none' });
        return answer(reply, await sso.samlAcs(params.connection, body.SAMLResponse, cookie, clientOf(request)));
      },
    }),
  ];
}
