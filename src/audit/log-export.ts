/**
 * The audit log's export (AUDIT-3), streamed line by line, and retention (AUDIT-4).
 */
import type { SigningKeys } from '../keyring/signing-keys.ts';
import type { Db } from '../store/db-types.ts';
import { asOwnerInTenant } from '../store/tenant-sweep.ts';
import type { Checkpoint } from './checkpoint.ts';
import { encodeExportLine, EXPORT_FORMAT } from './export-format.ts';
import { b64, readHead, subtreeSource } from './log-tree.ts';
import type { AuditSettings } from './log-types.ts';

export function createAuditExport(deps: { db: Db; signingKeys: SigningKeys; settings: AuditSettings; now: () => number; checkpointIfBehind: (tenantId: string, force?: boolean) => Promise<void> }) {
  const { db, signingKeys, settings, now, checkpointIfBehind } = deps;

  /** The export file's lines (AUDIT-3), one at a time: memory stays flat whatever the log's length. */
  async function* exportLines(tenantId: string): AsyncGenerator<string> {
    await checkpointIfBehind(tenantId, true);
    const head = await db.withTenant(tenantId, (tx) => readHead(tx, tenantId, false));
    const total = head.size;
    yield encodeExportLine({ type: 'header', format: EXPORT_FORMAT, log: tenantId, exportedAt: new Date(now()).toISOString() });
    const kids = await db.withTenant(tenantId, (tx) => tx.query<{ kid: string }>('select distinct kid from audit_checkpoints where size <= $1 order by kid', [total]));
    const keys = await signingKeys.publicKeys(kids.rows.map((r) => r.kid));
    for (const k of keys) yield encodeExportLine({ type: 'key', kid: k.kid, jwk: k });
    let events = 0;
    let checkpoints = 0;
    const start = head.prunedUpto;
    const cps = await db.withTenant(tenantId, (tx) =>
      tx.query<{ size: number; body: string; signature: string }>('select size::int as size, body, signature from audit_checkpoints where size >= $1 and size <= $2 order by size', [start, total]),
    );
    const queue = [...cps.rows];
    const emitCheckpointsUpTo = function* (n: number): Generator<string> {
      while (queue[0] && queue[0].size <= n) {
        const c = queue.shift();
        if (!c) break;
        checkpoints += 1;
        yield encodeExportLine({ type: 'checkpoint', checkpoint: JSON.parse(c.body) as Checkpoint, signature: c.signature });
      }
    };
    if (start > 0) {
      const hashes = await db.withTenant(tenantId, async (tx) => {
        const subtree = subtreeSource(tx, tenantId);
        const out: string[] = [];
        // The frontier at `start`: one perfect subtree per set bit, largest first.
        let offset = 0;
        for (let bit = 2 ** Math.floor(Math.log2(start)); bit >= 1; bit /= 2) {
          if (start & bit) {
            out.push(b64(await subtree(offset, offset + bit)));
            offset += bit;
          }
        }
        return out;
      });
      yield encodeExportLine({ type: 'pruned', upTo: start, frontier: { size: start, hashes } });
    }
    yield* emitCheckpointsUpTo(start);
    const batch = 1000;
    for (let from = start; from < total; from += batch) {
      // Each event with the leaf hash stored for its index when the tree was built: the verifier
      // names the very event changed (in the file or in the table) when these give the signed root.
      const { rows } = await db.withTenant(tenantId, (tx) =>
        tx.query<{ seq: number; body: string; leaf: Uint8Array | null }>(
          `select e.seq::int as seq, e.body, n.hash as leaf from audit_events e
             left join audit_nodes n on n.tenant_id = e.tenant_id and n.level = 0 and n.idx = e.seq
            where e.seq >= $1 and e.seq < $2 order by e.seq`,
          [from, Math.min(from + batch, total)],
        ),
      );
      for (const r of rows) {
        events += 1;
        const event = JSON.parse(r.body) as Record<string, unknown>;
        const leaf = r.leaf === null ? undefined : Buffer.from(r.leaf).toString('base64url');
        yield encodeExportLine(leaf === undefined ? { type: 'event', index: r.seq, event } : { type: 'event', index: r.seq, event, leaf });
        yield* emitCheckpointsUpTo(r.seq + 1);
      }
    }
    yield encodeExportLine({ type: 'end', events, checkpoints });
  }

  /**
   * Every log's tenant id (`behind`: only logs with events no checkpoint covers yet), in one
   * statement whatever the number of tenants: the audit_heads_scan policy lets a transaction that
   * set gatehouse.audit_scan read every head row (sizes and hashes, no event), under any owner.
   */
  async function logs(options: { behind?: boolean } = {}): Promise<string[]> {
    const { rows } = await db.transaction(async (tx) => {
      await tx.query("select set_config('gatehouse.audit_scan', 'on', true)");
      const where = options.behind ? ' where size > 0 and last_checkpoint_size is distinct from size' : '';
      return tx.query<{ tenant_id: string }>(`select tenant_id::text as tenant_id from audit_heads${where} order by tenant_id`);
    });
    return rows.map((r) => r.tenant_id);
  }

  /**
   * Retention (AUDIT-4), as the owner (the append-only trigger lets only it delete events) in the
   * log's tenant context, which forced RLS needs for an owner that is no superuser: removes events
   * older than `retentionDays`, up to the largest checkpoint they entirely precede, so the rest
   * still verifies from that checkpoint.
   */
  async function prune(tenantId: string): Promise<{ removed: number; prunedUpto: number }> {
    const cutoff = new Date(now() - settings.retentionDays * 86_400_000);
    return asOwnerInTenant(db, tenantId, async (tx) => {
      const head = await tx.query<{ pruned_upto: number }>('select pruned_upto::int as pruned_upto from audit_heads where tenant_id = $1 for update', [tenantId]);
      const from = head.rows[0]?.pruned_upto ?? 0;
      const firstKept = await tx.query<{ seq: number | null }>('select min(seq)::int as seq from audit_events where tenant_id = $1 and time >= $2', [tenantId, cutoff]);
      const limit = firstKept.rows[0]?.seq ?? Number.MAX_SAFE_INTEGER;
      const cp = await tx.query<{ size: number | null }>('select max(size)::int as size from audit_checkpoints where tenant_id = $1 and size <= $2 and size > $3', [tenantId, limit, from]);
      const upto = cp.rows[0]?.size ?? null;
      if (upto === null) return { removed: 0, prunedUpto: from };
      await tx.query("select set_config('gatehouse.audit_prune', 'on', true)");
      const removed = await tx.query('delete from audit_events where tenant_id = $1 and seq < $2', [tenantId, upto]);
      await tx.query('update audit_heads set pruned_upto = $2 where tenant_id = $1', [tenantId, upto]);
      return { removed: removed.rowCount, prunedUpto: upto };
    });
  }

  return { exportLines, prune, logs };
}
