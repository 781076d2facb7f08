/**
 * The active data key of each scope (DATA-2): found or made once per node at a time (another
 * node making it first is read back), and the usage bound: this node reserves seals in blocks in
 * the database and retires a key that reached keyring.dekMaxUses, so the next seal makes a new one.
 */
import { randomUUID } from 'node:crypto';
import { CryptoError } from '../crypto/errors.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import type { DekCache } from './dek-cache.ts';
import type { KekAccess } from './kek-access.ts';
import { dekAad, subjectOf, type KeyScope } from './types.ts';

export interface ActiveDeks {
  activeDekId(scope: KeyScope): Promise<string>;
  /** False when the key was used up (now retired): the caller asks for the active key again. */
  takeUse(scope: KeyScope, id: string): Promise<boolean>;
  /** Inserts a new active data key for the scope within `tx`; returns its id. */
  insertDek(tx: Queryable, scope: KeyScope): Promise<string>;
}

export function createActiveDeks(deps: { db: Pick<Db, 'withTenant'>; kek: KekAccess; cache: DekCache; maxUses: number }): ActiveDeks {
  const { db, kek } = deps;
  const active = deps.cache.active;
  const maxUses = deps.maxUses;
  const reserveBlock = Math.max(1, Math.min(1_000_000, Math.floor(maxUses / 64)));
  // Creating a DEK for one scope happens once per node at a time.
  const creating = new Map<string, Promise<string>>();

  async function insertDek(tx: Queryable, scope: KeyScope): Promise<string> {
    const id = randomUUID();
    const primary = kek.primary();
    const made = await kek.generate(dekAad(id, scope.tenantId, subjectOf(scope), primary));
    made.key.fill(0);
    if (made.version !== primary) throw new CryptoError('KEYRING_INVALID', `the data key was wrapped under version ${made.version}, not the primary ${primary}`);
    await tx.query('insert into data_keys (id, tenant_id, subject_id, kek_version, wrapped, state) values ($1, $2, $3, $4, $5, $6)', [
      id,
      scope.tenantId,
      scope.subjectId ?? null,
      primary,
      made.wrapped,
      'active',
    ]);
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

  return { activeDekId, takeUse, insertDek };
}
