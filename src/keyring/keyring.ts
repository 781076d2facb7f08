/**
 * The keyring (DATA-1..3): key-encryption keys from a KekSource (or kept in a KMS or an HSM), one
 * data key (DEK) per tenant and per user's personal data, stored only wrapped, a short-lived cache
 * of unwrapped DEKs evicted on every node through kv pub/sub, crypto-shredding, and key rotation.
 * By concern: types.ts (the surface), kek-access.ts (KEKs), dek-cache.ts (the cache),
 * maintenance.ts (rewrap, start check, status); this file seals, opens, makes and shreds DEKs.
 *
 * Storage goes through withTenant, so row-level security keeps each tenant's keys to itself.
 */
import { randomUUID } from 'node:crypto';
import { decodeEnvelope, openWithKey, sealWithKey, type SealContext } from '../crypto/envelope.ts';
import { CryptoError } from '../crypto/errors.ts';
import type { Db } from '../store/db-types.ts';
import { createDekCache, type DekCache } from './dek-cache.ts';
import { createKekAccess, type KekAccess } from './kek-access.ts';
import { createActiveDeks } from './active-deks.ts';
import { createMaintenance } from './maintenance.ts';
import {
  dekAad,
  INVALIDATE_CHANNEL,
  NO_SUBJECT,
  PLATFORM_TENANT_ID,
  subjectOf,
  type CachedDek,
  type DekRow,
  type Keyring,
  type KeyringOptions,
  type KeyScope,
  type SealRef,
  type ShreddingProbe,
} from './types.ts';

export { PLATFORM_TENANT_ID, type KeyScope, type Keyring, type KeyringOptions, type KeyStatus, type SealRef, type ShreddingProbe } from './types.ts';

/*
 * Crypto-shredding and copies of the database. Gatehouse's own backups (src/backup) never hold a
 * KEK, and a tenant shredded before a backup stays unreadable after its restore. Shredding erases
 * a data key in data_keys of the live database; a copy taken before (a dump, a copy of the data
 * directory, a PostgreSQL base backup, replica or WAL archive) still holds the wrapped key, which
 * the KEK still unwraps, so shredding reaches such a copy only when the copy itself is destroyed
 * (Gatehouse's backups: when `backup prune` removes them, after backup.retentionDays).
 * A copy without data_keys is no backup either: its sealed values cannot be opened and a node on
 * it does not start (KEY_UNKNOWN).
 */

/** What seals, opens and shreds data keys, over a storage (the node's, or one transaction's for the shredding probe). */
interface DekOpsDeps {
  db: Pick<Db, 'withTenant'>;
  kek: KekAccess;
  cache: DekCache;
  maxUses: number;
  minDecrypt: number;
  ttl: number;
  now: () => number;
  /** Evicts the tenant's cached DEKs (here and, for the node's keyring, on every node). */
  invalidate: (tenantId: string) => Promise<void>;
}

function createDekOps(deps: DekOpsDeps) {
  const { db, kek, cache, minDecrypt, ttl, now } = deps;
  const { activeDekId, takeUse, insertDek } = createActiveDeks({ db, kek, cache, maxUses: deps.maxUses });

  async function unwrapRow(row: DekRow): Promise<CachedDek> {
    if (row.state === 'destroyed' || row.wrapped === null) throw new CryptoError('KEY_DESTROYED', 'the data key was destroyed');
    const subject = row.subject_id ?? NO_SUBJECT;
    const key = await kek.unwrap(row.kek_version, row.wrapped, dekAad(row.id, row.tenant_id, subject, row.kek_version));
    const entry = { id: row.id, tenantId: row.tenant_id, subjectId: subject, key, kekVersion: row.kek_version, expiresAt: now() + ttl };
    cache.remember(entry);
    return entry;
  }

  async function loadDek(scope: KeyScope, id: string): Promise<CachedDek> {
    const cached = cache.fresh(id);
    if (cached && cached.tenantId === scope.tenantId) {
      if (cached.subjectId !== subjectOf(scope)) throw new CryptoError('KEY_UNKNOWN', 'the data key belongs to another subject');
      return cached;
    }
    const row = await db.withTenant(scope.tenantId, async (tx) => {
      const r = await tx.query<DekRow>('select id, tenant_id, subject_id, kek_version, wrapped, state, reserved_uses from data_keys where id = $1', [id]);
      return r.rows[0];
    });
    // Row-level security hides another tenant's key: a value moved across tenants is unknown here.
    if (!row) throw new CryptoError('KEY_UNKNOWN', 'no data key with this id in this tenant');
    if ((row.subject_id ?? NO_SUBJECT) !== subjectOf(scope)) throw new CryptoError('KEY_UNKNOWN', 'the data key belongs to another subject');
    return unwrapRow(row);
  }

  async function seal(scope: KeyScope, ref: SealRef, plaintext: Buffer | string): Promise<string> {
    const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    for (let attempt = 0; attempt < 3; attempt++) {
      const id = await activeDekId(scope);
      if (!(await takeUse(scope, id))) continue;
      const dek = await loadDek(scope, id);
      const ctx: SealContext = { tenantId: scope.tenantId, ...(scope.subjectId ? { subjectId: scope.subjectId } : {}), ...ref };
      return sealWithKey(dek.key, { kekVersion: dek.kekVersion, dekId: id }, ctx, data);
    }
    throw new CryptoError('KEYRING_INVALID', 'could not obtain an active data key');
  }

  async function open(scope: KeyScope, ref: SealRef, sealed: string): Promise<Buffer> {
    const { header } = decodeEnvelope(sealed);
    if (header.kekVersion < minDecrypt) {
      throw new CryptoError('KEY_RETIRED', `sealed under key-encryption key version ${header.kekVersion}, below the minimum ${minDecrypt}`);
    }
    const dek = await loadDek(scope, header.dekId);
    const ctx: SealContext = { tenantId: scope.tenantId, ...(scope.subjectId ? { subjectId: scope.subjectId } : {}), ...ref };
    return openWithKey(dek.key, sealed, ctx);
  }

  async function destroyKeys(scope: KeyScope): Promise<number> {
    const count = await db.withTenant(scope.tenantId, async (tx) => {
      const r = scope.subjectId
        ? await tx.query(
            "update data_keys set state = 'destroyed', wrapped = null, destroyed_at = now() where subject_id = $1 and state <> 'destroyed' returning id",
            [scope.subjectId],
          )
        : await tx.query("update data_keys set state = 'destroyed', wrapped = null, destroyed_at = now() where state <> 'destroyed' returning id");
      return r.rowCount;
    });
    await deps.invalidate(scope.tenantId);
    return count;
  }

  return { activeDekId, insertDek, seal, open, destroyKeys };
}

/** Where the shredding probe's canary is bound (no such table exists). */
const PROBE_REF: SealRef = { table: 'keyring_shredding_probe', column: 'value', rowId: 'canary' };

/** Ends the probe's transaction by rolling it back, carrying what the probe saw. */
class ProbeRolledBack extends Error {
  readonly result: ShreddingProbe;
  constructor(result: ShreddingProbe) {
    super('shredding probe rolled back');
    this.result = result;
  }
}

/**
 * Opens the keyring: loads the KEKs, subscribes to cache evictions.
 * @example const keyring = await createKeyring({ db, kv, source: createFileKekSource(path) });
 */
export async function createKeyring(options: KeyringOptions): Promise<Keyring> {
  const { db, kv } = options;
  const now = options.now ?? Date.now;
  const minDecrypt = options.minDecryptKekVersion ?? 1;
  const maxUses = options.dekMaxUses ?? 2 ** 31;
  const ttl = options.cacheTtlMs ?? 300_000;

  const kek = await createKekAccess(options.source);
  const cache = createDekCache({ maxEntries: options.cacheMaxEntries ?? 1000, now });
  const maintenance = createMaintenance({ db, kv, kek, cache, minDecrypt });

  const unsubscribe = await kv.subscribe(INVALIDATE_CHANNEL, (message) => {
    if (message === '*') {
      cache.clear();
      void kek.reload().catch((err: unknown) => options.logger?.error({ err }, 'keyring: reloading KEKs failed'));
    } else cache.evictTenant(message);
  });

  async function invalidate(tenantId: string): Promise<void> {
    cache.evictTenant(tenantId);
    await kv.publish(INVALIDATE_CHANNEL, tenantId);
  }

  const ops = createDekOps({ db, kek, cache, maxUses, minDecrypt, ttl, now, invalidate });

  async function replaceActiveDek(scope: KeyScope): Promise<{ from: string | null; to: string }> {
    const result = await db.withTenant(scope.tenantId, async (tx) => {
      const old = await tx.query<{ id: string }>(
        "update data_keys set state = 'retired', retired_at = now() where state = 'active' and subject_id is not distinct from $1 returning id",
        [scope.subjectId ?? null],
      );
      const to = await ops.insertDek(tx, scope);
      return { from: old.rows[0]?.id ?? null, to };
    });
    await invalidate(scope.tenantId);
    return result;
  }

  /**
   * The same seal, shred and open as above, on a canary subject of the platform, inside one
   * transaction that is rolled back: nothing of it stays (no tombstone per probe), and this node's
   * cache never holds its key (the probe has a cache of its own, evicted by its destroy).
   */
  async function probeShredding(): Promise<ShreddingProbe> {
    const scope = { tenantId: PLATFORM_TENANT_ID, subjectId: randomUUID() };
    try {
      await db.withTenant(PLATFORM_TENANT_ID, async (tx) => {
        const inTx: Pick<Db, 'withTenant'> = {
          withTenant: (tenantId, fn) => (tenantId === PLATFORM_TENANT_ID ? fn(tx) : Promise.reject(new Error('the shredding probe stays in the platform tenant'))),
        };
        const probeCache = createDekCache({ maxEntries: 4, now });
        const probe = createDekOps({ db: inTx, kek, cache: probeCache, maxUses, minDecrypt, ttl, now, invalidate: async (tenantId) => probeCache.evictTenant(tenantId) });
        const sealed = await probe.seal(scope, PROBE_REF, 'trust-report canary');
        const destroyed = await probe.destroyKeys(scope);
        let opened: string;
        try {
          await probe.open(scope, PROBE_REF, sealed);
          opened = 'still opened';
        } catch (err) {
          opened = err instanceof CryptoError ? err.code : 'refused';
        }
        probeCache.wipe();
        throw new ProbeRolledBack({ destroyed, opened });
      });
    } catch (err) {
      if (err instanceof ProbeRolledBack) return err.result;
      throw err;
    }
    throw new Error('the shredding probe ended without a result');
  }

  return {
    seal: ops.seal,
    open: ops.open,
    destroyKeys: ops.destroyKeys,
    activeDekId: ops.activeDekId,
    replaceActiveDek,
    probeShredding,
    rewrapAll: maintenance.rewrapAll,
    reloadKeks: kek.reload,
    primaryKekVersion: () => kek.primary(),
    status: maintenance.status,
    verifyKeks: maintenance.verifyKeks,
    invalidate,
    kekHealthy: () => kek.healthy(),
    remoteKeks: () => (kek.remote === null ? null : kek.remote.name === 'pkcs11' ? 'hsm' : 'kms'),
    close: async () => {
      await unsubscribe();
      cache.wipe();
      await kek.remote?.close?.();
    },
  };
}
