/**
 * The offline verifier's report shape (AUDIT-3), in a module of its own so that verify.ts, which
 * builds it, and verify-report.ts, which prints it, both depend on it and not on each other
 * (no import cycles; test/architecture/imports.test.ts).
 */
import type { TrustedKey, Verdict, VerifyPins } from './verify-pins.ts';

/**
 * Stable codes for what made a file fail (verify.ts).
 *
 * The codes, and the index each one reports:
 * - MALFORMED_LINE: not JSON, not UTF-8, an unknown line type, a line that fails its schema, a
 *   line over 16 MiB. Index: null (the line number says where).
 * - BAD_HEADER: the first line is not a `gatehouse-audit-export/1` header.
 * - OUT_OF_PLACE: a line the format does not allow where it stands (a second header, a pruned
 *   line after events, anything after the end line).
 * - BAD_KEY: a key line whose kid is not its key's thumbprint, a kid declared twice, or a key
 *   node:crypto cannot load.
 * - UNTRUSTED_KEY: trusted keys were given and a key line declares another one. An auditor pins
 *   the keys the server publishes at `/.well-known/jwks.json` (current, next and previous; older
 *   keys from earlier copies): without pinning, a rewrite re-signed with a new key verifies, and
 *   only the list of kids in the report shows it.
 * - UNKNOWN_KEY, BAD_SIGNATURE, LOG_MISMATCH, CHAIN_BROKEN: a checkpoint names an undeclared key,
 *   its signature fails, it is for another log, or its `previous` does not link to the
 *   checkpoint before it. Index: the first event index no verified checkpoint covers yet.
 * - EVENT_MODIFIED: the events do not hash to the signed root, but the leaf hashes stated on
 *   their lines do, so those are the original hashes: the first event whose own hash differs
 *   from its stated one was modified. Index: that event; `eventId` its string `id`; line: its line.
 * - ROOT_MISMATCH: the events do not hash to the signed root, and the stated leaf hashes cannot
 *   name the event (none stated, rewritten with the events, or changed too): the index is the
 *   first of the range the checkpoint covers beyond the previous one, and the message gives the
 *   range and why only the range can be named.
 * - LEAF_MISMATCH: a stated leaf hash is not its event's hash, where the events are not shown to
 *   be changed (they give the signed root, or no checkpoint covers them). Index: that event.
 * - SEQ_GAP: an index is missing (a deleted event). Index: the missing one.
 * - SEQ_DUPLICATE: an index already read appears again (an inserted event). Index: that index.
 * - SEQ_OUT_OF_ORDER: the missing index turns up later (reordered events). Index: the one that
 *   came late. Up to 10,000 further lines are scanned to tell this from a gap.
 * - SEQ_MISMATCH: an event's `seq` differs from its line's index (events moved between lines).
 * - CHECKPOINT_MISPLACED: a checkpoint comes after more events than it covers. Index: its size.
 * - PRUNED_UNANCHORED: a pruned line not followed by the signed checkpoint at its size.
 * - NO_CHECKPOINT: a complete file without any checkpoint: nothing in it is signed.
 * - TRUNCATED: no end line, a last line cut off mid-way, or fewer lines than the end line
 *   counts. Index: the first event index that may be missing.
 * - TRAILER_MISMATCH: more event or checkpoint lines than the end line counts.
 * - BELOW_PINNED_SIZE: the file ends before a pinned tree head's size, or its checkpoints sign
 *   fewer events than `minSize` (unsigned events do not count): events were cut or the log was
 *   rolled back. Index: the first event index missing (or not signed).
 * - PIN_ROOT_MISMATCH: the events up to a pinned size do not hash to the pinned root: the history
 *   seen then was rewritten. Index: the first event of the file (a pin gives one root: only the
 *   range can be named).
 * - PIN_UNCHECKABLE: a pinned size lies within the pruned events, or the saved checkpoint's key is
 *   neither trusted nor declared in the file. Line 0 for the latter.
 * - PIN_BAD_CHECKPOINT: the saved checkpoint is for another log, signed by an untrusted key, or
 *   its signature fails. Line 0: the problem is with the pin.
 */
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

/** A failure as a check found it; the verifier fills in the line (the one it is reading) by default. */
export interface VerifyFailure {
  reason: VerifyCode;
  index: number | null;
  message: string;
  line?: number;
  eventId?: string | null;
}

/** How to verify an export (verify.ts `verifyExport`). */
export interface VerifyOptions {
  /** Kids (RFC 7638 thumbprints) of the keys to trust; any other key in the file is refused. */
  trustedKids?: Iterable<string>;
  /**
   * Keys to trust, as in the server's JWKS: their kids are trusted as `trustedKids` are, and a
   * saved checkpoint (`pins.checkpoint`) is checked against them.
   */
  trustedKeys?: readonly TrustedKey[];
  /** What the auditor saw of the log before: the export must agree (verify-pins.ts). */
  pins?: VerifyPins;
  /**
   * Worker threads that scan and hash event lines while this thread reads the input and checks
   * order, links and signatures: 0 for none. By default one per CPU, at most 2, started only once
   * the input passes 32 MiB (smaller files are done sooner without them). The verdict, code, index
   * and report are the same whatever the number.
   */
  threads?: number;
  /** Bytes of complete lines scanned at a time (default 1 MiB); a tuning knob for tests. */
  batchBytes?: number;
  /** The worker threads' module (default verify-worker.ts); tests give one that fails. */
  workerModule?: URL;
}
