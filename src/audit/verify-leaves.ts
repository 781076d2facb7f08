/**
 * The leaf hashes stated on event lines, as the offline verifier (AUDIT-3) weighs them: when the
 * events since the last checkpoint do not give its signed root, the stated hashes may name the
 * event that was modified (EVENT_MODIFIED) where the root alone names only the range
 * (ROOT_MISMATCH); a stated hash that differs from an event shown unchanged is LEAF_MISMATCH.
 */
import type { Checkpoint } from './checkpoint.ts';
import { MerkleFrontier } from './merkle.ts';
import type { VerifyFailure } from './verify-types.ts';

export class StatedLeaves {
  /** Leaf hashes stated on event lines since the last checkpoint. */
  #inRange = 0;
  /**
   * From the first stated hash that is not its event's hash on, the tree of the stated hashes
   * (the event's own where none is stated).
   */
  #tree: MerkleFrontier | null = null;
  #mismatch: { index: number; line: number; id: string | null } | null = null;

  /** Whether a stated hash differed from its event's: each event line must be compared then. */
  get differing(): boolean {
    return this.#tree !== null;
  }

  /** Counts stated hashes that a run of events showed equal to their events'. */
  countEqual(count: number): void {
    this.#inRange += count;
  }

  /** A checkpoint verified the range: start the next one. */
  nextRange(): void {
    this.#inRange = 0;
  }

  /**
   * Notes a leaf hash stated on an event line (`tree` the events' tree before this one). The
   * first one that differs from the event's own starts the tree of stated hashes: at the
   * checkpoint, if that tree gives the signed root, the stated hashes are the original ones, and
   * the first differing event is the one modified.
   */
  compare(tree: MerkleFrontier, index: number, line: number, event: Record<string, unknown>, leaf: Buffer, stated: string | undefined): void {
    if (stated !== undefined) this.#inRange += 1;
    if (this.#tree === null) {
      if (stated === undefined || stated === leaf.toString('base64url')) return;
      const { hashes, size } = tree.toJSON();
      this.#tree = MerkleFrontier.from(
        hashes.map((h) => Buffer.from(h, 'base64url')),
        size,
      );
      this.#mismatch = { index, line, id: typeof event.id === 'string' ? event.id : null };
    }
    this.#tree.append(stated === undefined ? leaf : Buffer.from(stated, 'base64url'));
  }

  /** The events since the last checkpoint (from `from`) do not give its root, signed on `line`: name the event when the stated leaf hashes allow it. */
  rangeFailure(cp: Checkpoint, from: number, line: number): VerifyFailure {
    const range = cp.size > from ? `events ${from}..${cp.size - 1}` : `the events before index ${cp.size}`;
    const mismatch = this.#mismatch;
    if (this.#tree !== null && mismatch !== null && this.#tree.root().toString('base64url') === cp.root) {
      const id = mismatch.id === null ? '' : ` (id ${mismatch.id})`;
      return {
        reason: 'EVENT_MODIFIED',
        index: mismatch.index,
        message: `the event of index ${mismatch.index}${id} on line ${mismatch.line} was modified: it does not hash to the leaf hash stated on its line, and the stated leaf hashes of ${range} give the root signed on line ${line}`,
        line: mismatch.line,
        eventId: mismatch.id,
      };
    }
    const count = cp.size - from;
    let why: string;
    if (this.#tree !== null) why = 'the leaf hashes stated on their lines do not give the signed root either (they were changed too)';
    else if (this.#inRange === 0) why = 'the file states no leaf hashes for these events';
    else if (this.#inRange < count) why = `${count - this.#inRange} of these events state no leaf hash, and the others each hash to the one they state`;
    else why = 'each event hashes to the leaf hash stated on its line, so those were rewritten with the events';
    return {
      reason: 'ROOT_MISMATCH',
      index: from,
      message: `${range} do not hash to the root signed on line ${line}: one was modified, or events were added or removed and renumbered; only the range can be named: ${why}`,
    };
  }

  /** A stated leaf hash that is not its event's, where the events are not shown to be changed. */
  leafFailure(why: string): VerifyFailure {
    const mismatch = this.#mismatch as { index: number; line: number; id: string | null };
    const id = mismatch.id === null ? '' : ` (id ${mismatch.id})`;
    return {
      reason: 'LEAF_MISMATCH',
      index: mismatch.index,
      message: `the leaf hash stated on line ${mismatch.line} is not the hash of the event of index ${mismatch.index}${id}: ${why}`,
      line: mismatch.line,
      eventId: mismatch.id,
    };
  }
}
