/**
 * The keyring (DATA-1..3): key-encryption keys from a KekSource, one data key (DEK) per tenant
 * and per user's personal data, stored only wrapped, a short-lived cache of unwrapped DEKs
 * evicted on every node through kv pub/sub, crypto-shredding, and key rotation.
 *
 * Storage goes through withTenant, so row-level security keeps each tenant's keys to itself.
 *
 * size-exception: createKeyring is one factory closure (data keys, cache and eviction, shredding,
 * rotation) of small functions over shared services; split by concern is pending (issue 17); no
 * measured reason to keep it whole.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { KEY_BYTES } from '../crypto/aead.ts';
import { decodeEnvelope, openWithKey, sealWithKey, unwrapKey, wrapKey, type SealContext } from '../crypto/envelope.ts';
import { CryptoError } from '../crypto/errors.ts';
import type { Kek, KekSource } from '../crypto/kek-source.ts';
import type { RemoteKekSource } from '../crypto/kms-kek.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';

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

/** The platform's own tenant id: its DEK seals platform secrets (signing keys). */
export const PLATFORM_TENANT_ID = '00000000-0000-4000-8000-000000000000';
const NO_SUBJECT = '';
const INVALIDATE_CHANNEL = 'keyring:invalidate';

/** Whose key seals a value: a tenant, or one user's personal data within a tenant. */
export interface KeyScope {
  tenantId: string;
  subjectId?: string;
}

/** Where a sealed value lives; the ciphertext is bound to it. */
export interface SealRef {
  table: string;
  column: string;
  rowId: string;
}

export interface KeyringOptions {
  db: Db;
  kv: Kv;
  /** Local KEK bytes (env, file), or KEKs that stay in a KMS, which wraps and unwraps data keys itself. */
  source: KekSource | RemoteKekSource;
  logger?: Logger;
  minDecryptKekVersion?: number;
  dekMaxUses?: number;
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
  now?: () => number;
}

interface DekRow {
  id: string;
  tenant_id: string;
  subject_id: string | null;
  kek_version: number;
  wrapped: string | null;
  state: 'active' | 'retired' | 'destroyed';
  reserved_uses: string | number;
}

interface CachedDek {
  id: string;
  tenantId: string;
  subjectId: string;
  key: Buffer;
  kekVersion: number;
  expiresAt: number;
}

/** Seals this node may still make with a DEK before asking the database for more. */
interface Reservation {
  remaining: number;
}

export interface KeyStatus {
  /** `location`: where the KEK lives (the source's name, or the KMS key id). */
  keks: { version: number; primary: boolean; wrapsDeks: number; location: string }[];
  deks: { active: number; retired: number; destroyed: number; tenants: number };
  minDecryptKekVersion: number;
}

export interface Keyring {
  /**
   * Seals plaintext for a tenant (or a user's personal data), bound to its table, column and row.
   * @example const v = await keyring.seal({ tenantId }, { table: 'providers', column: 'api_key', rowId }, secret)
   */
  seal(scope: KeyScope, ref: SealRef, plaintext: Buffer | string): Promise<string>;
  /** Opens a sealed value; throws CryptoError (KEY_DESTROYED, DECRYPT_FAILED, ...) and never returns partial plaintext. */
  open(scope: KeyScope, ref: SealRef, sealed: string): Promise<Buffer>;
  /** Crypto-shredding: destroys the tenant's DEKs (all of them, or one subject's). Returns how many. */
  destroyKeys(scope: KeyScope): Promise<number>;
  /** The active DEK id of a scope, creating it when missing. */
  activeDekId(scope: KeyScope): Promise<string>;
  /** Makes a new active DEK for the scope (the old one stays readable, retired). */
  replaceActiveDek(scope: KeyScope): Promise<{ from: string | null; to: string }>;
  /** Rewraps every DEK under the primary KEK; returns how many were rewrapped. */
  rewrapAll(options?: { dryRun?: boolean; onProgress?: (done: number, total: number) => void }): Promise<number>;
  /** Reloads the KEKs from the source (after a rotation on another node). */
  reloadKeks(): Promise<void>;
  primaryKekVersion(): number;
  status(): Promise<KeyStatus>;
  /**
   * Unwraps one platform data key per KEK version in use (nothing cached), so a node started with
   * the key-encryption keys of another database fails at once instead of at its first sealed
   * value. Throws CryptoError (DECRYPT_FAILED, KEK_MISSING); returns how many keys it unwrapped.
   */
  verifyKeks(): Promise<number>;
  /** Evicts cached DEKs of a tenant here and on every node. */
  invalidate(tenantId: string): Promise<void>;
  /** False while a remote KEK source (KMS) is not answering (readiness); always true for local KEKs. */
  kekHealthy(): boolean;
  /** Whether the KEKs live in a KMS (the node never holds them). */
  remoteKeks(): boolean;
  close(): Promise<void>;
}

function isRemote(source: KekSource | RemoteKekSource): source is RemoteKekSource {
  return 'unwrap' in source;
}

function dekAad(id: string, tenantId: string, subjectId: string, kekVersion: number): Buffer {
  return Buffer.from(`gatehouse.dek.v1\n${id}\n${tenantId}\n${subjectId}\n${kekVersion}`, 'utf8');
}

function subjectOf(scope: KeyScope): string {
  return scope.subjectId ?? NO_SUBJECT;
}

/**
 * Opens the keyring: loads the KEKs, subscribes to cache evictions.
 * @example const keyring = await createKeyring({ db, kv, source: createFileKekSource(path) });
 */
export async function createKeyring(options: KeyringOptions): Promise<Keyring> {
  const { db, kv, source } = options;
  const now = options.now ?? Date.now;
  const minDecrypt = options.minDecryptKekVersion ?? 1;
  const maxUses = options.dekMaxUses ?? 2 ** 31;
  const reserveBlock = Math.max(1, Math.min(1_000_000, Math.floor(maxUses / 64)));
  const ttl = options.cacheTtlMs ?? 300_000;
  const maxEntries = options.cacheMaxEntries ?? 1000;

  let keks = new Map<number, Buffer>();
  let primary = 0;
  const setKeks = (list: Kek[]): void => {
    if (list.length === 0) throw new CryptoError('KEYRING_INVALID', 'the keyring holds no key-encryption key');
    keks = new Map(list.map((k) => [k.version, k.key]));
    primary = Math.max(...list.map((k) => k.version));
  };
  const remote = isRemote(source) ? source : null;
  if (remote) primary = Math.max(...remote.versions());
  else setKeks(await (source as KekSource).load());

  // Unwrapped DEKs by id, in insertion order so the oldest is evicted first.
  const cache = new Map<string, CachedDek>();
  // The active DEK id per tenant+subject, with this node's unused reservation of seals.
  const active = new Map<string, { id: string; reservation: Reservation }>();
  // Creating a DEK for one scope happens once per node at a time.
  const creating = new Map<string, Promise<string>>();

  const evictTenant = (tenantId: string): void => {
    for (const [id, entry] of cache) if (entry.tenantId === tenantId) cache.delete(id);
    for (const key of active.keys()) if (key.startsWith(`${tenantId}|`)) active.delete(key);
  };
  const unsubscribe = await kv.subscribe(INVALIDATE_CHANNEL, (message) => {
    if (message === '*') {
      cache.clear();
      active.clear();
      void reloadKeks().catch((err: unknown) => options.logger?.error({ err }, 'keyring: reloading KEKs failed'));
    } else evictTenant(message);
  });

  async function reloadKeks(): Promise<void> {
    // A remote source's versions are its configuration: a new one comes with a restart.
    if (!remote) setKeks(await (source as KekSource).load());
  }

  /** Unwraps a DEK: with the KEK bytes here, or by asking the KMS (which never gives them out). */
  async function unwrapDek(version: number, wrapped: string, aad: Buffer): Promise<Buffer> {
    if (!remote) return unwrapKey(await kekFor(version), wrapped, aad);
    if (!remote.versions().includes(version)) throw new CryptoError('KEK_MISSING', `key-encryption key version ${version} is not configured`);
    return remote.unwrap(version, wrapped, aad);
  }

  async function wrapDek(version: number, key: Buffer, aad: Buffer): Promise<string> {
    return remote ? remote.wrap(version, key, aad) : wrapKey(await kekFor(version), key, aad);
  }

  async function kekFor(version: number): Promise<Buffer> {
    let kek = keks.get(version);
    if (!kek) {
      // Another node may have added a version since this one loaded the keys.
      await reloadKeks();
      kek = keks.get(version);
    }
    if (!kek) throw new CryptoError('KEK_MISSING', `key-encryption key version ${version} is not in the keyring`);
    return kek;
  }

  function remember(entry: CachedDek): void {
    cache.delete(entry.id);
    cache.set(entry.id, entry);
    while (cache.size > maxEntries) {
      const oldest = cache.keys().next().value;
      if (oldest === undefined) break;
      cache.delete(oldest);
    }
  }

  async function unwrapRow(row: DekRow): Promise<CachedDek> {
    if (row.state === 'destroyed' || row.wrapped === null) throw new CryptoError('KEY_DESTROYED', 'the data key was destroyed');
    const subject = row.subject_id ?? NO_SUBJECT;
    const key = await unwrapDek(row.kek_version, row.wrapped, dekAad(row.id, row.tenant_id, subject, row.kek_version));
    const entry = { id: row.id, tenantId: row.tenant_id, subjectId: subject, key, kekVersion: row.kek_version, expiresAt: now() + ttl };
    remember(entry);
    return entry;
  }

  async function loadDek(scope: KeyScope, id: string): Promise<CachedDek> {
    const cached = cache.get(id);
    if (cached && cached.expiresAt > now() && cached.tenantId === scope.tenantId) {
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

  async function insertDek(tx: Queryable, scope: KeyScope): Promise<string> {
    const id = randomUUID();
    const aad = dekAad(id, scope.tenantId, subjectOf(scope), primary);
    // A KMS makes the data key itself (GenerateDataKey); locally it is random bytes wrapped here.
    const made = remote ? await remote.generateDek(aad) : null;
    const key = made ? made.key : randomBytes(KEY_BYTES);
    const wrapped = made ? made.wrapped : wrapKey(await kekFor(primary), key, aad);
    await tx.query('insert into data_keys (id, tenant_id, subject_id, kek_version, wrapped, state) values ($1, $2, $3, $4, $5, $6)', [
      id,
      scope.tenantId,
      scope.subjectId ?? null,
      primary,
      wrapped,
      'active',
    ]);
    key.fill(0);
    return id;
  }

  async function findOrCreateActive(scope: KeyScope): Promise<string> {
    return db.withTenant(scope.tenantId, async (tx) => {
      const found = await tx.query<{ id: string }>(
        "select id from data_keys where state = 'active' and subject_id is not distinct from $1",
        [scope.subjectId ?? null],
      );
      if (found.rows[0]) return found.rows[0].id;
      return insertDek(tx, scope);
    });
  }

  async function activeDekId(scope: KeyScope): Promise<string> {
    const slot = `${scope.tenantId}|${subjectOf(scope)}`;
    const known = active.get(slot);
    if (known) return known.id;
    let pending = creating.get(slot);
    if (!pending) {
      pending = (async () => {
        try {
          return await findOrCreateActive(scope);
        } catch (err) {
          // Another node created it first (unique active index): read theirs.
          if ((err as { code?: string }).code === '23505') return findOrCreateActive(scope);
          throw err;
        }
      })();
      creating.set(slot, pending);
    }
    try {
      const id = await pending;
      if (!active.has(slot)) active.set(slot, { id, reservation: { remaining: 0 } });
      return id;
    } finally {
      creating.delete(slot);
    }
  }

  /** Takes one seal from this node's reservation, reserving a block (or retiring the key) as needed. */
  async function takeUse(scope: KeyScope, id: string): Promise<boolean> {
    const slot = `${scope.tenantId}|${subjectOf(scope)}`;
    const entry = active.get(slot);
    if (!entry || entry.id !== id) return true;
    if (entry.reservation.remaining > 0) {
      entry.reservation.remaining--;
      return true;
    }
    const reserved = await db.withTenant(scope.tenantId, async (tx) => {
      const r = await tx.query<{ reserved_uses: string }>(
        "update data_keys set reserved_uses = reserved_uses + $2 where id = $1 and state = 'active' returning reserved_uses",
        [id, reserveBlock],
      );
      return r.rows[0] ? Number(r.rows[0].reserved_uses) : null;
    });
    if (reserved === null || reserved > maxUses) {
      // Used up (or retired elsewhere): retire it and let the next seal create a fresh key.
      await db.withTenant(scope.tenantId, (tx) =>
        tx.query("update data_keys set state = 'retired', retired_at = now() where id = $1 and state = 'active'", [id]),
      );
      active.delete(slot);
      return false;
    }
    entry.reservation.remaining = reserveBlock - 1;
    return true;
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

  async function invalidate(tenantId: string): Promise<void> {
    evictTenant(tenantId);
    await kv.publish(INVALIDATE_CHANNEL, tenantId);
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
    await invalidate(scope.tenantId);
    return count;
  }

  async function replaceActiveDek(scope: KeyScope): Promise<{ from: string | null; to: string }> {
    const result = await db.withTenant(scope.tenantId, async (tx) => {
      const old = await tx.query<{ id: string }>(
        "update data_keys set state = 'retired', retired_at = now() where state = 'active' and subject_id is not distinct from $1 returning id",
        [scope.subjectId ?? null],
      );
      const to = await insertDek(tx, scope);
      return { from: old.rows[0]?.id ?? null, to };
    });
    await invalidate(scope.tenantId);
    return result;
  }

  async function tenantIds(): Promise<string[]> {
    const r = await db.query<{ id: string }>('select id from tenants order by id');
    return r.rows.map((row) => row.id);
  }

  async function rewrapAll(opts: { dryRun?: boolean; onProgress?: (done: number, total: number) => void } = {}): Promise<number> {
    const tenants = await tenantIds();
    const stale: { tenantId: string; id: string }[] = [];
    for (const tenantId of tenants) {
      const r = await db.withTenant(tenantId, (tx) =>
        tx.query<{ id: string }>("select id from data_keys where state <> 'destroyed' and kek_version <> $1 order by id", [primary]),
      );
      for (const row of r.rows) stale.push({ tenantId, id: row.id });
    }
    if (opts.dryRun) {
      opts.onProgress?.(0, stale.length);
      return stale.length;
    }
    let done = 0;
    opts.onProgress?.(0, stale.length);
    for (const { tenantId, id } of stale) {
      await db.withTenant(tenantId, async (tx) => {
        // Row lock: a concurrent rewrap of the same key waits, then sees it already done.
        const r = await tx.query<DekRow>('select id, tenant_id, subject_id, kek_version, wrapped, state, reserved_uses from data_keys where id = $1 for update', [id]);
        const row = r.rows[0];
        if (!row || row.state === 'destroyed' || row.wrapped === null || row.kek_version === primary) return;
        const subject = row.subject_id ?? NO_SUBJECT;
        const key = await unwrapDek(row.kek_version, row.wrapped, dekAad(row.id, row.tenant_id, subject, row.kek_version));
        const wrapped = await wrapDek(primary, key, dekAad(row.id, row.tenant_id, subject, primary));
        key.fill(0);
        await tx.query('update data_keys set wrapped = $2, kek_version = $3 where id = $1', [id, wrapped, primary]);
      });
      done++;
      opts.onProgress?.(done, stale.length);
    }
    if (done > 0) {
      cache.clear();
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
      const key = await unwrapDek(row.kek_version, row.wrapped as string, dekAad(row.id, row.tenant_id, row.subject_id ?? NO_SUBJECT, row.kek_version));
      key.fill(0);
    }
    return rows.rows.length;
  }

  async function status(): Promise<KeyStatus> {
    const counts = { active: 0, retired: 0, destroyed: 0, tenants: 0 };
    const byKek = new Map<number, number>();
    for (const tenantId of await tenantIds()) {
      const r = await db.withTenant(tenantId, (tx) =>
        tx.query<{ state: DekRow['state']; kek_version: number; n: string }>(
          'select state, kek_version, count(*) as n from data_keys group by state, kek_version',
        ),
      );
      if (r.rows.length > 0) counts.tenants++;
      for (const row of r.rows) {
        counts[row.state] += Number(row.n);
        if (row.state !== 'destroyed') byKek.set(row.kek_version, (byKek.get(row.kek_version) ?? 0) + Number(row.n));
      }
    }
    return {
      keks: (remote ? remote.versions() : [...keks.keys()])
        .sort((a, b) => a - b)
        .map((version) => ({ version, primary: version === primary, wrapsDeks: byKek.get(version) ?? 0, location: remote ? `${remote.name} ${remote.locationOf(version) ?? '?'}` : source.name })),
      deks: counts,
      minDecryptKekVersion: minDecrypt,
    };
  }

  return {
    seal,
    open,
    destroyKeys,
    activeDekId,
    replaceActiveDek,
    rewrapAll,
    reloadKeks,
    primaryKekVersion: () => primary,
    status,
    verifyKeks,
    invalidate,
    kekHealthy: () => remote?.healthy() ?? true,
    remoteKeks: () => remote !== null,
    close: async () => {
      await unsubscribe();
      for (const entry of cache.values()) entry.key.fill(0);
      cache.clear();
      active.clear();
    },
  };
}
