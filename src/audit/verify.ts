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
 * size-1, and signs the root recomputed from the events; the end line's counts.
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
 * - ROOT_MISMATCH: the events do not hash to the signed root. Without the original events the
 *   changed one cannot be named, so the index is the first of the range the checkpoint covers
 *   beyond the previous one, and the message gives the range.
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
 *
 * Events after the last checkpoint are not covered by any signature: the file still verifies
 * (the rest decides), and the report's `uncovered` range and `formatReport` say plainly that
 * those events could have been changed, added or removed without detection.
 */
import { ed25519Thumbprint, verifyEd25519 } from '../crypto/signing.ts';
import { canonicalBytes, isCanonicalTextOf } from './canonical.ts';
import { checkpointBytes, checkpointHash, type Checkpoint } from './checkpoint.ts';
import {
  EXPORT_FORMAT,
  exportLineSchema,
  headerLineSchema,
  type CheckpointLine,
  type EndLine,
  type KeyLine,
  type PrunedLine,
} from './export-format.ts';
import { MerkleFrontier, leafHash } from './merkle.ts';

/** Stable codes for what made a file fail; see the module comment for each. */
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
  | 'TRAILER_MISMATCH';

/** The first problem found. `index` is an event index (see VerifyCode), `line` is 1-based. */
export interface VerifyProblem {
  reason: VerifyCode;
  index: number | null;
  line: number;
  message: string;
}

export interface VerifyReport {
  /** True when the file verified; events in `uncovered` are still not vouched for. */
  ok: boolean;
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

export interface VerifyOptions {
  /** Kids (RFC 7638 thumbprints) of the keys to trust; any other key in the file is refused. */
  trustedKids?: Iterable<string>;
}

/** Lines scanned past a gap to tell a missing event from a late one. */
const REORDER_LOOKAHEAD = 10_000;
const MAX_LINE_BYTES = 16 * 1024 * 1024;

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

  constructor(options: VerifyOptions) {
    this.#trusted = options.trustedKids === undefined ? null : new Set(options.trustedKids);
  }

  /** Fails the file; returns true so callers can `return this.#fail(...)` to stop. */
  #fail(reason: VerifyCode, index: number | null, message: string, line = this.#line): true {
    this.#problem ??= { reason, index, line, message };
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
          return this.#readEvent(index, event as Record<string, unknown>, eventText);
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
        return this.#readEvent(line.index, line.event, null);
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
    return false;
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
    return false;
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
    return false;
  }

  #readEvent(index: number, event: Record<string, unknown>, text: string | null): boolean {
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
    if (text !== null && isCanonicalTextOf(text, event)) {
      // Already canonical as written: hash the text itself, sparing a canonicalization.
      this.#tree.appendText(text);
    } else {
      let leaf: Buffer;
      try {
        leaf = leafHash(canonicalBytes(event));
      } catch (err) {
        return this.#fail('MALFORMED_LINE', index, `the event of index ${index} has no canonical form: ${(err as Error).message}`);
      }
      this.#tree.append(leaf);
    }
    this.#events += 1;
    this.#firstIndex ??= index;
    if (typeof event.time === 'string') {
      this.#firstTime ??= event.time;
      this.#lastTime = event.time;
    }
    return false;
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
    let valid: boolean;
    try {
      valid = verifyEd25519(key, checkpointBytes(cp), Buffer.from(line.signature, 'base64url'));
    } catch (err) {
      return this.#fail('BAD_KEY', from, `key ${cp.kid} cannot be used: ${(err as Error).message}`);
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
      const range = cp.size > from ? `events ${from}..${cp.size - 1}` : `the events before index ${cp.size}`;
      return this.#fail('ROOT_MISMATCH', from, `${range} do not hash to the root signed on line ${this.#line}: one was modified, or events were added or removed and renumbered`);
    }

    if (this.#anchorPending && this.#pruned !== null) this.#pruned.anchor = cp.previous;
    this.#anchorPending = false;
    this.#coveredSize = cp.size;
    this.#previousHash = checkpointHash(cp);
    this.#previousLine = this.#line;
    this.#checkpoints += 1;
    if (!this.#usedKids.includes(cp.kid)) this.#usedKids.push(cp.kid);
    return false;
  }

  #readEnd(line: EndLine): boolean {
    this.#phase = 'ended';
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
      }
    }
    const size = this.#tree.size;
    const report: VerifyReport = {
      ok: this.#problem === null,
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

/** Feeds a stream of chunks (Buffers or strings) to the verifier as lines. */
async function feedChunks(stream: NodeJS.ReadableStream, verifier: ExportVerifier): Promise<void> {
  // ignoreBOM: a byte-order mark is kept, so it fails JSON parsing instead of vanishing.
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let carry: Buffer | string = Buffer.alloc(0);

  const acceptBytes = (bytes: Buffer): boolean => {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      verifier.failNextLine('MALFORMED_LINE', 'the line is not UTF-8');
      return true;
    }
    return verifier.accept(text);
  };

  /** Complete lines in `bytes` (which ends just before a "\n"); one decode for all of them. */
  const acceptBlock = (bytes: Buffer): boolean => {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      // Find the line at fault, reading the ones before it first.
      let start = 0;
      for (let nl = bytes.indexOf(10); ; nl = bytes.indexOf(10, start)) {
        const end = nl < 0 ? bytes.length : nl;
        if (acceptBytes(bytes.subarray(start, end))) return true;
        if (nl < 0) return false;
        start = nl + 1;
      }
    }
    return acceptText(text);
  };

  const acceptText = (text: string): boolean => {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      if (verifier.accept(text.slice(start, nl))) return true;
      start = nl + 1;
    }
    return verifier.accept(text.slice(start));
  };

  for await (const chunk of stream) {
    if (typeof chunk === 'string') {
      const last = chunk.lastIndexOf('\n');
      if (last < 0) {
        carry = (typeof carry === 'string' ? carry : carry.toString('utf8')) + chunk;
      } else {
        const head = (typeof carry === 'string' ? carry : carry.toString('utf8')) + chunk.slice(0, last);
        carry = chunk.slice(last + 1);
        if (acceptText(head)) return;
      }
    } else {
      const bytes: Buffer = carry.length === 0 ? chunk : Buffer.concat([typeof carry === 'string' ? Buffer.from(carry, 'utf8') : carry, chunk]);
      const last = bytes.lastIndexOf(10);
      if (last < 0) {
        carry = Buffer.from(bytes);
      } else {
        carry = Buffer.from(bytes.subarray(last + 1));
        if (acceptBlock(bytes.subarray(0, last))) return;
      }
    }
    if (carry.length > MAX_LINE_BYTES) {
      verifier.failNextLine('MALFORMED_LINE', `a line longer than ${MAX_LINE_BYTES} bytes`);
      return;
    }
  }
  if (carry.length > 0) {
    if (typeof carry === 'string') verifier.accept(carry);
    else acceptBytes(carry);
  }
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
    await feedChunks(input, verifier);
  } else {
    for await (const line of input) {
      if (verifier.accept(line.endsWith('\n') ? line.slice(0, -1) : line)) break;
    }
  }
  return verifier.finish();
}

/** A short human summary ending in the verdict line: `VERIFIED` or `FAILED: <code> at ...`. */
export function formatReport(report: VerifyReport): string {
  const lines: string[] = [];
  lines.push(`log:         ${report.log ?? '(unknown)'}`);
  const range = report.firstIndex === null ? '' : ` (index ${report.firstIndex}..${report.lastIndex})`;
  lines.push(`events:      ${report.events}${range}`);
  if (report.pruned !== null) {
    lines.push(`pruned:      events 0..${report.pruned.upTo - 1} removed by retention; chain anchored at ${report.pruned.anchor ?? 'null'}`);
  }
  const covered = report.checkpoints > 0 && report.firstIndex !== null && report.coveredSize > report.firstIndex ? `, covering index ${report.firstIndex}..${report.coveredSize - 1}` : '';
  lines.push(`checkpoints: ${report.checkpoints} verified${covered}`);
  if (report.firstTime !== null) lines.push(`time:        ${report.firstTime} .. ${report.lastTime ?? report.firstTime}`);
  const pinning = report.keysPinned ? 'pinned' : 'NOT pinned: compare with the server\'s /.well-known/jwks.json, or pass --keys';
  lines.push(`keys:        ${report.keys.length > 0 ? report.keys.join(', ') : '(none)'} (${pinning})`);
  if (report.uncovered !== null) {
    lines.push(
      `WARNING: events ${report.uncovered.from}..${report.uncovered.to} are not covered by a signed checkpoint: ` +
        'they could have been changed, added or removed without detection',
    );
  }
  const problem = report.problem;
  if (report.ok || problem === undefined) {
    lines.push('VERIFIED');
  } else {
    const where = problem.index === null ? `line ${problem.line}` : `index ${problem.index}`;
    lines.push(`FAILED: ${problem.reason} at ${where}: ${problem.message}`);
  }
  return lines.join('\n');
}
