/**
 * Work across every tenant for jobs and commands that maintain tenant tables (pruning, counting).
 *
 * Tenant tables force row-level security on their owner too: an owner role that is neither
 * superuser nor BYPASSRLS sees no tenant row without a tenant context, so an owner statement
 * without one "succeeds" on nothing. These helpers always give a tenant context instead:
 * `forEachTenant` walks the `tenants` registry (no RLS) and runs each tenant in its own
 * `withTenant` transaction; `asOwnerInTenant` is an owner transaction with a tenant context, for
 * the few statements only the owner may run (audit retention).
 */
import { assertTenantId } from './adapter-rules.ts';
import { TENANT_SETTING, type Db, type Queryable } from './db-types.ts';

/** Tenants read from the registry per page: memory stays flat whatever their number. */
export const TENANT_PAGE = 500;

/**
 * Runs `fn` in each tenant's context (the application role, one transaction per tenant), the
 * tenants in id order, read a page at a time. Stops before the next tenant once `signal` is
 * aborted. An error in one tenant ends the walk with that error (the job run fails, loudly).
 * Returns how many tenants it ran.
 * @example await forEachTenant(db, (id, tx) => tx.query('delete from notes where expires_at < now()'))
 */
export async function forEachTenant(db: Db, fn: (tenantId: string, tx: Queryable) => Promise<void>, options: { signal?: AbortSignal; pageSize?: number } = {}): Promise<number> {
  const pageSize = options.pageSize ?? TENANT_PAGE;
  let after = '00000000-0000-0000-0000-000000000000';
  let ran = 0;
  for (;;) {
    const { rows } = await db.query<{ id: string }>('select id::text as id from tenants where id > $1 order by id limit $2', [after, pageSize]);
    for (const { id } of rows) {
      if (options.signal?.aborted) return ran;
      await db.withTenant(id, (tx) => fn(id, tx));
      ran += 1;
    }
    const last = rows.at(-1);
    if (!last || rows.length < pageSize) return ran;
    after = last.id;
  }
}

/**
 * An owner transaction in one tenant's context (`SET LOCAL`, as withTenant sets it): the forced
 * policies then let that tenant's rows through for any owner, superuser or not.
 */
export async function asOwnerInTenant<T>(db: Db, tenantId: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  assertTenantId(tenantId);
  return db.asOwner(async (tx) => {
    await tx.query('select set_config($1, $2, true)', [TENANT_SETTING, tenantId]);
    return fn(tx);
  });
}

/**
 * Whether the current role reads every row whatever the policies (superuser or BYPASSRLS), and its
 * name. Code that must see every tenant's rows at once (a backup's row counts) asks this first and
 * fails, naming the role, when it cannot: never a count of what RLS let through.
 */
export async function roleBypassesRls(tx: Queryable): Promise<{ role: string; bypasses: boolean }> {
  const { rows } = await tx.query<{ role: string; bypasses: boolean }>('select current_user::text as role, (rolsuper or rolbypassrls) as bypasses from pg_roles where rolname = current_user');
  return { role: rows[0]?.role ?? '?', bypasses: rows[0]?.bypasses === true };
}
