/**
 * Workspace guard policies: read through a per-node cache, written to the database (the source of
 * truth) and evicted on every node through kv pub/sub when one changes. While kv subscriptions are
 * not live, nothing is cached (an eviction could be missed).
 */
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import { DEFAULT_POLICY, parseStored, type GuardPolicy } from './policy.ts';

const POLICY_CHANNEL = 'guard:policy';
const POLICY_CACHE_MS = 30_000;

/** Builds the policy store; `start` subscribes to policy evictions, `close` unsubscribes. */
export function createPolicyStore(deps: { db: Db; kv: Kv; now: () => number }) {
  const { db, kv, now } = deps;
  const policies = new Map<string, { policy: GuardPolicy; at: number }>();
  let unsubscribe: (() => Promise<void>) | undefined;
  let stopLive: (() => void) | undefined;

  /** The workspace's policy; `fresh` skips this node's cache (the admin routes). */
  async function loadPolicy(tenantId: string, workspaceId: string, options: { fresh?: boolean } = {}): Promise<GuardPolicy> {
    const cacheKey = `${tenantId}/${workspaceId}`;
    const cached = policies.get(cacheKey);
    if (!options.fresh && cached && kv.subscriptionsLive() && now() - cached.at < POLICY_CACHE_MS) return cached.policy;
    const { rows } = await db.withTenant(tenantId, (tx) => tx.query<{ policy: unknown }>('select policy from guard_policies where tenant_id = $1 and workspace_id = $2', [tenantId, workspaceId]));
    const policy = rows[0] ? parseStored(rows[0].policy) : DEFAULT_POLICY;
    if (kv.subscriptionsLive()) policies.set(cacheKey, { policy, at: now() });
    return policy;
  }

  async function hasStoredPolicy(tenantId: string, workspaceId: string): Promise<boolean> {
    const { rows } = await db.withTenant(tenantId, (tx) => tx.query('select 1 from guard_policies where tenant_id = $1 and workspace_id = $2', [tenantId, workspaceId]));
    return rows.length > 0;
  }

  async function savePolicy(tenantId: string, workspaceId: string, userId: string, policy: GuardPolicy): Promise<void> {
    await db.withTenant(tenantId, (tx) =>
      tx.query(
        `insert into guard_policies (tenant_id, workspace_id, policy, updated_by, updated_at) values ($1, $2, $3, $4, now())
         on conflict (tenant_id, workspace_id) do update set policy = excluded.policy, updated_by = excluded.updated_by, updated_at = now()`,
        [tenantId, workspaceId, JSON.stringify(policy), userId],
      ),
    );
    policies.delete(`${tenantId}/${workspaceId}`);
    await kv.publish(POLICY_CHANNEL, `${tenantId}/${workspaceId}`);
  }

  return {
    loadPolicy,
    hasStoredPolicy,
    savePolicy,
    async start(): Promise<void> {
      unsubscribe = await kv.subscribe(POLICY_CHANNEL, (message) => void policies.delete(message));
      stopLive = kv.onSubscriptionsLive((live) => {
        if (live) policies.clear();
      });
    },
    async close(): Promise<void> {
      stopLive?.();
      await unsubscribe?.();
      policies.clear();
    },
  };
}
