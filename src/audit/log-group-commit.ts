/**
 * Group commit for the audit log's `record` (AUDIT-1): events of a log that arrive while its
 * previous batch is being written go together in the next transaction. Each caller still resolves
 * only after its event is committed, so nothing is acknowledged that a crash could lose.
 */
import type { Db } from '../store/db-types.ts';
import type { AuditAppender } from './log-append.ts';
import { readHead, type BatchItem, type Head } from './log-tree.ts';
import type { AuditInput, PreparedEvent } from './log-types.ts';

export function createGroupCommit(deps: { db: Db; appender: AuditAppender }) {
  const { db } = deps;
  const { prepare, appendBatch, appendOnKnownHead, heads } = deps.appender;

  interface Waiting {
    prepared: PreparedEvent;
    resolve: (seq: number) => void;
    reject: (err: unknown) => void;
  }
  const queues = new Map<string, Waiting[]>();
  const flushing = new Set<string>();
  const MAX_BATCH = 256;
  // A hint, not state: a forgotten head costs one locked append. Bounded so a node that writes to
  // many orgs' logs does not keep every frontier; the least recently written is dropped.
  const MAX_REMEMBERED_HEADS = 10_000;
  const rememberHead = (tenantId: string, head: Head): void => {
    heads.delete(tenantId);
    heads.set(tenantId, head);
    if (heads.size > MAX_REMEMBERED_HEADS) {
      const oldest = heads.keys().next();
      if (oldest.done !== true) heads.delete(oldest.value);
    }
  };

  /** One batch, committed: on the remembered head in one statement, else under the head-row lock. */
  async function writeBatch(tenantId: string, batch: readonly BatchItem[]): Promise<number[]> {
    const known = heads.get(tenantId);
    if (known) {
      const done = await appendOnKnownHead(tenantId, known, batch);
      if (done) {
        rememberHead(tenantId, done.next);
        return done.seqs;
      }
      heads.delete(tenantId);
    }
    let next: Head | undefined;
    const seqs = await db.withTenant(tenantId, async (tx) => {
      const written = await appendBatch(tx, tenantId, batch);
      next = await readHead(tx, tenantId, false);
      return written;
    });
    if (next) rememberHead(tenantId, next);
    return seqs;
  }

  async function flush(tenantId: string): Promise<void> {
    flushing.add(tenantId);
    try {
      for (;;) {
        const queue = queues.get(tenantId) ?? [];
        if (queue.length === 0) break;
        const batch = queue.splice(0, MAX_BATCH);
        try {
          const seqs = await writeBatch(tenantId, batch.map((w) => ({ prepared: w.prepared })));
          batch.forEach((w, i) => w.resolve(seqs[i] ?? -1));
        } catch (err) {
          heads.delete(tenantId);
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      flushing.delete(tenantId);
      queues.delete(tenantId);
    }
  }

  /** Prepares and appends in a transaction of its own (shared with concurrent callers of the same log). */
  async function record(input: AuditInput): Promise<number> {
    const prepared = await prepare(input);
    return new Promise<number>((resolve, reject) => {
      let queue = queues.get(input.tenantId);
      if (!queue) {
        queue = [];
        queues.set(input.tenantId, queue);
      }
      queue.push({ prepared, resolve, reject });
      if (!flushing.has(input.tenantId)) void flush(input.tenantId);
    });
  }

  return { record };
}
