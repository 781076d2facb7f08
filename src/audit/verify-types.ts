/**
 * The offline verifier's report shape (AUDIT-3), in a module of its own so that verify.ts, which
 * builds it, and verify-report.ts, which prints it, both depend on it and not on each other
 * (no import cycles; test/architecture/imports.test.ts).
 */
import type { Verdict } from './verify-pins.ts';

/** Stable codes for what made a file fail; see the module comment of verify.ts for each. */
export type VerifyCode =
  | 'MALFORMED_LINE'
  | 'BAD_HEADER'
  | 'OUT_OF_PLACE'
  | 'BAD_KEY'
  | 'UNTRUSTED_KEY'
  | 'UNKNOWN_KEY'
  | 'BAD_SIGNATURE'
  | 'LOG_MISMATCH'
  | 'CHAIN_BROKEN'
  | 'ROOT_MISMATCH'
  | 'SEQ_GAP'
  | 'SEQ_DUPLICATE'
  | 'SEQ_OUT_OF_ORDER'
  | 'SEQ_MISMATCH'
  | 'CHECKPOINT_MISPLACED'
  | 'PRUNED_UNANCHORED'
  | 'NO_CHECKPOINT'
  | 'TRUNCATED'
  | 'TRAILER_MISMATCH'
  | 'BELOW_PINNED_SIZE'
  | 'PIN_ROOT_MISMATCH'
  | 'PIN_UNCHECKABLE'
  | 'PIN_BAD_CHECKPOINT'
  | 'EVENT_MODIFIED'
  | 'LEAF_MISMATCH';

/**
 * The first problem found. `index` is an event index (see VerifyCode), `line` is 1-based, or 0
 * for a problem with a pin rather than with a line of the file.
 */
export interface VerifyProblem {
  reason: VerifyCode;
  index: number | null;
  line: number;
  message: string;
  /** The `id` of the event named, when the problem names one event that carries a string id. */
  eventId?: string;
}

export interface VerifyReport {
  /** False when the file failed; true does not mean VERIFIED: see `verdict`, `proven` and `unproven`. */
  ok: boolean;
  /** VERIFIED, CONSISTENT-BUT-UNPINNED or FAILED (verify-pins.ts). */
  verdict: Verdict;
  /** The pins that were met, each as a sentence. */
  proven: string[];
  /** What this file and these pins cannot show, each as a sentence (empty once failed). */
  unproven: string[];
  /** The log id of the header. */
  log: string | null;
  /** Event lines read. */
  events: number;
  firstIndex: number | null;
  lastIndex: number | null;
  /** Checkpoints verified. */
  checkpoints: number;
  /** Events below this index (from `firstIndex`) are covered by a verified checkpoint. */
  coveredSize: number;
  /** Events after the last verified checkpoint, when there are any. */
  uncovered: { from: number; to: number } | null;
  /** Kids of the keys that signed verified checkpoints, in order of first use. */
  keys: string[];
  /** Whether the keys were checked against trusted keys. */
  keysPinned: boolean;
  /** The pruned prefix and the `previous` of its anchoring checkpoint. */
  pruned: { upTo: number; anchor: string | null } | null;
  /** The `time` of the first and last events that carry a string one. */
  firstTime: string | null;
  lastTime: string | null;
  problem?: VerifyProblem;
}
