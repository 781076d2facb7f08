/**
 * The SSO administration API (AUTH-9): org admins manage connections, domains and the
 * SSO-required setting under /v1/orgs/:org/sso (permission sso.manage); an operator verifies a
 * claimed domain.
 */
import { z } from 'zod';
import { httpUrlSchema } from '../config/url.ts';
import { orgScopeOf, userIdOf } from '../server/principal.ts';
import { defineRoute, type RouteDef } from '../server/route.ts';
import { isRole } from '../tenancy/index.ts';
import { CLAIM_CURSOR_RE } from './sso-domain-claims.ts';
import type { Sso } from './sso.ts';

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
const pendingClaimSchema = z.object({ id: z.string(), orgId: z.string(), orgName: z.string(), domain: z.string(), connectionId: z.string(), createdAt: z.string() });

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

/** Connections of an org: list, create, read, change, delete. */
export function ssoConnectionRoutes(sso: Sso): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/sso/connections',
      summary: 'List the organization\'s SSO connections (a client secret is never shown).',
      guard: { kind: 'session' },
      permission: 'sso.manage',
      rateCategory: 'read',
      schema: { params: orgParams, response: { 200: z.object({ connections: z.array(connectionSchema) }) } },
      handler: async ({ authority }) => ({ connections: await sso.listConnections(orgScopeOf(authority, isRole).orgId) }),
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
        const { orgId, role } = orgScopeOf(authority, isRole);
        const created = await sso.createConnection(orgId, userIdOf(principal), role, body);
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
      handler: async ({ authority, params }) => sso.getConnection(orgScopeOf(authority, isRole).orgId, params.connection),
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
        const { orgId, role } = orgScopeOf(authority, isRole);
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
        await sso.deleteConnection(orgScopeOf(authority, isRole).orgId, params.connection);
        reply.code(204);
        return null;
      },
    }),
  ];
}

/** Domains of an org and its SSO-required setting; the operator's verification of a claim. */
export function ssoDomainRoutes(sso: Sso): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/sso/domains',
      summary: 'The email domains the organization claimed, and which are verified (only verified domains route sign-ins).',
      guard: { kind: 'session' },
      permission: 'sso.manage',
      rateCategory: 'read',
      schema: { params: orgParams, response: { 200: z.object({ domains: z.array(domainSchema) }) } },
      handler: async ({ authority }) => ({ domains: await sso.listDomains(orgScopeOf(authority, isRole).orgId) }),
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
        const claimed = await sso.claimDomain(orgScopeOf(authority, isRole).orgId, body.domain, body.connectionId);
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
        await sso.removeDomain(orgScopeOf(authority, isRole).orgId, params.domain);
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
      handler: async ({ authority }) => sso.getSettings(orgScopeOf(authority, isRole).orgId),
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
      handler: async ({ authority, body }) => sso.setSettings(orgScopeOf(authority, isRole).orgId, body.ssoRequired),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/admin/domain-claims',
      summary:
        'Operators: the email-domain claims of every organization still waiting for verification, oldest first, with the organization\'s id and name (to pick one to check and verify); `cursor` is the `nextCursor` of the previous page.',
      guard: { kind: 'session' },
      permission: 'platform.sso.verify',
      rateCategory: 'read',
      schema: {
        querystring: z.strictObject({
          status: z.enum(['pending']).default('pending'),
          cursor: z.string().max(60).regex(CLAIM_CURSOR_RE, 'not a cursor this list gave').optional(),
          limit: z.coerce.number().int().min(1).max(100).default(50),
        }),
        response: { 200: z.object({ claims: z.array(pendingClaimSchema), nextCursor: z.string().nullable() }) },
      },
      handler: async ({ query }) => sso.listPendingClaims(query),
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
      handler: async ({ principal, body }) => sso.verifyDomain(userIdOf(principal), body.orgId, body.domain),
    }),
  ];
}
