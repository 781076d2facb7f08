/**
 * The audit log's tree state (AUDIT-2): the head row of a log (size, frontier of perfect-subtree
 * heads, last checkpoint), reading subtree hashes back for proofs, signing checkpoints, and the
 * pure plan of an append (sequence numbers, leaves, inner nodes, the new frontier).
 */
import type { Signer } from '../keyring/signing-keys.ts';
import type { Queryable } from '../store/db-types.ts';
import { canonicalText } from './canonical.ts';
import { checkpointHash, signCheckpoint, type Checkpoint, type SignedCheckpoint } from './checkpoint.ts';
import { emptyRoot, leafHashOfText, nodeHash, type SubtreeSource } from './merkle.ts';
import type { AuditSettings, PreparedEvent } from './log-types.ts';

export interface Head {
  size: number;
  frontier: string[];
  lastCheckpointSize: number | null;
  lastCheckpointHash: string | null;
  lastCheckpointAt: Date | null;
  prunedUpto: number;
}

export const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
export const unb64 = (s: string): Buffer => Buffer.from(s, 'base64url');

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

export async function readHead(tx: Queryable, tenantId: string, lock: boolean): Promise<Head> {
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


export async function saveHead(tx: Queryable, tenantId: string, head: Head): Promise<void> {
  await tx.query(
    'update audit_heads set size = $2, frontier = $3, last_checkpoint_size = $4, last_checkpoint_hash = $5, last_checkpoint_at = $6 where tenant_id = $1',
    [tenantId, head.size, JSON.stringify(head.frontier), head.lastCheckpointSize, head.lastCheckpointHash, head.lastCheckpointAt],
  );
}


/** Subtree hashes of a log, from its stored perfect-subtree nodes (memoized per call). */
export function subtreeSource(tx: Queryable, tenantId: string): SubtreeSource {
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


export type BatchItem = { prepared: PreparedEvent; extraData?: Record<string, string | number | boolean | null> | undefined };
export interface BatchPlan {
  seqs: number[];
  /** Statement parameters of the events ($2..$7) and of the tree nodes ($2..$4). */
  events: [number[], string[], string[], string[], (string | null)[], string[]];
  nodes: [number[], number[], string[]];
  /** The head after the batch (and after its checkpoint, when one is due). */
  next: Head;
  checkpoint: [string, number, string, string, string] | null;
}

/** Checkpoint signing and the rule of when one is due, bound to the log's settings and clock. */
export function createCheckpointer(settings: AuditSettings, now: () => number) {
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

  return { signCheckpointOf, checkpoint, checkpointDue };
}

export type Checkpointer = ReturnType<typeof createCheckpointer>;

/**
 * The pure part of an append: sequence numbers, canonical bodies, leaf and inner-node hashes
 * and the new frontier for `items` on top of `head`, and the checkpoint when one is due.
 */
export function planBatch(checkpointer: Checkpointer, tenantId: string, head: Head, items: readonly BatchItem[]): BatchPlan {
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
  const checkpointRow = last && checkpointer.checkpointDue(next) ? checkpointer.signCheckpointOf(tenantId, next, last.prepared.signer).row : null;
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
