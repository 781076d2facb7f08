/**
 * Appending to the audit log (AUDIT-1, AUDIT-2), in two steps so it can share the caller's
 * transaction: `prepare` seals the personal fields and fetches the signer (both reach the
 * database, so they run before the transaction opens); `append(tx, prepared)` then takes the next
 * seq under the log's head-row lock, stores the event and its tree nodes, and checkpoints when one
 * is due. `record` (log-group-commit.ts) does both in a transaction of its own.
 */
import { randomUUID } from 'node:crypto';
import type { Keyring } from '../keyring/keyring.ts';
import type { SigningKeys } from '../keyring/signing-keys.ts';
import { currentRequest } from '../server/request-context.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import { planBatch, readHead, saveHead, type BatchItem, type Checkpointer, type Head } from './log-tree.ts';
import type { AuditActor, AuditInput, PreparedEvent } from './log-types.ts';

/**
 * The first step of an append: the event with its personal fields sealed and the signer fetched.
 * An action no module declares (`actions`) is refused before anything is sealed or written.
 */
export function createAuditPreparer(deps: { keyring: Keyring; signingKeys: SigningKeys; actions: ReadonlySet<string>; now: () => number }) {
  const { keyring, signingKeys, actions, now } = deps;

  async function seal(tenantId: string, id: string, column: 'ip' | 'ua', value: string | undefined): Promise<string | null> {
    if (!value) return null;
    return keyring.seal({ tenantId }, { table: 'audit_events', column, rowId: id }, value.slice(0, 512));
  }

  async function prepare(input: AuditInput): Promise<PreparedEvent> {
    if (!actions.has(input.action)) throw new Error(`unknown audit action "${input.action}": declare it in its module's auditActions (src/server/module.ts)`);
    const req = currentRequest();
    const principal = req?.principal;
    const actor: AuditActor = input.actor ?? (principal ? { type: principal.kind, id: principal.id } : { type: req ? 'anonymous' : 'system', id: null });
    const id = randomUUID();
    const time = new Date(now());
    const [ip, ua, signer] = await Promise.all([
      seal(input.tenantId, id, 'ip', input.personal === false ? undefined : req?.ip),
      seal(input.tenantId, id, 'ua', input.personal === false ? undefined : req?.userAgent),
      signingKeys.current('audit-checkpoint'),
    ]);
    const event = {
      v: 1,
      id,
      log: input.tenantId,
      time: time.toISOString(),
      action: input.action,
      actor,
      target: input.target ?? null,
      requestId: req?.requestId ?? null,
      ip,
      ua,
      data: input.data ?? {},
    };
    return { tenantId: input.tenantId, event, actorId: actor.id, time, signer };
  }

  return { prepare };
}

export function createAuditAppender(deps: { db: Db; keyring: Keyring; signingKeys: SigningKeys; checkpointer: Checkpointer; actions: ReadonlySet<string>; now: () => number }) {
  const { db, keyring, signingKeys, checkpointer, actions, now } = deps;
  // The head each log had after this node's last committed group commit: the plan of the next
  // batch starts from it, and the statement that writes the batch checks it is still current.
  const heads = new Map<string, Head>();

  const { prepare } = createAuditPreparer({ keyring, signingKeys, actions, now });

  const INSERT_EVENTS_FROM = `select $1::uuid, e.seq, e.id, e.time, e.action, e.actor_id, e.body
         from unnest($2::bigint[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[], $7::text[]) as e(seq, id, time, action, actor_id, body)`;

  /**
   * Appends events of one log inside the caller's transaction, which must be in that tenant's
   * context; returns their seqs. One head-row lock, one insert for the events, one for the tree
   * nodes, at most one checkpoint (at the end, when due) and one head update, whatever the count.
   */
  async function appendBatch(tx: Queryable, tenantId: string, items: readonly BatchItem[]): Promise<number[]> {
    if (items.length === 0) return [];
    const head = await readHead(tx, tenantId, true);
    const plan = planBatch(checkpointer, tenantId, head, items);
    await tx.query(`insert into audit_events (tenant_id, seq, id, time, action, actor_id, body) ${INSERT_EVENTS_FROM}`, [tenantId, ...plan.events]);
    await tx.query(
      `insert into audit_nodes (tenant_id, level, idx, hash)
       select $1, n.level, n.idx, decode(n.hash, 'base64') from unnest($2::smallint[], $3::bigint[], $4::text[]) as n(level, idx, hash)`,
      [tenantId, ...plan.nodes],
    );
    if (plan.checkpoint) await tx.query('insert into audit_checkpoints (tenant_id, size, body, signature, kid) values ($1, $2, $3, $4, $5)', plan.checkpoint);
    await saveHead(tx, tenantId, plan.next);
    // This transaction may still roll back: the node's remembered head is no longer trusted.
    heads.delete(tenantId);
    return plan.seqs;
  }

  /**
   * The group-commit writer's fast path: one statement, planned on the head this node last wrote.
   * The head row is updated only if it is still exactly that head (size, frontier and checkpoint
   * fields: another node, a checkpoint or an append in a caller's transaction changes one of them),
   * and the events, nodes and checkpoint are inserted only if it was. Returns null when the head
   * moved; the caller then appends under the row lock.
   */
  async function appendOnKnownHead(tenantId: string, head: Head, items: readonly BatchItem[]): Promise<{ seqs: number[]; next: Head } | null> {
    const plan = planBatch(checkpointer, tenantId, head, items);
    const cp = plan.checkpoint;
    const { next } = plan;
    const r = await db.withTenant(tenantId, (tx) =>
      tx.query<{ n: number }>(
        `with h as (
           update audit_heads set size = $8, frontier = $9::jsonb, last_checkpoint_size = $10, last_checkpoint_hash = $11, last_checkpoint_at = $12
            where tenant_id = $1 and size = $13 and frontier = $14::jsonb
              and last_checkpoint_size is not distinct from $15::bigint and last_checkpoint_hash is not distinct from $16::text
           returning 1),
         e as (insert into audit_events (tenant_id, seq, id, time, action, actor_id, body) ${INSERT_EVENTS_FROM} where exists (select 1 from h)),
         n as (insert into audit_nodes (tenant_id, level, idx, hash)
               select $1, n.level, n.idx, decode(n.hash, 'base64') from unnest($17::smallint[], $18::bigint[], $19::text[]) as n(level, idx, hash)
                where exists (select 1 from h)),
         c as (insert into audit_checkpoints (tenant_id, size, body, signature, kid)
               select $1, $20::bigint, $21::text, $22::text, $23::text where $20::bigint is not null and exists (select 1 from h))
         select count(*)::int as n from h`,
        [
          tenantId,
          ...plan.events,
          next.size,
          JSON.stringify(next.frontier),
          next.lastCheckpointSize,
          next.lastCheckpointHash,
          next.lastCheckpointAt,
          head.size,
          JSON.stringify(head.frontier),
          head.lastCheckpointSize,
          head.lastCheckpointHash,
          ...plan.nodes,
          cp ? cp[1] : null,
          cp ? cp[2] : null,
          cp ? cp[3] : null,
          cp ? cp[4] : null,
        ],
      ),
    );
    return r.rows[0]?.n === 1 ? { seqs: plan.seqs, next } : null;
  }

  /** Appends inside the caller's transaction, which must be in `prepared.tenantId`'s context. Returns the seq. */
  async function append(tx: Queryable, prepared: PreparedEvent, extraData?: Record<string, string | number | boolean | null>): Promise<number> {
    const [seq] = await appendBatch(tx, prepared.tenantId, [{ prepared, extraData }]);
    if (seq === undefined) throw new Error('append returned no seq');
    return seq;
  }

  /** Signs a checkpoint now when events are not covered by one (before reads, proofs, exports). */
  async function checkpointIfBehind(tenantId: string, force = false): Promise<void> {
    const probe = await db.withTenant(tenantId, (tx) => readHead(tx, tenantId, false));
    if (probe.size === 0 || probe.lastCheckpointSize === probe.size) return;
    if (!force && !checkpointer.checkpointDue(probe)) return;
    const signer = await signingKeys.current('audit-checkpoint');
    await db.withTenant(tenantId, async (tx) => {
      const head = await readHead(tx, tenantId, true);
      if (head.size === 0 || head.lastCheckpointSize === head.size) return;
      await checkpointer.checkpoint(tx, tenantId, head, signer);
      await saveHead(tx, tenantId, head);
    });
  }

  return { prepare, append, appendBatch, appendOnKnownHead, heads, checkpointIfBehind };
}

export type AuditAppender = ReturnType<typeof createAuditAppender>;
