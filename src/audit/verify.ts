/**
 * The offline verifier of an audit export (AUDIT-3; the format is in export-format.ts). It
 * reads the file once, keeps only the Merkle frontier and the declared keys (memory stays flat
 * whatever the file's length), and stops at the first problem.
 *
 * It imports nothing that reaches a database or the network, so an auditor can run it on a
 * machine that has only the export and, ideally, the server's public keys.
 *
 * What is checked: the header's format; each key's kid is the thumbprint of its JWK, and the key
 * is pinned when trusted keys are given; events come in index order with `seq` equal to the
 * index; each checkpoint is for the header's log, signed by a declared key, linked to the one
 * before it (the first one's `previous` is null, except after a pruned line, where it points at
 * a pruned checkpoint and is reported as the anchor), sits right after the event of index
 * size-1, and signs the root recomputed from the events; a leaf hash stated on an event line
 * against the event's own hash; the end line's counts; the auditor's pins (verify-pins.ts): a
 * minimum signed size, tree heads seen before (the root recomputed at their size) and a saved
 * checkpoint (its signature, and the root at its size).
 *
 * The verdict (`VerifyReport.verdict`) is VERIFIED only with pinned keys and every pin met;
 * without keys a consistent file is CONSISTENT-BUT-UNPINNED. `unproven` says what the file and
 * pins do not show: the keys when not pinned, and always that the log ends where the file ends
 * (the end line is not signed: a cut right after a checkpoint, with the end line rewritten to
 * match, is as consistent as the whole; only a pinned size bounds it).
 *
 * Problem codes (`VerifyProblem.reason`), and the index each one reports:
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
 *
 * Speed (bench/README.md, "Audit export verification"; the reading is in verify-feed.ts): byte
 * streams are read in batches of complete lines. Event lines already in the exact canonical
 * layout the exporter writes are checked by a single-pass scanner (verify-scan.ts) and hashed from their own bytes, in runs
 * whose Merkle subtrees are put together here; on large inputs worker threads do that part
 * (verify-worker.ts) while this thread reads, applies results in file order and checks
 * checkpoints. Every other line, and any run that does not continue the file exactly where it
 * stands, goes through the general path line by line, so the verdict, code, index and message
 * are the same as without the scanner (test/audit/verify.test.ts compares both on random
 * tampered exports).
 *
 * Events after the last checkpoint are not covered by any signature: the file still verifies
 * (the rest decides), and the report's `uncovered` range and `formatReport` say plainly that
 * those events could have been changed, added or removed without detection.
 *
 * size-exception: the offline verifier (AUDIT-3), which auditors read as one file that imports
 * nothing reaching a database or the network; split by concern is pending (issue 17); no measured
 * reason to keep it whole.
 */
import { createPublicKey, hash, verify, type KeyObject } from 'node:crypto';
import { ed25519Thumbprint, verifyEd25519 } from '../crypto/signing.ts';
import { canonicalBytes, isCanonicalTextOf } from './canonical.ts';
import { checkpointBytes, verifyCheckpointSignature, type Checkpoint, type SignedCheckpoint } from './checkpoint.ts';
import {
  EXPORT_FORMAT,
  exportLineSchema,
  headerLineSchema,
  type CheckpointLine,
  type EndLine,
  type KeyLine,
  type PrunedLine,
} from './export-format.ts';
import { MerkleFrontier, leafHash, leafHashOfText } from './merkle.ts';
import type { EventRun } from './verify-scan.ts';
import { feedChunks } from './verify-feed.ts';
import { checkSavedCheckpoint, rootPinsOf, verdictOf, type RootPin, type TrustedKey, type VerifyPins } from './verify-pins.ts';
import type { VerifyCode, VerifyProblem, VerifyReport } from './verify-types.ts';

export type { VerifyCode, VerifyProblem, VerifyReport } from './verify-types.ts';

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

/** Lines scanned past a gap to tell a missing event from a late one. */
const REORDER_LOOKAHEAD = 10_000;

// The layout `encodeExportLine` gives an event line: canonical JSON sorts the members as
// event, index, type. Lines in this layout skip the general parse and schema.
const EVENT_HEAD = '{"event":';
const EVENT_INDEX = ',"index":';
const EVENT_TAIL = ',"type":"event"}';
const DIGITS = /^(?:0|[1-9][0-9]{0,15})$/;

interface PendingGap {
  expected: number;
  found: number;
  line: number;
  scanned: number;
}

interface PublicKey {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
}

class ExportVerifier {
  #line = 0;
  #phase: 'header' | 'body' | 'ended' = 'header';
  #log: string | null = null;
  #keys = new Map<string, PublicKey>();
  /** Keys that already verified a signature, loaded once (loading costs more than verifying). */
  #loadedKeys = new Map<string, KeyObject>();
  #trusted: ReadonlySet<string> | null;
  #tree = new MerkleFrontier();
  #firstIndex: number | null = null;
  #events = 0;
  #checkpointLines = 0;
  #checkpoints = 0;
  #coveredSize = 0;
  #previousHash: string | null = null;
  #previousLine = 0;
  #usedKids: string[] = [];
  #pruned: { upTo: number; anchor: string | null } | null = null;
  #anchorPending = false;
  #started = false;
  #firstTime: string | null = null;
  #lastTime: string | null = null;
  #problem: VerifyProblem | null = null;
  /** A line that was not JSON: malformed if more follows, a cut-off last line if not. */
  #notJson: { line: number; message: string } | null = null;
  #gap: PendingGap | null = null;
  /** Trusted keys by kid, when given as keys (a saved checkpoint is checked against them). */
  #trustedKeys = new Map<string, TrustedKey>();
  /** Tree heads the export must reproduce, by size, and the next one to check. */
  #rootPins: RootPin[];
  #nextPin = 0;
  #minSize: number | null;
  #saved: SignedCheckpoint | null;
  #savedChecked = false;
  #proven: string[] = [];
  #end: EndLine | null = null;
  /**
   * Leaf hashes stated on event lines since the last checkpoint, and, from the first one that is
   * not its event's hash on, the tree of the stated hashes (the event's own where none is stated).
   */
  #statedInRange = 0;
  #statedTree: MerkleFrontier | null = null;
  #leafMismatch: { index: number; line: number; id: string | null } | null = null;

  constructor(options: VerifyOptions) {
    const trusted = options.trustedKids === undefined && options.trustedKeys === undefined ? null : new Set(options.trustedKids ?? []);
    for (const key of options.trustedKeys ?? []) {
      const kid = ed25519Thumbprint(key.x);
      trusted?.add(kid);
      this.#trustedKeys.set(kid, key);
    }
    this.#trusted = trusted;
    const pins: VerifyPins = options.pins ?? {};
    this.#rootPins = rootPinsOf(pins);
    this.#minSize = pins.minSize ?? null;
    this.#saved = pins.checkpoint ?? null;
  }

  /** Fails on a pin rather than a line of the file (line 0). */
  #failPin(reason: VerifyCode, message: string): true {
    return this.#fail(reason, null, message, 0);
  }

  /** The saved checkpoint, once the header names the log: for this log, and signed by a trusted key. */
  #checkSavedAtHeader(): boolean {
    const saved = this.#saved;
    if (saved === null) return false;
    if (saved.checkpoint.log !== this.#log) {
      return this.#failPin('PIN_BAD_CHECKPOINT', `the saved checkpoint is for log ${JSON.stringify(saved.checkpoint.log)}, not ${JSON.stringify(this.#log)}`);
    }
    const why = checkSavedCheckpoint(saved, this.#trustedKeys.get(saved.checkpoint.kid), this.#trusted);
    if (why === undefined) return false; // checked against the export's key line of that kid
    if (why !== null) return this.#failPin('PIN_BAD_CHECKPOINT', why);
    this.#savedChecked = true;
    this.#proven.push(`the saved checkpoint of size ${saved.checkpoint.size} carries a valid signature by trusted key ${saved.checkpoint.kid}`);
    return false;
  }

  /** Unpinned keys: the saved checkpoint is checked against the export's key of its kid. */
  #checkSavedWithKeyLine(kid: string, key: PublicKey): boolean {
    const saved = this.#saved;
    if (saved === null || this.#savedChecked || saved.checkpoint.kid !== kid) return false;
    if (!verifyCheckpointSignature(saved, key)) return this.#failPin('PIN_BAD_CHECKPOINT', `the saved checkpoint does not carry a valid signature by key ${kid}`);
    this.#savedChecked = true;
    this.#proven.push(`the saved checkpoint of size ${saved.checkpoint.size} carries a valid signature by key ${kid}, as declared in the export (not pinned)`);
    return false;
  }

  /** Whether a run of events would carry the tree past a pinned size without stopping at it. */
  #runCrossesPin(run: EventRun): boolean {
    const pin = this.#rootPins[this.#nextPin];
    return pin !== undefined && pin.size > run.first && pin.size < run.first + run.count;
  }

  /** Checks the tree heads pinned at the tree's size, now that it has grown to it; true once failed. */
  #checkRootPins(): boolean {
    const size = this.#tree.size;
    for (let pin = this.#rootPins[this.#nextPin]; pin !== undefined && pin.size <= size; pin = this.#rootPins[this.#nextPin]) {
      this.#nextPin += 1;
      if (pin.size < size) {
        return this.#fail('PIN_UNCHECKABLE', null, `${pin.source} is within the pruned events 0..${size - 1}: this export cannot show that it extends it`);
      }
      if (this.#tree.root().toString('base64url') !== pin.root) {
        const first = this.#firstIndex;
        if (first === null || pin.size === 0) {
          return this.#fail('PIN_ROOT_MISMATCH', null, `the ${this.#pruned === null ? 'empty tree' : 'pruned frontier'} does not give the root of ${pin.source}`);
        }
        return this.#fail(
          'PIN_ROOT_MISMATCH',
          first,
          `events ${first}..${size - 1} do not hash to the root of ${pin.source}: the history up to index ${size - 1} is not the one seen then (rewritten, or another log); only the range can be named, since the pin gives one root`,
        );
      }
      this.#proven.push(`${pin.source}: the first ${size} events of this export hash to its root`);
    }
    return false;
  }

  /** Fails the file; returns true so callers can `return this.#fail(...)` to stop. */
  #fail(reason: VerifyCode, index: number | null, message: string, line = this.#line, eventId: string | null = null): true {
    this.#problem ??= eventId === null ? { reason, index, line, message } : { reason, index, line, message, eventId };
    return true;
  }

  /** Whether the file has failed: nothing more needs reading. */
  get failed(): boolean {
    return this.#problem !== null;
  }

  /**
   * Takes a run of event lines the scanner read (verify-scan.ts): each canonical, in the writer's
   * layout, with `seq` equal to its index, indexes consecutive. False when the run cannot be taken
   * whole as it stands (it does not start at the next index, or a pending state needs each line):
   * the caller then feeds its lines to `accept`, which decides exactly as for any other line.
   */
  acceptRun(run: EventRun): boolean {
    if (this.#problem !== null || this.#phase !== 'body' || this.#notJson !== null || this.#gap !== null || this.#anchorPending || this.#statedTree !== null) return false;
    if (run.first !== this.#tree.size || run.count < 1 || this.#runCrossesPin(run)) return false;
    const heads = Buffer.from(run.heads, 'latin1');
    for (let i = 0; i < run.heights.length; i += 1) {
      this.#tree.appendSubtree(heads.subarray(i * 32, i * 32 + 32), run.heights[i] as number);
    }
    this.#started = true;
    this.#line += run.count;
    this.#events += run.count;
    this.#statedInRange += run.leaves;
    this.#firstIndex ??= run.first;
    if (run.firstTime !== null) {
      this.#firstTime ??= run.firstTime;
      this.#lastTime = run.lastTime ?? run.firstTime;
    }
    this.#checkRootPins();
    return true;
  }

  /** Line number of the next line, for a caller that cannot decode it. */
  failNextLine(reason: VerifyCode, message: string): void {
    this.#fail(reason, null, message, this.#line + 1);
  }

  /** Reads one line (without its "\n"); true once the file has failed. */
  accept(text: string): boolean {
    if (this.#problem !== null) return true;
    this.#line += 1;
    if (this.#notJson !== null) return this.#fail('MALFORMED_LINE', null, this.#notJson.message, this.#notJson.line);
    if (this.#gap !== null) return this.#scanForLateEvent(text);
    if (this.#phase === 'ended') return this.#fail('OUT_OF_PLACE', null, `line ${this.#line} follows the end line`);
    if (this.#phase === 'header') return this.#readHeader(text);

    if (text.startsWith(EVENT_HEAD) && text.endsWith(EVENT_TAIL)) {
      const at = text.lastIndexOf(EVENT_INDEX);
      const digits = text.slice(at + EVENT_INDEX.length, text.length - EVENT_TAIL.length);
      if (at > 0 && DIGITS.test(digits)) {
        const eventText = text.slice(EVENT_HEAD.length, at);
        let event: unknown;
        try {
          event = JSON.parse(eventText);
        } catch {
          event = undefined;
        }
        const index = Number(digits);
        if (typeof event === 'object' && event !== null && !Array.isArray(event) && Number.isSafeInteger(index)) {
          return this.#readEvent(index, event as Record<string, unknown>, eventText, undefined);
        }
      }
    }

    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.#notJson = { line: this.#line, message: `line ${this.#line} is not JSON: ${(err as Error).message}` };
      return false;
    }
    const parsed = exportLineSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
      return this.#fail('MALFORMED_LINE', null, `line ${this.#line} is not a valid export line${where}: ${issue?.message ?? 'invalid'}`);
    }
    const line = parsed.data;
    switch (line.type) {
      case 'header':
        return this.#fail('OUT_OF_PLACE', null, `a second header on line ${this.#line}`);
      case 'key':
        return this.#readKey(line);
      case 'pruned':
        return this.#readPruned(line);
      case 'event':
        return this.#readEvent(line.index, line.event, null, line.leaf);
      case 'checkpoint':
        return this.#readCheckpoint(line);
      case 'end':
        return this.#readEnd(line);
    }
  }

  #readHeader(text: string): boolean {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.#fail('BAD_HEADER', null, 'the first line is not JSON: not an audit export');
    }
    const parsed = headerLineSchema.safeParse(value);
    if (!parsed.success) {
      const format = (value as { format?: unknown } | null)?.format;
      const detail = typeof format === 'string' && format !== EXPORT_FORMAT ? `format ${JSON.stringify(format)} is not ${EXPORT_FORMAT}` : 'not a valid header line';
      return this.#fail('BAD_HEADER', null, `the first line is ${detail}`);
    }
    this.#log = parsed.data.log;
    this.#phase = 'body';
    return this.#checkSavedAtHeader() || this.#checkRootPins();
  }

  #readKey(line: KeyLine): boolean {
    const { kid, jwk } = line;
    if (this.#keys.has(kid)) return this.#fail('BAD_KEY', null, `key ${kid} is declared twice`);
    if (ed25519Thumbprint(jwk.x) !== kid || (jwk.kid !== undefined && jwk.kid !== kid)) {
      return this.#fail('BAD_KEY', null, `key ${kid} is not the thumbprint of its JWK`);
    }
    if (this.#trusted !== null && !this.#trusted.has(kid)) {
      return this.#fail('UNTRUSTED_KEY', null, `key ${kid} is not among the trusted keys`);
    }
    this.#keys.set(kid, { kty: jwk.kty, crv: jwk.crv, x: jwk.x });
    return this.#checkSavedWithKeyLine(kid, { kty: jwk.kty, crv: jwk.crv, x: jwk.x });
  }

  #readPruned(line: PrunedLine): boolean {
    if (this.#started || this.#pruned !== null) return this.#fail('OUT_OF_PLACE', null, 'a pruned line after events, checkpoints or another pruned line');
    if (line.frontier.size !== line.upTo) return this.#fail('MALFORMED_LINE', null, `the pruned frontier is of size ${line.frontier.size}, not ${line.upTo}`);
    try {
      this.#tree = MerkleFrontier.from(
        line.frontier.hashes.map((h) => Buffer.from(h, 'base64url')),
        line.frontier.size,
      );
    } catch (err) {
      return this.#fail('MALFORMED_LINE', null, `the pruned frontier is not valid: ${(err as Error).message}`);
    }
    this.#pruned = { upTo: line.upTo, anchor: null };
    this.#anchorPending = true;
    this.#coveredSize = line.upTo;
    return this.#checkRootPins();
  }

  #readEvent(index: number, event: Record<string, unknown>, text: string | null, stated: string | undefined): boolean {
    this.#started = true;
    if (this.#anchorPending) {
      return this.#fail('PRUNED_UNANCHORED', index, `an event before the checkpoint of size ${this.#pruned?.upTo} that must follow the pruned line`);
    }
    const expected = this.#tree.size;
    if (index !== expected) {
      if (index < expected) return this.#fail('SEQ_DUPLICATE', index, `index ${index} appears again on line ${this.#line}, after index ${expected - 1}`);
      this.#gap = { expected, found: index, line: this.#line, scanned: 0 };
      return false;
    }
    if (event.seq !== index) {
      return this.#fail('SEQ_MISMATCH', index, `the event on the line of index ${index} carries seq ${JSON.stringify(event.seq) ?? 'none'}`);
    }
    let leaf: Buffer;
    try {
      // Already canonical as written: hash the text itself, sparing a canonicalization.
      leaf = text !== null && isCanonicalTextOf(text, event) ? leafHashOfText(text) : leafHash(canonicalBytes(event));
    } catch (err) {
      return this.#fail('MALFORMED_LINE', index, `the event of index ${index} has no canonical form: ${(err as Error).message}`);
    }
    if (stated !== undefined || this.#statedTree !== null) this.#compareLeaf(index, event, leaf, stated);
    this.#tree.append(leaf);
    this.#events += 1;
    this.#firstIndex ??= index;
    if (typeof event.time === 'string') {
      this.#firstTime ??= event.time;
      this.#lastTime = event.time;
    }
    return this.#checkRootPins();
  }

  /**
   * Notes a leaf hash stated on an event line. The first one that differs from the event's own
   * starts the tree of stated hashes: at the checkpoint, if that tree gives the signed root, the
   * stated hashes are the original ones, and the first differing event is the one modified.
   */
  #compareLeaf(index: number, event: Record<string, unknown>, leaf: Buffer, stated: string | undefined): void {
    if (stated !== undefined) this.#statedInRange += 1;
    if (this.#statedTree === null) {
      if (stated === undefined || stated === leaf.toString('base64url')) return;
      const { hashes, size } = this.#tree.toJSON();
      this.#statedTree = MerkleFrontier.from(
        hashes.map((h) => Buffer.from(h, 'base64url')),
        size,
      );
      this.#leafMismatch = { index, line: this.#line, id: typeof event.id === 'string' ? event.id : null };
    }
    this.#statedTree.append(stated === undefined ? leaf : Buffer.from(stated, 'base64url'));
  }

  /** The events since the last checkpoint do not give its root: name the event when the stated leaf hashes allow it. */
  #failRange(cp: Checkpoint, from: number): true {
    const range = cp.size > from ? `events ${from}..${cp.size - 1}` : `the events before index ${cp.size}`;
    const mismatch = this.#leafMismatch;
    if (this.#statedTree !== null && mismatch !== null && this.#statedTree.root().toString('base64url') === cp.root) {
      const id = mismatch.id === null ? '' : ` (id ${mismatch.id})`;
      return this.#fail(
        'EVENT_MODIFIED',
        mismatch.index,
        `the event of index ${mismatch.index}${id} on line ${mismatch.line} was modified: it does not hash to the leaf hash stated on its line, and the stated leaf hashes of ${range} give the root signed on line ${this.#line}`,
        mismatch.line,
        mismatch.id,
      );
    }
    const count = cp.size - from;
    let why: string;
    if (this.#statedTree !== null) why = 'the leaf hashes stated on their lines do not give the signed root either (they were changed too)';
    else if (this.#statedInRange === 0) why = 'the file states no leaf hashes for these events';
    else if (this.#statedInRange < count) why = `${count - this.#statedInRange} of these events state no leaf hash, and the others each hash to the one they state`;
    else why = 'each event hashes to the leaf hash stated on its line, so those were rewritten with the events';
    return this.#fail(
      'ROOT_MISMATCH',
      from,
      `${range} do not hash to the root signed on line ${this.#line}: one was modified, or events were added or removed and renumbered; only the range can be named: ${why}`,
    );
  }

  /** A stated leaf hash that is not its event's, where the events are not shown to be changed. */
  #failLeaf(why: string): true {
    const mismatch = this.#leafMismatch as { index: number; line: number; id: string | null };
    const id = mismatch.id === null ? '' : ` (id ${mismatch.id})`;
    return this.#fail('LEAF_MISMATCH', mismatch.index, `the leaf hash stated on line ${mismatch.line} is not the hash of the event of index ${mismatch.index}${id}: ${why}`, mismatch.line, mismatch.id);
  }

  /** After a jump in the indexes: does the missing one come later (reordering) or never (gap)? */
  #scanForLateEvent(text: string): boolean {
    const gap = this.#gap as PendingGap;
    gap.scanned += 1;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = null;
    }
    const line = value as { type?: unknown; index?: unknown } | null;
    if (line?.type === 'event' && line.index === gap.expected) {
      return this.#fail(
        'SEQ_OUT_OF_ORDER',
        gap.expected,
        `index ${gap.expected} comes on line ${this.#line}, after index ${gap.found} on line ${gap.line}: events are out of order`,
        gap.line,
      );
    }
    if (gap.scanned >= REORDER_LOOKAHEAD) return this.#failGap();
    return false;
  }

  #failGap(): true {
    const gap = this.#gap as PendingGap;
    const after = gap.expected > (this.#firstIndex ?? gap.expected) ? `index ${gap.expected - 1}` : 'the start';
    return this.#fail('SEQ_GAP', gap.expected, `index ${gap.expected} is missing: index ${gap.found} follows ${after}`, gap.line);
  }

  #readCheckpoint(line: CheckpointLine): boolean {
    this.#started = true;
    this.#checkpointLines += 1;
    const cp: Checkpoint = line.checkpoint;
    const from = this.#coveredSize;
    const at = `the checkpoint of size ${cp.size} on line ${this.#line}`;
    if (cp.log !== this.#log) return this.#fail('LOG_MISMATCH', from, `${at} is for log ${JSON.stringify(cp.log)}, not ${JSON.stringify(this.#log)}`);
    const key = this.#keys.get(cp.kid);
    if (key === undefined) return this.#fail('UNKNOWN_KEY', from, `${at} is signed by key ${cp.kid}, which no key line before it declares`);
    const signed = checkpointBytes(cp);
    const signature = Buffer.from(line.signature, 'base64url');
    const loaded = this.#loadedKeys.get(cp.kid);
    let valid: boolean;
    if (loaded !== undefined) {
      // The same check as verifyEd25519, whose JWK checks this key already passed.
      try {
        valid = signature.length === 64 && verify(null, signed, loaded, signature);
      } catch {
        valid = false;
      }
    } else {
      try {
        valid = verifyEd25519(key, signed, signature);
      } catch (err) {
        return this.#fail('BAD_KEY', from, `key ${cp.kid} cannot be used: ${(err as Error).message}`);
      }
      this.#loadedKeys.set(cp.kid, createPublicKey({ key: { kty: key.kty, crv: key.crv, x: key.x }, format: 'jwk' }));
    }
    if (!valid) return this.#fail('BAD_SIGNATURE', from, `${at} does not carry a valid signature by key ${cp.kid}`);

    if (this.#anchorPending) {
      const upTo = this.#pruned?.upTo ?? 0;
      if (cp.size !== upTo) return this.#fail('PRUNED_UNANCHORED', from, `${at} is not the checkpoint of size ${upTo} that must follow the pruned line`);
    } else if (cp.previous !== this.#previousHash) {
      const expected = this.#previousHash === null ? 'null, as the first checkpoint of the log' : `the hash of the checkpoint on line ${this.#previousLine}`;
      return this.#fail('CHAIN_BROKEN', from, `${at} links to ${cp.previous ?? 'null'}, not to ${expected}: a checkpoint is missing or out of place`);
    }

    const read = this.#tree.size;
    if (cp.size > read) return this.#fail('SEQ_GAP', read, `${at} covers ${cp.size} events, but index ${read} is missing before it`);
    if (cp.size < read) return this.#fail('CHECKPOINT_MISPLACED', cp.size, `${at} comes after index ${read - 1}: an event is before it that it does not cover`);
    if (this.#tree.root().toString('base64url') !== cp.root) {
      if (this.#anchorPending) return this.#fail('ROOT_MISMATCH', null, `the pruned frontier does not give the root that ${at} signs`);
      return this.#failRange(cp, from);
    }
    if (this.#statedTree !== null) return this.#failLeaf(`the events hash to the root signed on line ${this.#line}, so the stated hash was changed`);
    this.#statedInRange = 0;

    if (this.#anchorPending && this.#pruned !== null) this.#pruned.anchor = cp.previous;
    this.#anchorPending = false;
    this.#coveredSize = cp.size;
    // checkpointHash(cp), from the bytes already at hand: SHA-256 of the canonical checkpoint.
    this.#previousHash = hash('sha256', signed, 'base64url');
    this.#previousLine = this.#line;
    this.#checkpoints += 1;
    if (!this.#usedKids.includes(cp.kid)) this.#usedKids.push(cp.kid);
    return false;
  }

  #readEnd(line: EndLine): boolean {
    this.#phase = 'ended';
    this.#end = line;
    const next = this.#tree.size;
    if (this.#anchorPending) return this.#fail('PRUNED_UNANCHORED', null, 'the file ends before the checkpoint that must follow the pruned line');
    if (line.events > this.#events) {
      return this.#fail('TRUNCATED', next, `the end line counts ${line.events} events, the file has ${this.#events}: events from index ${next} on are missing`);
    }
    if (line.checkpoints > this.#checkpointLines) {
      return this.#fail('TRUNCATED', this.#coveredSize, `the end line counts ${line.checkpoints} checkpoints, the file has ${this.#checkpointLines}`);
    }
    if (line.events < this.#events || line.checkpoints < this.#checkpointLines) {
      return this.#fail('TRAILER_MISMATCH', null, `the end line counts ${line.events} events and ${line.checkpoints} checkpoints, the file has ${this.#events} and ${this.#checkpointLines}`);
    }
    if (this.#checkpoints === 0) return this.#fail('NO_CHECKPOINT', null, 'the file has no checkpoint: nothing in it is signed');
    if (this.#statedTree !== null) return this.#failLeaf('no checkpoint covers it, so whether the event or the stated hash was changed cannot be told');
    return false;
  }

  /** Once the file has ended: it reaches every pinned size, and the saved checkpoint was checked. */
  #checkSizePins(): boolean {
    const size = this.#tree.size;
    const pin = this.#rootPins[this.#nextPin];
    if (pin !== undefined) {
      const ends = size > 0 ? `ends at index ${size - 1}` : 'has no event';
      return this.#fail('BELOW_PINNED_SIZE', size, `${pin.source} is of size ${pin.size}, but this export ${ends}: events from index ${size} on were cut, or the log was rolled back`);
    }
    if (this.#minSize !== null) {
      const signed = this.#coveredSize;
      if (signed < this.#minSize) {
        const tail = size > signed ? ` (events ${signed}..${size - 1} are not covered by a signed checkpoint)` : '';
        return this.#fail('BELOW_PINNED_SIZE', signed, `the export's checkpoints sign ${signed} events${tail}, fewer than --min-size ${this.#minSize}: events were cut after its last checkpoint, or the log was rolled back`);
      }
      this.#proven.push(`--min-size ${this.#minSize}: the export's checkpoints sign ${signed} events`);
    }
    if (this.#saved !== null && !this.#savedChecked) {
      return this.#failPin('PIN_UNCHECKABLE', `no key ${this.#saved.checkpoint.kid} is declared in the export or given with --keys: the saved checkpoint's signature cannot be checked`);
    }
    return false;
  }

  /** What a file that verified still does not show, with these keys and pins. */
  #unproven(): string[] {
    const out: string[] = [];
    if (this.#trusted === null) {
      out.push(`that the keys are the server's: none were pinned (--keys), so a rewrite re-signed with a new key cannot be excluded; this file is signed by ${this.#usedKids.join(', ') || 'no key'}`);
    }
    const size = this.#tree.size;
    const pinned = Math.max(this.#minSize ?? 0, ...this.#rootPins.map((p) => p.size));
    const end = this.#end === null ? 'the end line' : `the end line (${this.#end.events} events, ${this.#end.checkpoints} checkpoints)`;
    if (this.#minSize === null && this.#rootPins.length === 0) {
      out.push(
        `that the log ends at index ${size - 1}: ${end} is not signed, so events after the last checkpoint could have been cut with the end line rewritten to match; pin a size with --min-size, --size and --root, or --checkpoint`,
      );
    } else {
      out.push(`that the log ends at index ${size - 1}: the pins show only that it has at least ${pinned} events, and ${end} is not signed, so events after index ${size - 1} could have been cut`);
    }
    return out;
  }

  /** The report once the input has ended (or the file failed). */
  finish(): VerifyReport {
    if (this.#problem === null) {
      const next = this.#tree.size;
      if (this.#notJson !== null) {
        this.#fail('TRUNCATED', next, `the last line is cut off (${this.#notJson.message})`, this.#notJson.line);
      } else if (this.#gap !== null) {
        this.#failGap();
      } else if (this.#phase === 'header') {
        this.#fail('TRUNCATED', null, 'the file is empty', 1);
      } else if (this.#phase !== 'ended') {
        this.#fail('TRUNCATED', next, `the file ends after line ${this.#line} without its end line: it was cut short, events from index ${next} on may be missing`);
      } else {
        this.#checkSizePins();
      }
    }
    const size = this.#tree.size;
    const ok = this.#problem === null;
    const report: VerifyReport = {
      ok,
      verdict: verdictOf(!ok, this.#trusted !== null),
      proven: ok ? [...this.#proven] : [],
      unproven: ok ? this.#unproven() : [],
      log: this.#log,
      events: this.#events,
      firstIndex: this.#firstIndex,
      lastIndex: this.#firstIndex === null ? null : size - 1,
      checkpoints: this.#checkpoints,
      coveredSize: this.#coveredSize,
      uncovered: this.#firstIndex !== null && size > this.#coveredSize ? { from: this.#coveredSize, to: size - 1 } : null,
      keys: [...this.#usedKids],
      keysPinned: this.#trusted !== null,
      pruned: this.#pruned === null ? null : { ...this.#pruned },
      firstTime: this.#firstTime,
      lastTime: this.#lastTime,
    };
    if (this.#problem !== null) report.problem = { ...this.#problem };
    return report;
  }
}

function isReadableStream(input: unknown): input is NodeJS.ReadableStream {
  return typeof (input as { pipe?: unknown }).pipe === 'function';
}

/**
 * Verifies an audit export. `input` is either a stream of the file's bytes or text in any
 * chunking (`fs.createReadStream(file)`, `process.stdin`), or an async iterable of its lines
 * (`readline.createInterface`), each without or with its "\n".
 * @example const report = await verifyExport(createReadStream('audit.jsonl'), { trustedKids });
 */
export async function verifyExport(input: AsyncIterable<string> | NodeJS.ReadableStream, options: VerifyOptions = {}): Promise<VerifyReport> {
  const verifier = new ExportVerifier(options);
  if (isReadableStream(input)) {
    await feedChunks(input, verifier, options);
  } else {
    for await (const line of input) {
      if (verifier.accept(line.endsWith('\n') ? line.slice(0, -1) : line)) break;
    }
  }
  return verifier.finish();
}

export { formatReport } from './verify-report.ts';
export type { TrustedKey, Verdict, VerifyPins } from './verify-pins.ts';
