/**
 * Minting client tokens (GW-6).
 *
 * `POST /v1/tokens`: a backend presenting an API key with the `tokens:mint` scope mints a token
 * derived from that key. `POST /v1/orgs/:org/workspaces/:ws/tokens`: a signed-in member who may
 * manage the workspace's keys (`apikeys.manage`) mints one from a named key of the workspace; the
 * token then also dies when the member loses that permission.
 *
 * A token holds at most its parent's scopes (AI scopes only: never `tokens:mint` or `mcp:tools`),
 * optionally fewer models, a subject (an end user or bot id of the tenant's app: rate limits and
 * usage are kept per subject), its own rate limit (never above the parent's), and the browser
 * origins it may be used from. Each mint is an audit event in the org's log (never the token).
 */
import { z } from 'zod';
import type { AuditLog } from '../audit/index.ts';
import { modelPatternSchema, verifiedKeyOf, type Gateway } from '../gateway/index.ts';
import type { Signer } from '../keyring/signing-keys.ts';
import { AppError } from '../server/errors.ts';
import { userSessionOf, workspaceScopeOf } from '../server/principal.ts';
import { defineRoute, type Feature } from '../server/route.ts';
import { TOKENS_ERROR_CODES } from './error-codes.ts';
import { MINT_PERMISSION } from './credential.ts';
import { MAX_TOKEN_BYTES, signClientToken } from './jwt.ts';
import type { TokenRevocations } from './revocations.ts';

/** The scopes a client token may carry: the AI routes'. */
export const MINTABLE_SCOPES = ['ai:chat', 'ai:embeddings', 'ai:models'] as const;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** A browser origin: https (or http on loopback), no path, query, fragment or credentials. */
const originSchema = z.string().max(200).refine((value) => {
  try {
    const url = new URL(value);
    if (url.origin !== value) return false;
    return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
  } catch {
    return false;
  }
}, 'an origin: https://host[:port] (http only on localhost / 127.0.0.1 / [::1]), no path');

const mintBody = {
  ttlSeconds: z.number().int().min(60).max(3600).optional(),
  scopes: z
    .array(z.enum(MINTABLE_SCOPES))
    .min(1)
    .max(MINTABLE_SCOPES.length)
    .refine((s) => new Set(s).size === s.length, 'scopes must not repeat')
    .optional(),
  models: z.array(modelPatternSchema).min(1).max(20).optional(),
  subject: z
    .string()
    .regex(/^[A-Za-z0-9._:@+-]{1,128}$/, '1-128 characters: letters, digits and . _ : @ + -')
    .optional(),
  rateLimitPerMinute: z.number().int().min(1).max(1_000_000).optional(),
  monthlyCallLimit: z.number().int().min(1).max(1_000_000_000).optional(),
  allowedOrigins: z.array(originSchema).min(1).max(10).optional(),
};
type MintInput = { ttlSeconds?: number | undefined; scopes?: (typeof MINTABLE_SCOPES)[number][] | undefined; models?: string[] | undefined; subject?: string | undefined; rateLimitPerMinute?: number | undefined; monthlyCallLimit?: number | undefined; allowedOrigins?: string[] | undefined };

const minted = z.object({
  token: z.string(),
  tokenType: z.literal('Bearer'),
  tokenId: z.string(),
  expiresAt: z.string(),
  expiresIn: z.number(),
  workspaceId: z.string(),
  scopes: z.array(z.string()),
  models: z.array(z.string()).nullable(),
  subject: z.string().nullable(),
  monthlyCallLimit: z.number().nullable(),
  allowedOrigins: z.array(z.string()).nullable(),
});

export interface TokensFeatureDeps {
  gateway: Pick<Gateway, 'keys'>;
  audit: AuditLog;
  signer: () => Promise<Signer>;
  issuer: string;
  now: () => number;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  revocations: TokenRevocations;
}

const revokeBody = z.strictObject({ tokenId: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'a client token id (its jti, as minting returned it)') });
const revoked = z.object({ tokenId: z.string(), revoked: z.literal(true), alreadyRevoked: z.boolean() });

interface Parent {
  id: string;
  tenantId: string;
  workspaceId: string;
  scopes: readonly string[];
  rateLimitPerMinute: number | null;
}

/** Revoking one client token by its id (src/tokens/revocations.ts): by a `tokens:mint` key, or by a member. */
function revokeRoutes(deps: TokensFeatureDeps) {
  /** Revokes one token of the workspace by its id, durably; an audit event names it (never the token). */
  async function revoke(tenantId: string, workspaceId: string, tokenId: string, by: string, target: { type: string; id: string }) {
    const fresh = await deps.revocations.revoke({ tenantId, workspaceId, tokenId, by });
    if (fresh) await deps.audit.record({ tenantId, action: 'clienttoken.revoked', target, data: { workspace: workspaceId, token: tokenId } });
    return { tokenId, revoked: true as const, alreadyRevoked: !fresh };
  }

  return [
      defineRoute({
        method: 'POST',
        url: '/v1/tokens/revoke',
        summary:
          'Revoke one client token of this API key\'s workspace by its id (tokenId, the jti), without revoking the key: refused on every node at once, durably (the database decides).',
        guard: { kind: 'apiKey', scope: 'tokens:mint' },
        permission: null,
        rateCategory: 'write',
        schema: { body: revokeBody, response: { 200: revoked } },
        handler: async ({ request, body }) => {
          const key = verifiedKeyOf(request);
          if (key.delegation) throw new AppError('FORBIDDEN', 'A client token cannot revoke tokens.');
          return revoke(key.tenantId, key.workspaceId, body.tokenId, `apikey:${key.id}`, { type: 'apikey', id: key.id });
        },
      }),
      defineRoute({
        method: 'DELETE',
        url: '/v1/orgs/:org/workspaces/:ws/tokens/:tokenId',
        summary: 'Revoke one client token of the workspace by its id (the jti), as a member who may manage its keys; the key it was minted from stays valid.',
        guard: { kind: 'session' },
        permission: MINT_PERMISSION,
        rateCategory: 'write',
        schema: {
          params: z.strictObject({ org: z.uuid(), ws: z.uuid(), tokenId: revokeBody.shape.tokenId }),
          response: { 200: revoked },
        },
        handler: async ({ authority, principal, params }) => {
          const { orgId, wsId } = workspaceScopeOf(authority);
          const { userId } = userSessionOf(principal);
          return revoke(orgId, wsId, params.tokenId, `user:${userId}`, { type: 'user', id: userId });
        },
      }),
  ];
}

export function createTokensFeature(deps: TokensFeatureDeps): Feature {
  const { audit, now } = deps;

  async function mint(parent: Parent, input: MintInput, mintedBy: { userId: string; sessionId: string } | null) {
    const held = MINTABLE_SCOPES.filter((s) => parent.scopes.includes(s));
    const scopes = input.scopes ?? held;
    const missing = scopes.filter((s) => !held.includes(s));
    if (missing.length > 0 || scopes.length === 0) {
      throw new AppError('TOKEN_SCOPE_NOT_HELD', scopes.length === 0 ? 'The API key holds no AI scope to give.' : `The API key does not hold ${missing.join(', ')}.`);
    }
    const ttl = input.ttlSeconds ?? deps.defaultTtlSeconds;
    if (ttl > deps.maxTtlSeconds) throw new AppError('VALIDATION_FAILED', `body.ttlSeconds: at most ${deps.maxTtlSeconds}`);
    const rpm = input.rateLimitPerMinute ?? null;
    if (rpm !== null && parent.rateLimitPerMinute !== null && rpm > parent.rateLimitPerMinute) {
      throw new AppError('VALIDATION_FAILED', `body.rateLimitPerMinute: at most the API key's ${parent.rateLimitPerMinute}`);
    }
    const monthly = input.monthlyCallLimit ?? null;
    // A monthly budget is the subject's (every token of one end user or bot shares it): it needs one.
    if (monthly !== null && input.subject === undefined) throw new AppError('VALIDATION_FAILED', 'body.monthlyCallLimit: needs a subject, whose calls it counts');
    const issuedAt = Math.floor(now() / 1000);
    const claims = {
      tenantId: parent.tenantId,
      workspaceId: parent.workspaceId,
      parentKeyId: parent.id,
      mintedBy,
      scopes: [...scopes],
      models: input.models ?? null,
      subject: input.subject ?? null,
      origins: input.allowedOrigins ?? null,
      rateLimitPerMinute: rpm,
      monthlyCallLimit: monthly,
      issuedAt,
      expiresAt: issuedAt + ttl,
    };
    const { token, id } = signClientToken(await deps.signer(), deps.issuer, claims);
    if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) throw new AppError('VALIDATION_FAILED', 'body: the token would be too large; name fewer models or origins');
    await audit.record({
      tenantId: parent.tenantId,
      action: 'clienttoken.minted',
      target: { type: 'apikey', id: parent.id },
      data: {
        workspace: parent.workspaceId,
        token: id,
        subject: claims.subject,
        scopes: claims.scopes.join(' '),
        models: claims.models?.join(' ') ?? null,
        origins: claims.origins?.join(' ') ?? null,
        rateLimitPerMinute: rpm,
        monthlyCallLimit: monthly,
        expiresAt: new Date(claims.expiresAt * 1000).toISOString(),
      },
    });
    return {
      token,
      tokenType: 'Bearer' as const,
      tokenId: id,
      expiresAt: new Date(claims.expiresAt * 1000).toISOString(),
      expiresIn: ttl,
      workspaceId: parent.workspaceId,
      scopes: claims.scopes,
      models: claims.models,
      subject: claims.subject,
      monthlyCallLimit: monthly,
      allowedOrigins: claims.origins,
    };
  }

  return {
    id: 'tokens',
    errorCodes: TOKENS_ERROR_CODES,
    routes: [
      defineRoute({
        method: 'POST',
        url: '/v1/tokens',
        summary:
          'Mint a short-lived client token from this API key (scope tokens:mint): a signed JWT (JWKS at /.well-known/jwks.json) that the AI routes accept as the key, with at most the key\'s AI scopes, optional models, subject, rate limit and browser origins. Revoking the key kills it on every node.',
        guard: { kind: 'apiKey', scope: 'tokens:mint' },
        permission: null,
        rateCategory: 'write',
        schema: { body: z.strictObject(mintBody), response: { 201: minted } },
        handler: async ({ request, reply, body }) => {
          const key = verifiedKeyOf(request);
          // A token never mints (the gateway strips the scope from derived credentials too).
          if (key.delegation) throw new AppError('FORBIDDEN', 'A client token cannot mint tokens.');
          const result = await mint(key, body, null);
          reply.code(201);
          return result;
        },
      }),
      defineRoute({
        method: 'POST',
        url: '/v1/orgs/:org/workspaces/:ws/tokens',
        summary:
          'Mint a short-lived client token from one of the workspace\'s API keys, as a member who may manage its keys. The token also stops working when the member loses that permission.',
        guard: { kind: 'session' },
        permission: MINT_PERMISSION,
        rateCategory: 'write',
        schema: {
          params: z.strictObject({ org: z.uuid(), ws: z.uuid() }),
          body: z.strictObject({ apiKey: z.string().regex(/^[0-9A-Za-z]{16}$/), ...mintBody }),
          response: { 201: minted },
        },
        handler: async ({ authority, principal, reply, body }) => {
          const { orgId, wsId } = workspaceScopeOf(authority);
          const view = (await deps.gateway.keys.list(orgId, wsId)).find((k) => k.id === body.apiKey);
          if (!view) throw new AppError('NOT_FOUND');
          if (view.revokedAt !== null || (view.expiresAt !== null && Date.parse(view.expiresAt) <= now())) throw new AppError('TOKEN_PARENT_INACTIVE');
          const result = await mint({ id: view.id, tenantId: orgId, workspaceId: wsId, scopes: view.scopes, rateLimitPerMinute: view.rateLimitPerMinute }, body, userSessionOf(principal));
          reply.code(201);
          return result;
        },
      }),
      ...revokeRoutes(deps),
    ],
  };
}
