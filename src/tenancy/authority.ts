/**
 * Current authority (TEN-1): a caller's role in an org is read from the database on every
 * request, through a short per-node cache that every change evicts on every node (kv pub/sub).
 * Access tokens carry no role claim, so a stale token never carries old authority.
 *
 * An eviction that does not arrive must not leave old authority standing: while this node's kv
 * subscription is not live (Redis down or restarting, the subscriber reconnecting) every request
 * reads the database and nothing is cached, and when it is live again the whole cache is dropped.
 * A node that cannot publish an eviction retries until Redis takes it (src/store/kv/evictions.ts);
 * `tenancy.authorityCacheSeconds` bounds staleness only on a node that stayed subscribed while the
 * changing node could not reach Redis.
 */
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AppError } from '../server/errors.ts';
import type { Authority, Principal } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import { createEvictionPublisher } from '../store/kv/evictions.ts';
import type { Kv } from '../store/kv/types.ts';
import { can, effectiveWorkspaceRole, isPermission, isRole, type Role } from './permissions.ts';

/** The kv channel every membership, workspace or org change is announced on (the message is the org id). */
export const TENANCY_EVICT_CHANNEL = 'tenancy:evict';
const EVICT_CHANNEL = TENANCY_EVICT_CHANNEL;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Permissions outside any org: held by operators only. */
export const PLATFORM_PERMISSIONS = ['platform.users.manage', 'platform.audit.read', 'platform.sso.verify', 'platform.trust.read', 'platform.webhooks.read', 'platform.webhooks.manage'] as const;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

interface Entry {
  /** null: not a member. */
  role: Role | null;
  /** The org requires a second factor of its members. */
  requireMfa: boolean;
  /** Every workspace of the org, with this member's narrowing role there (null: none). */
  workspaces: Map<string, Role | null>;
  loadedAt: number;
}

export interface AuthorityCache {
  authorize: (principal: Principal, permission: string, params: Readonly<Record<string, string | undefined>>, request?: FastifyRequest) => Promise<Authority>;
  /** Forgets everything cached about an org on this node and every other. Call after the change commits. */
  evictOrg: (orgId: string) => Promise<void>;
  close: () => Promise<void>;
}

/** What the database says of a user in an org: their role, the org's MFA rule, their workspace roles. */
async function readEntry(db: Db, orgId: string, userId: string, loadedAt: number): Promise<Entry> {
  const rows = await db.withTenant(orgId, (tx) =>
    tx.query<{ role: string; require_mfa: boolean; ws: [string, string | null][] }>(
      `select m.role, (select o.require_mfa from orgs o) as require_mfa,
              (select coalesce(json_agg(json_build_array(w.id, wm.role)), '[]'::json)
                 from workspaces w
                 left join workspace_members wm on wm.tenant_id = w.tenant_id and wm.workspace_id = w.id and wm.user_id = m.user_id) as ws
         from memberships m
        where m.user_id = $1`,
      [userId],
    ),
  );
  const row = rows.rows[0];
  const entry: Entry = { role: null, requireMfa: false, workspaces: new Map(), loadedAt };
  if (row && isRole(row.role)) {
    entry.role = row.role;
    entry.requireMfa = row.require_mfa === true;
    for (const [id, role] of row.ws) entry.workspaces.set(id, isRole(role) ? role : null);
  }
  return entry;
}

/** A platform route: only an active operator. */
async function authorizePlatform(db: Db, principal: Principal): Promise<Authority> {
  const { rows } = await db.query<{ is_operator: boolean; status: string }>('select is_operator, status from users where id = $1', [principal.id]);
  const user = rows[0];
  if (!user || !user.is_operator || user.status !== 'active') throw new AppError('FORBIDDEN');
  return {};
}

export async function createAuthorityCache(deps: {
  db: Db;
  kv: Kv;
  logger: Logger;
  ttlMs: number;
  now: () => number;
  /** Called when a member is refused by the matrix (not for non-members: those get 404). */
  onDenied?: (orgId: string, permission: string) => Promise<void>;
  /**
   * Whether the caller's session has a verified second factor. Without it, an org that requires
   * MFA admits nobody (fail closed).
   */
  mfaSatisfied?: (principal: Principal) => Promise<boolean>;
}): Promise<AuthorityCache> {
  const { db, kv, logger, ttlMs, now } = deps;
  const cache = new Map<string, Map<string, Entry>>();
  // Bumped by every eviction: a load that started before one must not store what it read.
  const generation = new Map<string, number>();

  const dropLocal = (orgId: string): void => {
    cache.delete(orgId);
    generation.set(orgId, (generation.get(orgId) ?? 0) + 1);
  };
  // Bumped when the whole cache is dropped (the subscription came back after a gap).
  let epoch = 0;
  const evictions = createEvictionPublisher({ kv, logger, now, giveUpAfterMs: ttlMs });
  const stopResync = kv.onSubscriptionsLive((live) => {
    if (!live) return;
    cache.clear();
    epoch++;
  });
  let unsubscribe: () => Promise<void>;
  try {
    unsubscribe = await kv.subscribe(EVICT_CHANNEL, (message) => {
      if (isUuid(message)) dropLocal(message);
    });
  } catch (err) {
    stopResync();
    evictions.close();
    throw err;
  }

  async function load(orgId: string, userId: string): Promise<Entry> {
    // Evictions may be getting lost: read the database and keep nothing until the subscription is back.
    const trusted = kv.subscriptionsLive();
    const hit = trusted ? cache.get(orgId)?.get(userId) : undefined;
    if (hit && now() - hit.loadedAt < ttlMs) return hit;
    const gen = generation.get(orgId) ?? 0;
    const startedIn = epoch;
    const entry = await readEntry(db, orgId, userId, now());
    if (trusted && epoch === startedIn && (generation.get(orgId) ?? 0) === gen) {
      let map = cache.get(orgId);
      if (!map) {
        map = new Map();
        cache.set(orgId, map);
      }
      // Bounded per org by its member count; orgs leave the cache on eviction.
      map.set(userId, entry);
    }
    return entry;
  }

  return {
    async authorize(principal, permission, params) {
      if (principal.kind !== 'user' || !isUuid(principal.id)) throw new AppError('FORBIDDEN');
      if ((PLATFORM_PERMISSIONS as readonly string[]).includes(permission)) return authorizePlatform(db, principal);
      // A route declaring a permission the matrix does not know is a programming error: fail closed.
      if (!isPermission(permission)) throw new Error(`route declares unknown permission ${permission}`);
      const orgId = params.org;
      // Malformed and unknown ids, and orgs the caller is not in, look the same: 404.
      if (!isUuid(orgId)) throw new AppError('NOT_FOUND');
      const entry = await load(orgId, principal.id);
      if (entry.role === null) throw new AppError('NOT_FOUND');
      // The org's members must sign in with a second factor: without one, enrolment comes first.
      if (entry.requireMfa && !(deps.mfaSatisfied && (await deps.mfaSatisfied(principal)))) throw new AppError('MFA_REQUIRED_BY_ORG');
      let role: Role = entry.role;
      let workspaceId: string | undefined;
      if ('ws' in params) {
        const ws = params.ws;
        if (!isUuid(ws) || !entry.workspaces.has(ws)) throw new AppError('NOT_FOUND');
        workspaceId = ws;
        role = effectiveWorkspaceRole(entry.role, entry.workspaces.get(ws) ?? null);
      }
      if (!can(role, permission)) {
        await deps.onDenied?.(orgId, permission).catch((err: unknown) => logger.error({ err, orgId }, 'could not audit a refused request'));
        throw new AppError('FORBIDDEN');
      }
      return { tenantId: orgId, role, orgRole: entry.role, ...(workspaceId ? { workspaceId } : {}) };
    },

    async evictOrg(orgId) {
      dropLocal(orgId);
      // Never throws: the change is committed, so the request that made it succeeds.
      await evictions.publish(EVICT_CHANNEL, orgId);
    },

    async close() {
      stopResync();
      evictions.close();
      await unsubscribe();
      cache.clear();
    },
  };
}
