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
 * The rows and writes are in src/gateway/keys-store.ts.
 */
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import type { Principal } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import { parseApiKey, verifyApiKeySecret } from './api-key-format.ts';
import { createTtlCache } from './cache.ts';
import type { ApiCredentialVerifier } from './credentials.ts';
import { createDerivedVerifier, type RequestKey } from './keys-derived.ts';
import { GatewayError } from './errors.ts';
import { insertKey, keyView, readKey, revokeKey, VIEW_COLUMNS, type KeyRow } from './keys-store.ts';
import type { ApiKeyView, CreateKeyInput, VerifiedKey } from './keys-store.ts';
import type { Meter } from './metering.ts';

export type { RequestKey } from './keys-derived.ts';
export { API_KEY_SCOPES, DEFAULT_API_KEY_SCOPES, type ApiKeyScope, type ApiKeyView, type CreateKeyInput, type VerifiedKey } from './keys-store.ts';

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
  /** Browser origins an API key may be used from (`cors.origins` and the public origin), read per call; a client token names its own. */
  browserOrigins?: () => ReadonlySet<string>;
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
  const { db, logger, meter, now } = deps;
  // Unknown ids are cached too (as null), so a flood of well-formed fake keys costs one read each
  // per cache lifetime; the bound keeps such a flood from growing memory.
  const cache = createTtlCache<VerifiedKey | null>({
    ttlMs: deps.cacheTtlMs,
    maxEntries: 100_000,
    now,
    ...(deps.cacheTrusted ? { trusted: deps.cacheTrusted } : {}),
  });
  const view = (r: KeyRow): ApiKeyView => keyView(r, meter.pendingLastUsed(r.id));
  const verifyDerived = createDerivedVerifier({
    verifiers: deps.credentialVerifiers,
    loadParent: (keyId) => cache.load(keyId, () => readKey(db, keyId)),
    touch: (key, at) => meter.touchKey(key.tenantId, key.id, at),
    remember: (request, key) => verifiedByRequest.set(request, key),
    now,
  });

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

  return {
    /**
     * Creates a key; the plaintext `key` is returned here once and never again.
     * @example const { key, apiKey } = await keys.create(orgId, wsId, userId, { name: 'ci', scopes: ['ai:chat'], ... })
     */
    async create(orgId: string, wsId: string, actorId: string, input: CreateKeyInput): Promise<{ key: string; apiKey: ApiKeyView }> {
      const { key, id, row } = await insertKey(deps, orgId, wsId, actorId, input);
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
      await revokeKey(deps, orgId, wsId, keyId);
      await evict(keyId);
    },

    evict,

    /**
     * The key `keyId` when it is valid now (neither revoked nor expired), through this node's cache
     * (evicted on every node at revocation); null otherwise. For grants built on a key (the MCP
     * authorization server's), which refuse to issue anything once their key is gone.
     */
    async active(keyId: string): Promise<VerifiedKey | null> {
      const key = await cache.load(keyId, () => readKey(db, keyId));
      if (!key || key.revoked || (key.expiresAt !== null && now() >= key.expiresAt)) return null;
      return key;
    },

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
      const key = await cache.load(parsed.id, () => readKey(db, parsed.id));
      if (!key || !verifyApiKeySecret(parsed.secret, key.secretHash)) return null;
      const at = now();
      if (key.revoked || (key.expiresAt !== null && at >= key.expiresAt)) return null;
      // An API key cannot be kept secret in a browser: only pages of the operator's own origins may use one.
      const origin = request.headers.origin;
      if (origin !== undefined && !deps.browserOrigins?.().has(origin)) throw new GatewayError('ORIGIN_NOT_ALLOWED');
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
}

export type ApiKeys = ReturnType<typeof createApiKeys>;
