/**
 * The audit log in the database (AUDIT-1..4): appends with gapless sequence numbers, the
 * RFC 6962 tree kept as perfect-subtree heads, signed checkpoints, proofs, reads, export and
 * retention.
 *
 * An append happens in two steps so it can share the caller's transaction: `prepare` seals the
 * personal fields and fetches the signer (both reach the database, so they run before the
 * transaction opens); `append(tx, prepared)` then takes the next seq under the log's head-row
 * lock, stores the event and its tree nodes, and checkpoints when one is due. `record` does both
 * in a transaction of its own.
 */
import { randomUUID } from 'node:crypto';
import { CryptoError } from '../crypto/errors.ts';
import { currentRequest } from '../server/request-context.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { Signer, SigningKeys } from '../keyring/signing-keys.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import type { AuditAction } from './actions.ts';
import { canonicalText } from './canonical.ts';
import { checkpointHash, signCheckpoint, type Checkpoint, type SignedCheckpoint } from './checkpoint.ts';
import { encodeExportLine, EXPORT_FORMAT } from './export-format.ts';
import { consistencyProof, emptyRoot, inclusionProof, leafHashOfText, nodeHash, type SubtreeSource } from './merkle.ts';

export interface AuditActor {
  /** anonymous: an unauthenticated request; system: no request (CLI, timers). */
  type: 'user' | 'apiKey' | 'service' | 'webhook' | 'anonymous' | 'system';
  id: string | null;
}

export interface AuditInput {
  /** The log: an org id, or the platform tenant id. */
  tenantId: string;
  action: AuditAction;
  target?: { type: string; id: string } | null;
  /** Non-personal details. Personal data goes only in the sealed ip/ua fields. */
  data?: Record<string, string | number | boolean | null>;
  /** Who acted, when not the current request's principal. */
  actor?: AuditActor;
  /**
   * false: record no IP or user agent. For an event after the log's data keys were destroyed,
   * where sealing would create a new key for a tenant that was just shredded.
   */
  personal?: boolean;
}

/** An event as read back: personal fields opened (null once their key was shredded). */
export interface AuditEventView {
  v: number;
  id: string;
  log: string;
  seq: number;
  time: string;
  action: string;
  actor: AuditActor;
  target: { type: string; id: string } | null;
  requestId: string | null;
  ip: string | null;
  ua: string | null;
  data: Record<string, unknown>;
}

export interface PreparedEvent {
  tenantId: string;
  event: Record<string, unknown>;
  actorId: string | null;
  time: Date;
  signer: Signer;
}

export interface AuditSettings {
  checkpointEvery: number;
  checkpointSeconds: number;
  retentionDays: number;
}

interface Head {
  size: number;
  frontier: string[];
  lastCheckpointSize: number | null;
  lastCheckpointHash: string | null;
  lastCheckpointAt: Date | null;
  prunedUpto: number;
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const unb64 = (s: string): Buffer => Buffer.from(s, 'base64url');

/** The largest power of two strictly below n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** The tree head of a frontier (perfect-subtree heads, largest first). */
export function rootOfFrontier(frontier: readonly string[]): Buffer {
  if (frontier.length === 0) return emptyRoot();
  let root = unb64(frontier[frontier.length - 1] ?? '');
  for (let i = frontier.length - 2; i >= 0; i -= 1) root = nodeHash(unb64(frontier[i] ?? ''), root);
  return root;
}

async function readHead(tx: Queryable, tenantId: string, lock: boolean): Promise<Head> {
  const select = `select size::int as size, frontier, last_checkpoint_size::int as last_checkpoint_size, last_checkpoint_hash, last_checkpoint_at, pruned_upto::int as pruned_upto
                    from audit_heads where tenant_id = $1${lock ? ' for update' : ''}`;
  let { rows } = await tx.query<{ size: number; frontier: string[]; last_checkpoint_size: number | null; last_checkpoint_hash: string | null; last_checkpoint_at: Date | null; pruned_upto: number }>(select, [tenantId]);
  if (!rows[0] && lock) {
    // The first append of a log creates its head; a concurrent first append waits here, then finds it.
    await tx.query('insert into audit_heads (tenant_id) values ($1) on conflict (tenant_id) do nothing', [tenantId]);
    ({ rows } = await tx.query(select, [tenantId]));
  }
  const r = rows[0];
  if (!r) return { size: 0, frontier: [], lastCheckpointSize: null, lastCheckpointHash: null, lastCheckpointAt: null, prunedUpto: 0 };
  return {
    size: r.size,
    frontier: r.frontier,
    lastCheckpointSize: r.last_checkpoint_size,
    lastCheckpointHash: r.last_checkpoint_hash,
    lastCheckpointAt: r.last_checkpoint_at === null ? null : new Date(r.last_checkpoint_at),
    prunedUpto: r.pruned_upto,
  };
}

export function createAuditLog(deps: { db: Db; keyring: Keyring; signingKeys: SigningKeys; settings: AuditSettings; now: () => number }) {
  const { db, keyring, signingKeys, settings, now } = deps;

  async function seal(tenantId: string, id: string, column: 'ip' | 'ua', value: string | undefined): Promise<string | null> {
    if (!value) return null;
    return keyring.seal({ tenantId }, { table: 'audit_events', column, rowId: id }, value.slice(0, 512));
  }

  async function prepare(input: AuditInput): Promise<PreparedEvent> {
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

  /** Signs a checkpoint of `head` (its size and frontier) and moves the head's checkpoint fields on; the caller stores both. */
  function signCheckpointOf(tenantId: string, head: Head, signer: Signer): { row: [string, number, string, string, string]; signed: SignedCheckpoint } {
    const cp: Checkpoint = {
      log: tenantId,
      size: head.size,
      root: b64(rootOfFrontier(head.frontier)),
      previous: head.lastCheckpointHash,
      kid: signer.kid,
      time: new Date(now()).toISOString(),
    };
    const signed = signCheckpoint(cp, (data) => signer.sign(data));
    head.lastCheckpointSize = cp.size;
    head.lastCheckpointHash = checkpointHash(cp);
    head.lastCheckpointAt = new Date(now());
    return { row: [tenantId, cp.size, canonicalText(cp), signed.signature, cp.kid], signed };
  }

  async function checkpoint(tx: Queryable, tenantId: string, head: Head, signer: Signer): Promise<SignedCheckpoint> {
    const { row, signed } = signCheckpointOf(tenantId, head, signer);
    await tx.query('insert into audit_checkpoints (tenant_id, size, body, signature, kid) values ($1, $2, $3, $4, $5)', row);
    return signed;
  }

  function checkpointDue(head: Head): boolean {
    const since = head.size - (head.lastCheckpointSize ?? 0);
    if (since <= 0) return false;
    if (since >= settings.checkpointEvery) return true;
    return head.lastCheckpointAt === null || now() - head.lastCheckpointAt.getTime() >= settings.checkpointSeconds * 1000;
  }

  async function saveHead(tx: Queryable, tenantId: string, head: Head): Promise<void> {
    await tx.query(
      'update audit_heads set size = $2, frontier = $3, last_checkpoint_size = $4, last_checkpoint_hash = $5, last_checkpoint_at = $6 where tenant_id = $1',
      [tenantId, head.size, JSON.stringify(head.frontier), head.lastCheckpointSize, head.lastCheckpointHash, head.lastCheckpointAt],
    );
  }

  type BatchItem = { prepared: PreparedEvent; extraData?: Record<string, string | number | boolean | null> | undefined };
  interface BatchPlan {
    seqs: number[];
    /** Statement parameters of the events ($2..$7) and of the tree nodes ($2..$4). */
    events: [number[], string[], string[], string[], (string | null)[], string[]];
    nodes: [number[], number[], string[]];
    /** The head after the batch (and after its checkpoint, when one is due). */
    next: Head;
    checkpoint: [string, number, string, string, string] | null;
  }

  /**
   * The pure part of an append: sequence numbers, canonical bodies, leaf and inner-node hashes
   * and the new frontier for `items` on top of `head`, and the checkpoint when one is due.
   */
  function planBatch(tenantId: string, head: Head, items: readonly BatchItem[]): BatchPlan {
    const frontier = [...head.frontier];
    const seqs: number[] = [];
    const bodies: string[] = [];
    const nodes: BatchPlan['nodes'] = [[], [], []];
    const addNode = (level: number, idx: number, hash: Buffer): void => {
      nodes[0].push(level);
      nodes[1].push(idx);
      nodes[2].push(hash.toString('base64'));
    };
    for (const { prepared, extraData } of items) {
      if (prepared.tenantId !== tenantId) throw new Error('an audit batch mixes logs');
      const seq = head.size + seqs.length;
      const data = { ...(prepared.event.data as Record<string, unknown>), ...extraData };
      const body = canonicalText({ ...prepared.event, data, seq });
      seqs.push(seq);
      bodies.push(body);
      // Merge the new leaf into the frontier; every perfect subtree completed on the way is stored.
      let carry = leafHashOfText(body);
      addNode(0, seq, carry);
      let level = 0;
      let idx = seq;
      while (idx % 2 === 1) {
        const left = frontier.pop();
        if (left === undefined) throw new Error('audit head frontier is inconsistent with its size');
        carry = nodeHash(unb64(left), carry);
        level += 1;
        idx = (idx - 1) / 2;
        addNode(level, idx, carry);
      }
      frontier.push(b64(carry));
    }
    const next: Head = { ...head, size: head.size + seqs.length, frontier };
    const last = items[items.length - 1];
    const checkpointRow = last && checkpointDue(next) ? signCheckpointOf(tenantId, next, last.prepared.signer).row : null;
    return {
      seqs,
      events: [
        seqs,
        items.map((i) => i.prepared.event.id as string),
        items.map((i) => i.prepared.time.toISOString()),
        items.map((i) => i.prepared.event.action as string),
        items.map((i) => i.prepared.actorId),
        bodies,
      ],
      nodes,
      next,
      checkpoint: checkpointRow,
    };
  }

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
    const plan = planBatch(tenantId, head, items);
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
    const plan = planBatch(tenantId, head, items);
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

  // Group commit for `record`: events of a log that arrive while its previous batch is being
  // written go together in the next transaction. Each caller still resolves only after its event
  // is committed, so nothing is acknowledged that a crash could lose.
  interface Waiting {
    prepared: PreparedEvent;
    resolve: (seq: number) => void;
    reject: (err: unknown) => void;
  }
  const queues = new Map<string, Waiting[]>();
  const flushing = new Set<string>();
  const MAX_BATCH = 256;
  // The head each log had after this node's last committed group commit: the plan of the next
  // batch starts from it, and the statement that writes the batch checks it is still current.
  const heads = new Map<string, Head>();
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

  /** Signs a checkpoint now when events are not covered by one (before reads, proofs, exports). */
  async function checkpointIfBehind(tenantId: string, force = false): Promise<void> {
    const probe = await db.withTenant(tenantId, (tx) => readHead(tx, tenantId, false));
    if (probe.size === 0 || probe.lastCheckpointSize === probe.size) return;
    if (!force && !checkpointDue(probe)) return;
    const signer = await signingKeys.current('audit-checkpoint');
    await db.withTenant(tenantId, async (tx) => {
      const head = await readHead(tx, tenantId, true);
      if (head.size === 0 || head.lastCheckpointSize === head.size) return;
      await checkpoint(tx, tenantId, head, signer);
      await saveHead(tx, tenantId, head);
    });
  }

  function subtreeSource(tx: Queryable, tenantId: string): SubtreeSource {
    const memo = new Map<string, Buffer>();
    const subtree: SubtreeSource = async (start, end) => {
      const n = end - start;
      const key = `${start}:${end}`;
      const known = memo.get(key);
      if (known) return known;
      let hash: Buffer;
      if (isPowerOfTwo(n) && start % n === 0) {
        const level = Math.log2(n);
        const { rows } = await tx.query<{ hash: Buffer | Uint8Array }>('select hash from audit_nodes where tenant_id = $1 and level = $2 and idx = $3', [tenantId, level, start / n]);
        const row = rows[0];
        if (!row) throw new Error(`audit tree node ${level}/${start / n} is missing`);
        hash = Buffer.from(row.hash);
      } else {
        const k = splitPoint(n);
        hash = nodeHash(await subtree(start, start + k), await subtree(start + k, end));
      }
      memo.set(key, hash);
      return hash;
    };
    return subtree;
  }

  async function size(tenantId: string): Promise<{ size: number; prunedUpto: number }> {
    const head = await db.withTenant(tenantId, (tx) => readHead(tx, tenantId, false));
    return { size: head.size, prunedUpto: head.prunedUpto };
  }

  return {
    prepare,
    append,
    record,
    checkpointIfBehind,
    size,

    /** Events, newest first, filtered by actor, action and time; `cursor` is the last seq seen. */
    async list(tenantId: string, q: { actor?: string; action?: string; from?: Date; to?: Date; cursor?: number; limit: number }) {
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
    },

    async checkpoints(tenantId: string, q: { cursor?: number; limit: number }) {
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
    },

    /** Inclusion proof of event `index` in the tree of the first `size` events. Null when out of range. */
    async inclusion(tenantId: string, index: number, treeSize: number) {
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
    },

    /** Consistency proof between the trees of the first `from` and `to` events. Null when out of range. */
    async consistency(tenantId: string, from: number, to: number) {
      await checkpointIfBehind(tenantId);
      return db.withTenant(tenantId, async (tx) => {
        const head = await readHead(tx, tenantId, false);
        if (!(from >= 1 && from <= to && to <= head.size)) return null;
        const subtree = subtreeSource(tx, tenantId);
        const proof = await consistencyProof(from, to, subtree);
        return { from, to, proof: proof.map(b64), fromRoot: b64(await subtree(0, from)), toRoot: b64(await subtree(0, to)) };
      });
    },

    /** The export file's lines (AUDIT-3), one at a time: memory stays flat whatever the log's length. */
    async *exportLines(tenantId: string): AsyncGenerator<string> {
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
    },

    /**
     * Retention (AUDIT-4), as the owner: removes events older than `retentionDays`, up to the
     * largest checkpoint they entirely precede, so the rest still verifies from that checkpoint.
     */
    async prune(tenantId: string): Promise<{ removed: number; prunedUpto: number }> {
      const cutoff = new Date(now() - settings.retentionDays * 86_400_000);
      return db.asOwner(async (tx) => {
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
    },
  };

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
}

export type AuditLog = ReturnType<typeof createAuditLog>;
