/**
 * The keyring's maintenance (DATA-1): rewrapping every data key under the primary KEK (the KEK
 * rotation's step, resumable: each key is rewrapped in its own transaction under a row lock),
 * checking at start that the KEKs open this database's data keys, and `keys status` counts.
 */
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { DekCache } from './dek-cache.ts';
import type { KekAccess } from './kek-access.ts';
import { dekAad, INVALIDATE_CHANNEL, NO_SUBJECT, PLATFORM_TENANT_ID, type DekRow, type KeyStatus } from './types.ts';

export interface MaintenanceDeps {
  db: Db;
  kv: Kv;
  kek: KekAccess;
  cache: DekCache;
  minDecrypt: number;
}

async function tenantIds(db: Db): Promise<string[]> {
  const r = await db.query<{ id: string }>('select id from tenants order by id');
  return r.rows.map((row) => row.id);
}

export function createMaintenance(deps: MaintenanceDeps) {
  const { db, kv, kek, cache } = deps;

  async function rewrapAll(opts: { dryRun?: boolean; onProgress?: (done: number, total: number) => void } = {}): Promise<number> {
    const primary = kek.primary();
    const stale: { tenantId: string; id: string }[] = [];
    for (const tenantId of await tenantIds(db)) {
      const r = await db.withTenant(tenantId, (tx) =>
        tx.query<{ id: string }>("select id from data_keys where state <> 'destroyed' and kek_version <> $1 order by id", [primary]),
      );
      for (const row of r.rows) stale.push({ tenantId, id: row.id });
    }
    opts.onProgress?.(0, stale.length);
    if (opts.dryRun) return stale.length;
    let done = 0;
    for (const { tenantId, id } of stale) {
      await db.withTenant(tenantId, async (tx) => {
        // Row lock: a concurrent rewrap of the same key waits, then sees it already done.
        const r = await tx.query<DekRow>('select id, tenant_id, subject_id, kek_version, wrapped, state, reserved_uses from data_keys where id = $1 for update', [id]);
        const row = r.rows[0];
        if (!row || row.state === 'destroyed' || row.wrapped === null || row.kek_version === primary) return;
        const subject = row.subject_id ?? NO_SUBJECT;
        const key = await kek.unwrap(row.kek_version, row.wrapped, dekAad(row.id, row.tenant_id, subject, row.kek_version));
        const wrapped = await kek.wrap(primary, key, dekAad(row.id, row.tenant_id, subject, primary));
        key.fill(0);
        await tx.query('update data_keys set wrapped = $2, kek_version = $3 where id = $1', [id, wrapped, primary]);
      });
      done++;
      opts.onProgress?.(done, stale.length);
    }
    if (done > 0) {
      cache.clearKeys();
      await kv.publish(INVALIDATE_CHANNEL, '*');
    }
    return done;
  }

  async function verifyKeks(): Promise<number> {
    const rows = await db.withTenant(PLATFORM_TENANT_ID, (tx) =>
      tx.query<DekRow>(
        "select distinct on (kek_version) id, tenant_id, subject_id, kek_version, wrapped, state, reserved_uses from data_keys where state <> 'destroyed' and wrapped is not null order by kek_version, id",
      ),
    );
    for (const row of rows.rows) {
      const key = await kek.unwrap(row.kek_version, row.wrapped as string, dekAad(row.id, row.tenant_id, row.subject_id ?? NO_SUBJECT, row.kek_version));
      key.fill(0);
    }
    return rows.rows.length;
  }

  async function status(): Promise<KeyStatus> {
    // An HSM is asked what it holds now (a version made or retired by the CLI or another node).
    if (kek.remote?.refresh) await kek.reload();
    const counts = { active: 0, retired: 0, destroyed: 0, tenants: 0 };
    const byKek = new Map<number, number>();
    for (const tenantId of await tenantIds(db)) {
      const r = await db.withTenant(tenantId, (tx) =>
        tx.query<{ state: DekRow['state']; kek_version: number; n: string }>('select state, kek_version, count(*) as n from data_keys group by state, kek_version'),
      );
      if (r.rows.length > 0) counts.tenants++;
      for (const row of r.rows) {
        counts[row.state] += Number(row.n);
        if (row.state !== 'destroyed') byKek.set(row.kek_version, (byKek.get(row.kek_version) ?? 0) + Number(row.n));
      }
    }
    const primary = kek.primary();
    return {
      keks: kek.versions().map((version) => ({ version, primary: version === primary, wrapsDeks: byKek.get(version) ?? 0, location: kek.location(version) })),
      deks: counts,
      minDecryptKekVersion: deps.minDecrypt,
    };
  }

  return { rewrapAll, verifyKeks, status };
}
