/**
 * The enterprise SSO API (AUTH-9): org admins manage connections, domains and the SSO-required
 * setting under /v1/orgs/:org/sso (permission sso.manage); an operator verifies a claimed domain;
 * browsers discover, start and finish sign-ins under /v1/auth/sso.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { httpUrlSchema } from '../../config/url.ts';
import { AppError } from '../../server/errors.ts';
import { defineRoute, type Authority, type Feature, type Principal } from '../../server/route.ts';
import { isRole, type Role } from '../../tenancy/index.ts';
import { cookieResponse, DEVICE_COOKIE, signedInReply, tokensResponse, type SecondFactorRequired, type SignedIn } from '../index.ts';
import { SSO_SEALED_COLUMNS, type Sso } from './sso.ts';
import { SSO_OIDC_STATE_COOKIE, SSO_SAML_STATE_COOKIE } from './state.ts';

export const SSO_ERROR_CODES = {
  SSO_CONNECTION_UNKNOWN: { status: 404, message: 'No such single sign-on connection.', doc: 'The connection id in a sign-in path is unknown, malformed or disabled.' },
  SSO_METADATA_INVALID: {
    status: 400,
    message: 'The IdP metadata is not usable.',
    doc: 'SAML IdP metadata that is not well-formed, has a DOCTYPE, describes no single SAML 2.0 IdP, has no https HTTP-Redirect SingleSignOnService, or carries no readable signing certificate.',
  },
  SSO_DOMAIN_EXISTS: { status: 409, message: 'This organization already claimed this domain.', doc: 'A domain is claimed once per organization.' },
  SSO_DOMAIN_TAKEN: { status: 409, message: 'This domain is verified for another organization.', doc: 'A domain routes sign-ins to one organization at most; the operator cannot verify it for a second one.' },
  SSO_NOT_READY: {
    status: 409,
    message: 'Set up an enabled connection with a verified domain first.',
    doc: 'Requiring SSO needs an enabled connection with at least one verified domain, so members have somewhere to sign in.',
  },
  SSO_REQUIRED: {
    status: 403,
    message: 'Your organization requires single sign-on.',
    doc: 'The password was right, but the user is a member (not an owner) of an organization that requires SSO; the message and the `Link` header (rel="sso") name the start URL. Owners keep password sign-in as a break-glass. Also refuses social and passkey sign-in of such members.',
  },
  SSO_IDP_UNAVAILABLE: { status: 502, message: 'The identity provider could not be reached.', doc: 'OIDC discovery at the connection\'s issuer failed; retry later or check the issuer URL.' },
  SSO_STATE_INVALID: {
    status: 400,
    message: 'The sign-in could not be matched to this browser; start again.',
    doc: 'The SSO callback or ACS came without the state cookie of the browser that started it, with another state or request id, after its expiry, or a second time.',
  },
  SSO_EXCHANGE_FAILED: {
    status: 400,
    message: 'The identity provider\'s answer could not be accepted; start again.',
    doc: 'OIDC: the code exchange or the id_token check failed (a spent code, a wrong PKCE verifier, another issuer or audience, a wrong nonce, an expired token, an IdP error).',
  },
  SSO_ASSERTION_INVALID: {
    status: 400,
    message: 'The SAML response could not be accepted; start again.',
    doc: 'SAML: no valid signature from the IdP\'s certificates (unsigned, another key, wrapped), outside its time window beyond `sso.clockSkewSeconds`, another audience, recipient, destination or issuer, or an InResponseTo that is not a request this deployment issued and has not answered yet.',
  },
  SSO_ASSERTION_REPLAYED: { status: 400, message: 'This SAML assertion was already used.', doc: 'SAML: an assertion id already accepted once (replay cache, kept until the assertion expires).' },
  SSO_EMAIL_NOT_ALLOWED: {
    status: 403,
    message: 'The identity provider did not give an email address in this organization\'s verified domains.',
    doc: 'The asserted email is missing, invalid, outside every verified domain of the connection\'s organization, or the IdP said it is not verified.',
  },
  SSO_SUBJECT_MISMATCH: {
    status: 403,
    message: 'This identity provider account is linked to another email address.',
    doc: 'The IdP subject is linked to an account with another email, or the account with this email is linked to another subject of the same connection.',
  },
  SSO_ACCOUNT_NOT_ELIGIBLE: { status: 403, message: 'This account cannot sign in with single sign-on.', doc: 'Platform operators sign in with their password and second factor, never through an organization\'s IdP.' },
} as const;

const COOKIE_BASE = { httpOnly: true, secure: true, path: '/' };
const orgParams = z.strictObject({ org: z.uuid() });
const connectionParams = z.strictObject({ org: z.uuid(), connection: z.uuid() });
const domainParams = z.strictObject({ org: z.uuid(), domain: z.uuid() });
const name = z.string().trim().min(1).max(100);
const defaultRole = z.enum(['admin', 'editor', 'viewer']);
const scopes = z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/, 'an OAuth scope token')).min(1).max(20);
const clientSecret = z.string().min(1).max(4096);
const clientId = z.string().min(1).max(512);
const metadataXml = z.string().min(1).max(200_000);
const noContent = z.null();

const connectionSchema = z.object({
  id: z.string(),
  kind: z.enum(['oidc', 'saml']),
  name: z.string(),
  defaultRole,
  enabled: z.boolean(),
  startUrl: z.string(),
  issuer: z.string().nullable(),
  clientId: z.string().nullable(),
  scopes: z.array(z.string()).nullable(),
  redirectUri: z.string().nullable(),
  idpEntityId: z.string().nullable(),
  idpSsoUrl: z.string().nullable(),
  idpCertificates: z.array(z.object({ sha256: z.string(), notAfter: z.string().nullable() })).nullable(),
  wantResponseSigned: z.boolean().nullable(),
  spEntityId: z.string().nullable(),
  acsUrl: z.string().nullable(),
  signRequests: z.boolean().nullable(),
  spSigningCertificate: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const domainSchema = z.object({ id: z.string(), domain: z.string(), connectionId: z.string(), verified: z.boolean(), verifiedAt: z.string().nullable(), createdAt: z.string() });
const settingsSchema = z.object({ ssoRequired: z.boolean() });

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

function scopeOf(authority: Authority | undefined): { orgId: string; role: Role } {
  if (!authority?.tenantId || !isRole(authority.role)) throw new Error('tenant route ran without an authority');
  return { orgId: authority.tenantId, role: authority.role };
}

function userOf(principal: Principal | undefined): string {
  if (!principal || principal.kind !== 'user') throw new AppError('UNAUTHENTICATED');
  return principal.id;
}

export interface SsoFeatureDeps {
  sso: Sso;
  publicOrigin: string;
  now: () => number;
}

export function createSsoFeature(deps: SsoFeatureDeps): Feature {
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
  return {
    id: 'sso',
    errorCodes: SSO_ERROR_CODES,
    sealedColumns: SSO_SEALED_COLUMNS,
    routes: [
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/sso/connections',
        summary: 'List the organization\'s SSO connections (a client secret is never shown).',
        guard: { kind: 'session' },
        permission: 'sso.manage',
        rateCategory: 'read',
        schema: { params: orgParams, response: { 200: z.object({ connections: z.array(connectionSchema) }) } },
        handler: async ({ authority }) => ({ connections: await sso.listConnections(scopeOf(authority).orgId) }),
      }),
      defineRoute({
        method: 'POST',
        url: '/v1/orgs/:org/sso/connections',
        summary:
          'Add an SSO connection: OIDC (issuer for discovery, client id and secret, scopes; the secret is sealed and never shown again) or SAML 2.0 (the IdP metadata XML: entity id, SSO URL and signing certificates are read from it; signRequests makes an SP signing key whose private key is sealed and never shown, and whose certificate the connection and its SP metadata show). defaultRole (never owner, never above your own) is what a user provisioned just in time gets.',
        guard: { kind: 'session' },
        permission: 'sso.manage',
        rateCategory: 'write',
        bodyLimit: 256 * 1024,
        schema: {
          params: orgParams,
          body: z.discriminatedUnion('kind', [
            z.strictObject({ kind: z.literal('oidc'), name, defaultRole, issuer: httpUrlSchema({ bare: true }), clientId, clientSecret, scopes: scopes.optional() }),
            z.strictObject({ kind: z.literal('saml'), name, defaultRole, metadataXml, wantResponseSigned: z.boolean().optional(), signRequests: z.boolean().optional() }),
          ]),
          response: { 201: connectionSchema },
        },
        handler: async ({ authority, principal, body, reply }) => {
          const { orgId, role } = scopeOf(authority);
          const created = await sso.createConnection(orgId, userOf(principal), role, body);
          reply.code(201);
          return created;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/sso/connections/:connection',
        summary: 'Read an SSO connection, with what to register at the IdP (redirect URI, or SP entity id and ACS URL).',
        guard: { kind: 'session' },
        permission: 'sso.manage',
        rateCategory: 'read',
        schema: { params: connectionParams, response: { 200: connectionSchema } },
        handler: async ({ authority, params }) => sso.getConnection(scopeOf(authority).orgId, params.connection),
      }),
      defineRoute({
        method: 'PATCH',
        url: '/v1/orgs/:org/sso/connections/:connection',
        summary: 'Change an SSO connection: name, default role, enabled; OIDC client id, secret (replaced, never shown) and scopes; SAML metadata (re-read), whether the Response must be signed too, and whether AuthnRequests are signed (the SP key is made the first time, and kept when signing is turned off).',
        guard: { kind: 'session' },
        permission: 'sso.manage',
        rateCategory: 'write',
        bodyLimit: 256 * 1024,
        schema: {
          params: connectionParams,
          body: z
            .strictObject({
              name: name.optional(),
              defaultRole: defaultRole.optional(),
              enabled: z.boolean().optional(),
              clientId: clientId.optional(),
              clientSecret: clientSecret.optional(),
              scopes: scopes.optional(),
              metadataXml: metadataXml.optional(),
              wantResponseSigned: z.boolean().optional(),
              signRequests: z.boolean().optional(),
            })
            .refine((b) => Object.values(b).some((v) => v !== undefined), 'give at least one field'),
          response: { 200: connectionSchema },
        },
        handler: async ({ authority, params, body }) => {
          const { orgId, role } = scopeOf(authority);
          return sso.updateConnection(orgId, role, params.connection, body);
        },
      }),
      defineRoute({
        method: 'DELETE',
        url: '/v1/orgs/:org/sso/connections/:connection',
        summary: 'Delete an SSO connection with its domains and links (members stay members). SSO stops being required when no enabled connection is left.',
        guard: { kind: 'session' },
        permission: 'sso.manage',
        rateCategory: 'write',
        schema: { params: connectionParams, response: { 204: noContent } },
        handler: async ({ authority, params, reply }) => {
          await sso.deleteConnection(scopeOf(authority).orgId, params.connection);
          reply.code(204);
          return null;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/sso/domains',
        summary: 'The email domains the organization claimed, and which are verified (only verified domains route sign-ins).',
        guard: { kind: 'session' },
        permission: 'sso.manage',
        rateCategory: 'read',
        schema: { params: orgParams, response: { 200: z.object({ domains: z.array(domainSchema) }) } },
        handler: async ({ authority }) => ({ domains: await sso.listDomains(scopeOf(authority).orgId) }),
      }),
      defineRoute({
        method: 'POST',
        url: '/v1/orgs/:org/sso/domains',
        summary: 'Claim an email domain for a connection. It routes sign-ins and admits asserted emails only once the platform operator verified it.',
        guard: { kind: 'session' },
        permission: 'sso.manage',
        rateCategory: 'write',
        schema: { params: orgParams, body: z.strictObject({ domain: z.string().min(3).max(253), connectionId: z.uuid() }), response: { 201: domainSchema } },
        handler: async ({ authority, body, reply }) => {
          const claimed = await sso.claimDomain(scopeOf(authority).orgId, body.domain, body.connectionId);
          reply.code(201);
          return claimed;
        },
      }),
      defineRoute({
        method: 'DELETE',
        url: '/v1/orgs/:org/sso/domains/:domain',
        summary: 'Remove a domain claim (verified or not).',
        guard: { kind: 'session' },
        permission: 'sso.manage',
        rateCategory: 'write',
        schema: { params: domainParams, response: { 204: noContent } },
        handler: async ({ authority, params, reply }) => {
          await sso.removeDomain(scopeOf(authority).orgId, params.domain);
          reply.code(204);
          return null;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/sso/settings',
        summary: 'Whether the organization requires SSO of its members.',
        guard: { kind: 'session' },
        permission: 'sso.manage',
        rateCategory: 'read',
        schema: { params: orgParams, response: { 200: settingsSchema } },
        handler: async ({ authority }) => sso.getSettings(scopeOf(authority).orgId),
      }),
      defineRoute({
        method: 'PUT',
        url: '/v1/orgs/:org/sso/settings',
        summary:
          'Require SSO of the organization\'s members: their password (and social, passkey) sign-in is refused with SSO_REQUIRED. Owners are exempt (break-glass). Needs an enabled connection with a verified domain.',
        guard: { kind: 'session' },
        permission: 'sso.manage',
        rateCategory: 'write',
        schema: { params: orgParams, body: z.strictObject({ ssoRequired: z.boolean() }), response: { 200: settingsSchema } },
        handler: async ({ authority, body }) => sso.setSettings(scopeOf(authority).orgId, body.ssoRequired),
      }),
      defineRoute({
        method: 'POST',
        url: '/v1/admin/sso/domains/verify',
        summary:
          'Operators: mark an organization\'s domain claim verified, after checking out of band that the organization holds the domain. A domain is verified for one organization at most.',
        guard: { kind: 'session' },
        permission: 'platform.sso.verify',
        rateCategory: 'write',
        schema: { body: z.strictObject({ orgId: z.uuid(), domain: z.string().min(3).max(253) }), response: { 200: domainSchema } },
        handler: async ({ principal, body }) => sso.verifyDomain(userOf(principal), body.orgId, body.domain),
      }),
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
    ],
  };
}
