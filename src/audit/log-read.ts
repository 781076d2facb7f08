/**
 * Reading the audit log (AUDIT-1, AUDIT-2): events (personal fields opened, null once shredded),
 * signed checkpoints, inclusion and consistency proofs. Each read first signs a checkpoint when
 * events are not yet covered by one.
 */
import { CryptoError } from '../crypto/errors.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { Db } from '../store/db-types.ts';
import type { Checkpoint } from './checkpoint.ts';
import { b64, readHead, subtreeSource } from './log-tree.ts';
import type { AuditEventView } from './log-types.ts';
import { consistencyProof, inclusionProof } from './merkle.ts';

export function createAuditReader(deps: { db: Db; keyring: Keyring; checkpointIfBehind: (tenantId: string, force?: boolean) => Promise<void> }) {
  const { db, keyring, checkpointIfBehind } = deps;

  async function openField(tenantId: string, id: string, column: 'ip' | 'ua', sealed: string | null): Promise<string | null> {
    if (!sealed) return null;
    try {
      return (await keyring.open({ tenantId }, { table: 'audit_events', column, rowId: id }, sealed)).toString('utf8');
    } catch (err) {
      // Shredded: the event stays (its leaf covers the ciphertext), the field reads as null.
      if (err instanceof CryptoError) return null;
      throw err;
    }
  }

  async function size(tenantId: string): Promise<{ size: number; prunedUpto: number }> {
    const head = await db.withTenant(tenantId, (tx) => readHead(tx, tenantId, false));
    return { size: head.size, prunedUpto: head.prunedUpto };
  }

  /** Events, newest first, filtered by actor, action and time; `cursor` is the last seq seen. */
  async function list(tenantId: string, q: { actor?: string; action?: string; from?: Date; to?: Date; cursor?: number; limit: number }) {
    await checkpointIfBehind(tenantId);
    const { rows } = await db.withTenant(tenantId, (tx) =>
      tx.query<{ seq: number; body: string }>(
        `select seq::int as seq, body from audit_events
          where ($1::text is null or actor_id = $1) and ($2::text is null or action = $2)
            and ($3::timestamptz is null or time >= $3) and ($4::timestamptz is null or time < $4)
            and ($5::bigint is null or seq < $5)
          order by seq desc limit $6`,
        [q.actor ?? null, q.action ?? null, q.from ?? null, q.to ?? null, q.cursor ?? null, q.limit],
      ),
    );
    const events: AuditEventView[] = [];
    for (const r of rows) {
      const e = JSON.parse(r.body) as AuditEventView;
      events.push({ ...e, ip: await openField(tenantId, e.id, 'ip', e.ip), ua: await openField(tenantId, e.id, 'ua', e.ua) });
    }
    return { events, nextCursor: rows.length === q.limit ? (rows[rows.length - 1]?.seq ?? null) : null };
  }

  async function checkpoints(tenantId: string, q: { cursor?: number; limit: number }) {
    await checkpointIfBehind(tenantId);
    const { rows } = await db.withTenant(tenantId, (tx) =>
      tx.query<{ size: number; body: string; signature: string }>(
        'select size::int as size, body, signature from audit_checkpoints where ($1::bigint is null or size < $1) order by size desc limit $2',
        [q.cursor ?? null, q.limit],
      ),
    );
    return {
      checkpoints: rows.map((r) => ({ checkpoint: JSON.parse(r.body) as Checkpoint, signature: r.signature })),
      nextCursor: rows.length === q.limit ? (rows[rows.length - 1]?.size ?? null) : null,
    };
  }

  /** Inclusion proof of event `index` in the tree of the first `size` events. Null when out of range. */
  async function inclusion(tenantId: string, index: number, treeSize: number) {
    await checkpointIfBehind(tenantId);
    return db.withTenant(tenantId, async (tx) => {
      const head = await readHead(tx, tenantId, false);
      if (!(index >= 0 && index < treeSize && treeSize <= head.size)) return null;
      const subtree = subtreeSource(tx, tenantId);
      const proof = await inclusionProof(index, treeSize, subtree);
      const cp = await tx.query<{ body: string; signature: string }>('select body, signature from audit_checkpoints where size = $1', [treeSize]);
      const c = cp.rows[0];
      return {
        index,
        size: treeSize,
        leafHash: b64(await subtree(index, index + 1)),
        proof: proof.map(b64),
        root: b64(await subtree(0, treeSize)),
        checkpoint: c ? { checkpoint: JSON.parse(c.body) as Checkpoint, signature: c.signature } : null,
      };
    });
  }

  /** Consistency proof between the trees of the first `from` and `to` events. Null when out of range. */
  async function consistency(tenantId: string, from: number, to: number) {
    await checkpointIfBehind(tenantId);
    return db.withTenant(tenantId, async (tx) => {
      const head = await readHead(tx, tenantId, false);
      if (!(from >= 1 && from <= to && to <= head.size)) return null;
      const subtree = subtreeSource(tx, tenantId);
      const proof = await consistencyProof(from, to, subtree);
      return { from, to, proof: proof.map(b64), fromRoot: b64(await subtree(0, from)), toRoot: b64(await subtree(0, to)) };
    });
  }

  return { size, list, checkpoints, inclusion, consistency };
}
