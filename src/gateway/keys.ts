/**
 * API keys (GW-1): created, listed and revoked per workspace; verified for every gateway call.
 *
 * Verification: the presented key is parsed offline (prefix, length, checksum), its row is read by
 * its public id through the one RLS path that allows it (see the gateway migration) and cached on
 * this node; the secret's SHA-256 is compared with the stored hash in constant time on every call.
 * A revoked or expired key is refused. Revocation evicts the key from every node's cache through
 * kv pub/sub at once. A node whose subscription is down does not use its cache (every call reads
 * the database) and empties it when the subscription is live again, since it may have missed
 * evictions; a revoking node that cannot publish retries until Redis takes the message (see
 * src/store/kv/evictions.ts), so `gateway.keyCacheSeconds` bounds staleness only on a node that
 * stayed subscribed while the revoking node could not reach Redis. An org or workspace change
 * announced by tenancy evicts that org's keys too (a deleted workspace takes its keys with it).
 *
 * Last-used times are noted in memory and written with the usage batches (src/gateway/metering.ts).
 */
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { AppError } from '../server/errors.ts';
import type { Principal } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import { generateApiKey, parseApiKey, verifyApiKeySecret } from './api-key-format.ts';
import { createTtlCache } from './cache.ts';
import type { ApiCredentialVerifier, DelegatedCredential } from './credentials.ts';
import { GatewayError } from './errors.ts';
import type { Meter } from './metering.ts';

/**
 * The scopes a key can hold: one per gateway route family, `mcp:tools` for the MCP endpoint
 * (src/mcp), and `tokens:mint` to mint short-lived client tokens (src/tokens, GW-6).
 */
export const API_KEY_SCOPES = ['ai:chat', 'ai:embeddings', 'ai:models', 'mcp:tools', 'tokens:mint'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
/** The scopes of a key created without naming any: the AI routes only; MCP access is asked for by name. */
export const DEFAULT_API_KEY_SCOPES: readonly ApiKeyScope[] = ['ai:chat', 'ai:embeddings', 'ai:models'];

/** A key as the API shows it: never its secret or hash. */
export interface ApiKeyView {
  id: string;
  workspaceId: string;
  name: string;
  scopes: string[];
  expiresAt: string | null;
  monthlyLimit: number | null;
  rateLimitPerMinute: number | null;
  createdBy: string;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** What a node keeps of a key it verified. */
export interface VerifiedKey {
  id: string;
  tenantId: string;
  workspaceId: string;
  secretHash: string;
  scopes: readonly string[];
  /** ms, or null for no expiry. */
  expiresAt: number | null;
  revoked: boolean;
  monthlyLimit: number | null;
  rateLimitPerMinute: number | null;
}

/** The key a request was verified with; `delegation` when it came with a credential derived from it (a client token). */
export interface RequestKey extends VerifiedKey {
  delegation?: DelegatedCredential;
}

export interface CreateKeyInput {
  name: string;
  scopes: readonly ApiKeyScope[];
  expiresAt: Date | null;
  monthlyLimit: number | null;
  rateLimitPerMinute: number | null;
}

interface KeyRow {
  id: string;
  workspace_id: string;
  name: string;
  scopes: string[];
  expires_at: Date | string | null;
  monthly_limit: number | null;
  rate_limit_per_minute: number | null;
  created_by: string;
  created_at: Date | string;
  revoked_at: Date | string | null;
  last_used_at: Date | string | null;
}

const VIEW_COLUMNS = 'id, workspace_id, name, scopes, expires_at, monthly_limit, rate_limit_per_minute, created_by, created_at, revoked_at, last_used_at';

const toDate = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));
const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : toDate(v).toISOString());

/** The per-transaction setting the presented-key RLS policy compares ids with. */
const PRESENTED_KEY_SETTING = 'gatehouse.api_key_id';

export interface ApiKeysDeps {
  db: Db;
  audit: AuditLog;
  logger: Logger;
  meter: Meter;
  now: () => number;
  cacheTtlMs: number;
  /** Whether evictions are reaching this node (the kv subscription is live); the cache is bypassed otherwise. */
  cacheTrusted?: () => boolean;
  maxKeysPerWorkspace: number;
  /** Announces an evicted key to every node (this one included). */
  publishEviction: (keyId: string) => Promise<void>;
  /** Verifiers of credentials derived from API keys (client tokens), read per call; none: API keys only. */
  credentialVerifiers?: () => readonly ApiCredentialVerifier[];
  /** Browser origins an API key may be used from (`cors.origins` and the public origin); a client token names its own. */
  browserOrigins?: ReadonlySet<string>;
}

/** A request's verified key, for the gateway handler (set by the verifier). */
const verifiedByRequest = new WeakMap<FastifyRequest, RequestKey>();

/**
 * The key the apiKey guard verified for this request.
 * @example const key = verifiedKeyOf(request)
 */
export function verifiedKeyOf(request: FastifyRequest): RequestKey {
  const key = verifiedByRequest.get(request);
  // The guard runs before every gateway handler; a missing key is a wiring bug, never a client error.
  if (!key) throw new Error('gateway route ran without a verified API key');
  return key;
}

/**
 * API keys over the database, with this node's cache of verified keys.
 * @example const keys = createApiKeys({ db, audit, logger, meter, now, cacheTtlMs: 60_000, maxKeysPerWorkspace: 100, publishEviction })
 */
export function createApiKeys(deps: ApiKeysDeps) {
  const { db, audit, logger, meter, now } = deps;
  // Unknown ids are cached too (as null), so a flood of well-formed fake keys costs one read each
  // per cache lifetime; the bound keeps such a flood from growing memory.
  const cache = createTtlCache<VerifiedKey | null>({
    ttlMs: deps.cacheTtlMs,
    maxEntries: 100_000,
    now,
    ...(deps.cacheTrusted ? { trusted: deps.cacheTrusted } : {}),
  });

  const view = (r: KeyRow): ApiKeyView => {
    const pending = meter.pendingLastUsed(r.id);
    const stored = r.last_used_at === null ? undefined : toDate(r.last_used_at).getTime();
    const lastUsed = pending === undefined ? stored : stored === undefined ? pending : Math.max(pending, stored);
    return {
      id: r.id,
      workspaceId: r.workspace_id,
      name: r.name,
      scopes: r.scopes,
      expiresAt: isoOrNull(r.expires_at),
      monthlyLimit: r.monthly_limit,
      rateLimitPerMinute: r.rate_limit_per_minute,
      createdBy: r.created_by,
      createdAt: toDate(r.created_at).toISOString(),
      revokedAt: isoOrNull(r.revoked_at),
      lastUsedAt: lastUsed === undefined ? null : new Date(lastUsed).toISOString(),
    };
  };

  /** Reads one key by the id in a presented key, through the presented-key policy only. */
  async function readKey(id: string): Promise<VerifiedKey | null> {
    const { rows } = await db.transaction(async (tx) => {
      await tx.query('select set_config($1, $2, true)', [PRESENTED_KEY_SETTING, id]);
      return tx.query<{
        id: string;
        tenant_id: string;
        workspace_id: string;
        secret_hash: string;
        scopes: string[];
        expires_at: Date | string | null;
        revoked_at: Date | string | null;
        monthly_limit: number | null;
        rate_limit_per_minute: number | null;
      }>('select id, tenant_id, workspace_id, secret_hash, scopes, expires_at, revoked_at, monthly_limit, rate_limit_per_minute from api_keys where id = $1', [id]);
    });
    const r = rows[0];
    if (!r) return null;
    return {
      id: r.id,
      tenantId: r.tenant_id,
      workspaceId: r.workspace_id,
      secretHash: r.secret_hash,
      scopes: r.scopes,
      expiresAt: r.expires_at === null ? null : toDate(r.expires_at).getTime(),
      revoked: r.revoked_at !== null,
      monthlyLimit: r.monthly_limit,
      rateLimitPerMinute: r.rate_limit_per_minute,
    };
  }

  /** Forgets a key here and tells every other node to. */
  async function evict(keyId: string): Promise<void> {
    cache.delete(keyId);
    try {
      await deps.publishEviction(keyId);
    } catch (err) {
      // Committed already: the revocation succeeds; other nodes drop the key when their entry expires.
      logger.error({ err, keyId }, 'could not publish an API key eviction');
    }
  }

  const api = {
    /**
     * Creates a key; the plaintext `key` is returned here once and never again.
     * @example const { key, apiKey } = await keys.create(orgId, wsId, userId, { name: 'ci', scopes: ['ai:chat'], ... })
     */
    async create(orgId: string, wsId: string, actorId: string, input: CreateKeyInput): Promise<{ key: string; apiKey: ApiKeyView }> {
      const { key, id, secretHash } = generateApiKey();
      const event = await audit.prepare({
        tenantId: orgId,
        action: 'apikey.created',
        target: { type: 'apikey', id },
        data: {
          workspace: wsId,
          scopes: input.scopes.join(' '),
          expiresAt: input.expiresAt?.toISOString() ?? null,
          monthlyLimit: input.monthlyLimit,
          rateLimitPerMinute: input.rateLimitPerMinute,
        },
      });
      const row = await db.withTenant(orgId, async (tx) => {
        // One creation at a time per workspace, so the count below stays true.
        const ws = await tx.query('select id from workspaces where id = $1 for update', [wsId]);
        if (ws.rowCount === 0) throw new AppError('NOT_FOUND');
        const { rows: count } = await tx.query<{ n: number }>('select count(*)::int as n from api_keys where workspace_id = $1 and revoked_at is null', [wsId]);
        if ((count[0]?.n ?? 0) >= deps.maxKeysPerWorkspace) {
          throw new GatewayError('GATEWAY_LIMIT_REACHED', `A workspace may have at most ${deps.maxKeysPerWorkspace} unrevoked API keys.`);
        }
        const { rows } = await tx.query<KeyRow>(
          `insert into api_keys (id, tenant_id, workspace_id, secret_hash, name, scopes, expires_at, monthly_limit, rate_limit_per_minute, created_by, created_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning ${VIEW_COLUMNS}`,
          [id, orgId, wsId, secretHash, input.name, [...input.scopes], input.expiresAt?.toISOString() ?? null, input.monthlyLimit, input.rateLimitPerMinute, actorId, new Date(now()).toISOString()],
        );
        await audit.append(tx, event);
        return rows[0];
      });
      if (!row) throw new Error('insert returned no row');
      // An id cached as unknown (someone guessed it before it existed) must not shadow the new key.
      cache.delete(id);
      return { key, apiKey: view(row) };
    },

    /** Every key of a workspace, revoked ones included, newest last. */
    async list(orgId: string, wsId: string): Promise<ApiKeyView[]> {
      const { rows } = await db.withTenant(orgId, (tx) => tx.query<KeyRow>(`select ${VIEW_COLUMNS} from api_keys where workspace_id = $1 order by created_at, id`, [wsId]));
      return rows.map(view);
    },

    /** Revokes a key on every node at once. Revoking a revoked key changes nothing. Throws NOT_FOUND. */
    async revoke(orgId: string, wsId: string, keyId: string): Promise<void> {
      const event = await audit.prepare({ tenantId: orgId, action: 'apikey.revoked', target: { type: 'apikey', id: keyId }, data: { workspace: wsId } });
      const found = await db.withTenant(orgId, async (tx) => {
        const { rows } = await tx.query<{ revoked_at: Date | null }>('select revoked_at from api_keys where id = $1 and workspace_id = $2 for update', [keyId, wsId]);
        const row = rows[0];
        if (!row) return false;
        if (row.revoked_at === null) {
          await tx.query('update api_keys set revoked_at = $2 where id = $1', [keyId, new Date(now()).toISOString()]);
          await audit.append(tx, event);
        }
        return true;
      });
      if (!found) throw new AppError('NOT_FOUND');
      await evict(keyId);
    },

    evict,

    /** Drops a key from this node's cache (an eviction message from another node). */
    dropLocal(keyId: string): void {
      cache.delete(keyId);
    },

    /** Empties this node's cache (its eviction subscription was down: messages may have been missed). */
    clearLocal(): void {
      cache.clear();
    },

    /** Drops every key of an org from this node's cache. */
    dropOrg(orgId: string): void {
      cache.deleteWhere((_id, key) => key !== null && key.tenantId === orgId);
    },

    /**
     * The apiKey guard's verifier: the principal for a valid, unrevoked, unexpired key, or null.
     * The scope is checked by the guard against `scopes`. A presented value that is not an API key
     * is offered to the derived-credential verifiers (client tokens), whose parent key is read
     * through the same cache, so revoking it refuses them on every node with it.
     */
    async verify(presented: string, _scope: string, request: FastifyRequest): Promise<Principal | null> {
      const parsed = parseApiKey(presented);
      if (!parsed) return verifyDerived(presented, request);
      const key = await cache.load(parsed.id, () => readKey(parsed.id));
      if (!key || !verifyApiKeySecret(parsed.secret, key.secretHash)) return null;
      const at = now();
      if (key.revoked || (key.expiresAt !== null && at >= key.expiresAt)) return null;
      // An API key cannot be kept secret in a browser: only pages of the operator's own origins may use one.
      const origin = request.headers.origin;
      if (origin !== undefined && !deps.browserOrigins?.has(origin)) throw new GatewayError('ORIGIN_NOT_ALLOWED');
      meter.touchKey(key.tenantId, key.id, at);
      verifiedByRequest.set(request, key);
      return {
        kind: 'apiKey',
        id: key.id,
        tenantId: key.tenantId,
        workspaceId: key.workspaceId,
        scopes: key.scopes,
        ...(key.rateLimitPerMinute !== null ? { rateLimit: { limit: key.rateLimitPerMinute, windowSeconds: 60 } } : {}),
      };
    },
  };

  /** A derived credential (client token): its verifier's verdict, then its parent key's state. */
  async function verifyDerived(presented: string, request: FastifyRequest): Promise<Principal | null> {
    for (const verifier of deps.credentialVerifiers?.() ?? []) {
      const credential = await verifier.verify(presented, request);
      if (credential === undefined) continue;
      if (credential === null) return null;
      const parent = await cache.load(credential.parentKeyId, () => readKey(credential.parentKeyId));
      const at = now();
      if (!parent || parent.revoked || (parent.expiresAt !== null && at >= parent.expiresAt)) return null;
      if (parent.tenantId !== credential.tenantId || parent.workspaceId !== credential.workspaceId) return null;
      // Never more than the parent holds now, and never the right to mint.
      const scopes = credential.scopes.filter((s) => s !== 'tokens:mint' && parent.scopes.includes(s));
      meter.touchKey(parent.tenantId, parent.id, at);
      verifiedByRequest.set(request, { ...parent, delegation: credential });
      const limit = credential.rateLimitPerMinute ?? parent.rateLimitPerMinute;
      return {
        kind: 'apiKey',
        id: parent.id,
        tenantId: parent.tenantId,
        workspaceId: parent.workspaceId,
        scopes,
        // Every token of one subject (an end user, a bot) shares one window in the workspace.
        rateKey: credential.subject !== null ? `subject:${parent.workspaceId}:${credential.subject}` : `token:${credential.credentialId}`,
        ...(limit !== null ? { rateLimit: { limit, windowSeconds: 60 } } : {}),
      };
    }
    return null;
  }

  return api;
}

export type ApiKeys = ReturnType<typeof createApiKeys>;
