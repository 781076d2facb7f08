/**
 * The offline verifier's check of the auditor's pins (AUDIT-3; what they are is in
 * verify-pins.ts): the saved checkpoint's log and signature, the tree heads the export must
 * reproduce as its tree grows, the sizes it must reach once it has ended, and what a file that
 * verified still does not show. Each check returns the failure, or null.
 */
import { verifyCheckpointSignature, type SignedCheckpoint } from './checkpoint.ts';
import type { EndLine } from './export-format.ts';
import type { MerkleFrontier } from './merkle.ts';
import type { VerifierKeys, PublicKey } from './verify-keys.ts';
import { checkSavedCheckpoint, rootPinsOf, type RootPin, type VerifyPins } from './verify-pins.ts';
import type { EventRun } from './verify-scan.ts';
import type { VerifyCode, VerifyFailure } from './verify-types.ts';

/** A failure of a pin rather than a line of the file (line 0). */
function pinFailure(reason: VerifyCode, message: string): VerifyFailure {
  return { reason, index: null, message, line: 0 };
}

export class PinCheck {
  /** Tree heads the export must reproduce, by size, and the next one to check. */
  #rootPins: RootPin[];
  #nextPin = 0;
  #minSize: number | null;
  #saved: SignedCheckpoint | null;
  #savedChecked = false;
  #proven: string[] = [];
  #keys: VerifierKeys;

  constructor(pins: VerifyPins, keys: VerifierKeys) {
    this.#rootPins = rootPinsOf(pins);
    this.#minSize = pins.minSize ?? null;
    this.#saved = pins.checkpoint ?? null;
    this.#keys = keys;
  }

  /** The pins that were met, each as a sentence. */
  get proven(): string[] {
    return [...this.#proven];
  }

  /** The saved checkpoint, once the header names the log: for this log, and signed by a trusted key. */
  atHeader(log: string | null): VerifyFailure | null {
    const saved = this.#saved;
    if (saved === null) return null;
    if (saved.checkpoint.log !== log) {
      return pinFailure('PIN_BAD_CHECKPOINT', `the saved checkpoint is for log ${JSON.stringify(saved.checkpoint.log)}, not ${JSON.stringify(log)}`);
    }
    const why = checkSavedCheckpoint(saved, this.#keys.trustedKeys.get(saved.checkpoint.kid), this.#keys.trusted);
    if (why === undefined) return null; // checked against the export's key line of that kid
    if (why !== null) return pinFailure('PIN_BAD_CHECKPOINT', why);
    this.#savedChecked = true;
    this.#proven.push(`the saved checkpoint of size ${saved.checkpoint.size} carries a valid signature by trusted key ${saved.checkpoint.kid}`);
    return null;
  }

  /** Unpinned keys: the saved checkpoint is checked against the export's key of its kid. */
  withKeyLine(kid: string, key: PublicKey): VerifyFailure | null {
    const saved = this.#saved;
    if (saved === null || this.#savedChecked || saved.checkpoint.kid !== kid) return null;
    if (!verifyCheckpointSignature(saved, key)) return pinFailure('PIN_BAD_CHECKPOINT', `the saved checkpoint does not carry a valid signature by key ${kid}`);
    this.#savedChecked = true;
    this.#proven.push(`the saved checkpoint of size ${saved.checkpoint.size} carries a valid signature by key ${kid}, as declared in the export (not pinned)`);
    return null;
  }

  /** Whether a run of events would carry the tree past a pinned size without stopping at it. */
  runCrossesPin(run: EventRun): boolean {
    const pin = this.#rootPins[this.#nextPin];
    return pin !== undefined && pin.size > run.first && pin.size < run.first + run.count;
  }

  /** Checks the tree heads pinned at the tree's size, now that it has grown to it. */
  rootPins(tree: MerkleFrontier, firstIndex: number | null, pruned: boolean): VerifyFailure | null {
    const size = tree.size;
    for (let pin = this.#rootPins[this.#nextPin]; pin !== undefined && pin.size <= size; pin = this.#rootPins[this.#nextPin]) {
      this.#nextPin += 1;
      if (pin.size < size) {
        return { reason: 'PIN_UNCHECKABLE', index: null, message: `${pin.source} is within the pruned events 0..${size - 1}: this export cannot show that it extends it` };
      }
      if (tree.root().toString('base64url') !== pin.root) {
        if (firstIndex === null || pin.size === 0) {
          return { reason: 'PIN_ROOT_MISMATCH', index: null, message: `the ${pruned ? 'pruned frontier' : 'empty tree'} does not give the root of ${pin.source}` };
        }
        return {
          reason: 'PIN_ROOT_MISMATCH',
          index: firstIndex,
          message: `events ${firstIndex}..${size - 1} do not hash to the root of ${pin.source}: the history up to index ${size - 1} is not the one seen then (rewritten, or another log); only the range can be named, since the pin gives one root`,
        };
      }
      this.#proven.push(`${pin.source}: the first ${size} events of this export hash to its root`);
    }
    return null;
  }

  /** Once the file has ended: it reaches every pinned size, and the saved checkpoint was checked. */
  sizePins(size: number, signed: number): VerifyFailure | null {
    const pin = this.#rootPins[this.#nextPin];
    if (pin !== undefined) {
      const ends = size > 0 ? `ends at index ${size - 1}` : 'has no event';
      return {
        reason: 'BELOW_PINNED_SIZE',
        index: size,
        message: `${pin.source} is of size ${pin.size}, but this export ${ends}: events from index ${size} on were cut, or the log was rolled back`,
      };
    }
    if (this.#minSize !== null) {
      if (signed < this.#minSize) {
        const tail = size > signed ? ` (events ${signed}..${size - 1} are not covered by a signed checkpoint)` : '';
        return {
          reason: 'BELOW_PINNED_SIZE',
          index: signed,
          message: `the export's checkpoints sign ${signed} events${tail}, fewer than --min-size ${this.#minSize}: events were cut after its last checkpoint, or the log was rolled back`,
        };
      }
      this.#proven.push(`--min-size ${this.#minSize}: the export's checkpoints sign ${signed} events`);
    }
    if (this.#saved !== null && !this.#savedChecked) {
      return pinFailure('PIN_UNCHECKABLE', `no key ${this.#saved.checkpoint.kid} is declared in the export or given with --keys: the saved checkpoint's signature cannot be checked`);
    }
    return null;
  }

  /** What a file that verified still does not show, with these keys and pins. */
  unproven(size: number, usedKids: readonly string[], end: EndLine | null): string[] {
    const out: string[] = [];
    if (this.#keys.trusted === null) {
      out.push(`that the keys are the server's: none were pinned (--keys), so a rewrite re-signed with a new key cannot be excluded; this file is signed by ${usedKids.join(', ') || 'no key'}`);
    }
    const pinned = Math.max(this.#minSize ?? 0, ...this.#rootPins.map((p) => p.size));
    const endLine = end === null ? 'the end line' : `the end line (${end.events} events, ${end.checkpoints} checkpoints)`;
    if (this.#minSize === null && this.#rootPins.length === 0) {
      out.push(
        `that the log ends at index ${size - 1}: ${endLine} is not signed, so events after the last checkpoint could have been cut with the end line rewritten to match; pin a size with --min-size, --size and --root, or --checkpoint`,
      );
    } else {
      out.push(`that the log ends at index ${size - 1}: the pins show only that it has at least ${pinned} events, and ${endLine} is not signed, so events after index ${size - 1} could have been cut`);
    }
    return out;
  }
}
