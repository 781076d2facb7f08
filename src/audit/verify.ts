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
 * Problem codes (`VerifyProblem.reason`) and the index each one reports: see verify-types.ts.
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
 * The parts: the reading of lines, order, links and the report here; the keys and checkpoint
 * signatures in verify-keys.ts; the auditor's pins in verify-pin-check.ts; the leaf hashes stated
 * on event lines in verify-leaves.ts.
 */
import { hash } from 'node:crypto';
import { canonicalBytes, isCanonicalTextOf } from './canonical.ts';
import { checkpointBytes, type Checkpoint } from './checkpoint.ts';
import type { CheckpointLine, EndLine, KeyLine, PrunedLine } from './export-format.ts';
import { MerkleFrontier, leafHash, leafHashOfText } from './merkle.ts';
import { isEventOfIndex, laidOutEvent, parseHeader, parseLine } from './verify-lines.ts';
import type { EventRun } from './verify-scan.ts';
import { feedChunks } from './verify-feed.ts';
import { VerifierKeys } from './verify-keys.ts';
import { StatedLeaves } from './verify-leaves.ts';
import { PinCheck } from './verify-pin-check.ts';
import { verdictOf } from './verify-pins.ts';
import type { VerifyCode, VerifyFailure, VerifyOptions, VerifyProblem, VerifyReport } from './verify-types.ts';

export type { VerifyCode, VerifyOptions, VerifyProblem, VerifyReport } from './verify-types.ts';

/** Lines scanned past a gap to tell a missing event from a late one. */
const REORDER_LOOKAHEAD = 10_000;

interface PendingGap {
  expected: number;
  found: number;
  line: number;
  scanned: number;
}

class ExportVerifier {
  #line = 0;
  #phase: 'header' | 'body' | 'ended' = 'header';
  #log: string | null = null;
  #keys: VerifierKeys;
  #pins: PinCheck;
  #leaves = new StatedLeaves();
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
  #end: EndLine | null = null;

  constructor(options: VerifyOptions) {
    this.#keys = new VerifierKeys(options.trustedKids, options.trustedKeys);
    this.#pins = new PinCheck(options.pins ?? {}, this.#keys);
  }

  /** Checks the tree heads pinned at the tree's size, now that it has grown to it; true once failed. */
  #checkRootPins(): boolean {
    return this.#failWith(this.#pins.rootPins(this.#tree, this.#firstIndex, this.#pruned !== null));
  }

  /** Fails the file; returns true so callers can `return this.#fail(...)` to stop. */
  #fail(reason: VerifyCode, index: number | null, message: string, line = this.#line, eventId: string | null = null): true {
    this.#problem ??= eventId === null ? { reason, index, line, message } : { reason, index, line, message, eventId };
    return true;
  }

  /** Fails the file with what a check found, if anything; true once failed. */
  #failWith(failure: VerifyFailure | null): boolean {
    if (failure === null) return false;
    return this.#fail(failure.reason, failure.index, failure.message, failure.line ?? this.#line, failure.eventId ?? null);
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
    if (this.#problem !== null || this.#phase !== 'body' || this.#notJson !== null || this.#gap !== null || this.#anchorPending || this.#leaves.differing) return false;
    if (run.first !== this.#tree.size || run.count < 1 || this.#pins.runCrossesPin(run)) return false;
    const heads = Buffer.from(run.heads, 'latin1');
    for (let i = 0; i < run.heights.length; i += 1) {
      this.#tree.appendSubtree(heads.subarray(i * 32, i * 32 + 32), run.heights[i] as number);
    }
    this.#started = true;
    this.#line += run.count;
    this.#events += run.count;
    this.#leaves.countEqual(run.leaves);
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

    const laidOut = laidOutEvent(text);
    if (laidOut !== null) return this.#readEvent(laidOut.index, laidOut.event, laidOut.text, undefined);
    const parsed = parseLine(text, this.#line);
    if ('notJson' in parsed) {
      this.#notJson = { line: this.#line, message: parsed.notJson };
      return false;
    }
    if ('invalid' in parsed) return this.#fail('MALFORMED_LINE', null, parsed.invalid);
    const line = parsed.line;
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
    const header = parseHeader(text);
    if ('bad' in header) return this.#fail('BAD_HEADER', null, header.bad);
    this.#log = header.log;
    this.#phase = 'body';
    return this.#failWith(this.#pins.atHeader(this.#log)) || this.#checkRootPins();
  }

  #readKey(line: KeyLine): boolean {
    const key = this.#keys.declare(line);
    if ('reason' in key) return this.#failWith(key);
    return this.#failWith(this.#pins.withKeyLine(line.kid, key));
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
    if (stated !== undefined || this.#leaves.differing) this.#leaves.compare(this.#tree, index, this.#line, event, leaf, stated);
    this.#tree.append(leaf);
    this.#events += 1;
    this.#firstIndex ??= index;
    if (typeof event.time === 'string') {
      this.#firstTime ??= event.time;
      this.#lastTime = event.time;
    }
    return this.#checkRootPins();
  }

  /** After a jump in the indexes: does the missing one come later (reordering) or never (gap)? */
  #scanForLateEvent(text: string): boolean {
    const gap = this.#gap as PendingGap;
    gap.scanned += 1;
    if (isEventOfIndex(text, gap.expected)) {
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
    const signed = checkpointBytes(cp);
    if (this.#failWith(this.#keys.checkSignature(cp, signed, line.signature, at, from))) return true;

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
      return this.#failWith(this.#leaves.rangeFailure(cp, from, this.#line));
    }
    if (this.#leaves.differing) return this.#failWith(this.#leaves.leafFailure(`the events hash to the root signed on line ${this.#line}, so the stated hash was changed`));
    this.#leaves.nextRange();

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
    if (this.#leaves.differing) return this.#failWith(this.#leaves.leafFailure('no checkpoint covers it, so whether the event or the stated hash was changed cannot be told'));
    return false;
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
        this.#failWith(this.#pins.sizePins(this.#tree.size, this.#coveredSize));
      }
    }
    const size = this.#tree.size;
    const ok = this.#problem === null;
    const report: VerifyReport = {
      ok,
      verdict: verdictOf(!ok, this.#keys.trusted !== null),
      proven: ok ? this.#pins.proven : [],
      unproven: ok ? this.#pins.unproven(size, this.#usedKids, this.#end) : [],
      log: this.#log,
      events: this.#events,
      firstIndex: this.#firstIndex,
      lastIndex: this.#firstIndex === null ? null : size - 1,
      checkpoints: this.#checkpoints,
      coveredSize: this.#coveredSize,
      uncovered: this.#firstIndex !== null && size > this.#coveredSize ? { from: this.#coveredSize, to: size - 1 } : null,
      keys: [...this.#usedKids],
      keysPinned: this.#keys.trusted !== null,
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
