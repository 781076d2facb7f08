/**
 * The offline verifier's fast path (see verify.ts): a single-pass scanner over the bytes of an
 * export that recognises event lines already in the exact form `encodeExportLine` writes, checks
 * that their event is RFC 8785 canonical JSON, and hashes its leaf from the line's own bytes. It
 * never parses into objects and never re-serialises.
 *
 * An event line may state its leaf hash (`,"leaf":"..."` before `,"type":"event"}`); the scanner
 * takes the line only when that is exactly the base64url of the hash it computed, and leaves any
 * other to the general path, which compares the two and names the event (verify.ts).
 *
 * The scanner (its canonical JSON check is verify-scan-json.ts) is conservative: it only ever answers "canonical" for bytes that are exactly the
 * RFC 8785 text of the value they spell (property tests compare it with `canonicalText`). Whatever
 * it is not sure of (a key with an escape or a non-ASCII character, a number it cannot confirm,
 * deep nesting, a line in another layout, invalid UTF-8) goes to the verifier's general path,
 * which decides exactly as it would without the scanner: every non-canonical or malformed line
 * gets the same verdict, the same code and the same index either way.
 *
 * `scanBatch` turns a block of complete lines into items, in line order: runs of consecutive
 * event lines (their index, count, first and last time, and the heads of the maximal aligned
 * perfect subtrees their leaves form, see merkle.ts `AlignedSubtrees`), and byte ranges of every
 * other line for the general path. It is pure (no state between calls), so the verifier runs it
 * on its own thread or in worker threads (verify-worker.ts) with the same results.
 */
import { hash } from 'node:crypto';
import { AlignedSubtrees } from './merkle.ts';
import { bindWords, COLON, integerAt, NEWLINE, NINE, objectEnd, OPEN_BRACE, QUOTE, ZERO, type EventFields } from './verify-scan-json.ts';

export { isCanonicalJson } from './verify-scan-json.ts';

const fields: EventFields = { seq: -1, timeStart: -1, timeEnd: -1 };

const LINE_HEAD = Buffer.from('{"event":');
const LINE_INDEX = Buffer.from(',"index":');
const LINE_LEAF = Buffer.from(',"leaf":"');
const LEAF_CHARS = 43;
const LINE_TAIL = Buffer.from(',"type":"event"}');

function matches(b: Uint8Array, at: number, end: number, expected: Uint8Array): boolean {
  if (at + expected.length > end) return false;
  for (let k = 0; k < expected.length; k += 1) if (b[at + k] !== expected[k]) return false;
  return true;
}

/** An event line in the writer's layout, as the scanner read it. */
export interface ScannedEventLine {
  index: number;
  seq: number;
  /** Byte range of the event object within the line's buffer. */
  eventStart: number;
  eventEnd: number;
  timeStart: number;
  timeEnd: number;
  /** Where the 43 characters of the stated leaf hash start, -1 when the line states none. */
  leafStart: number;
}

/**
 * Reads the line at [start, end) when it is `{"event":<canonical object>,"index":<n>,"type":"event"}`
 * or `{"event":<canonical object>,"index":<n>,"leaf":"<43 characters>","type":"event"}` with n a
 * plain integer of at most 15 digits; null for any other line. The leaf's characters are not
 * checked here: `scanBatch` compares them with the hash of the event.
 */
export function scanEventLine(b: Uint8Array, start: number, end: number): ScannedEventLine | null {
  if (eventLineEnd(b, start, end) !== end) return null;
  return { ...scanned };
}

const scanned: ScannedEventLine = { index: -1, seq: -1, eventStart: -1, eventEnd: -1, timeStart: -1, timeEnd: -1, leafStart: -1 };

/**
 * Where the event line at `start` ends (its "\n", or `limit`) when it is in the writer's layout
 * with a canonical event; -1 otherwise. What it read is left in `scanned`. The scan never
 * crosses a "\n": one is neither allowed raw in a string nor between tokens.
 */
function eventLineEnd(b: Uint8Array, start: number, limit: number): number {
  if (!matches(b, start, limit, LINE_HEAD) || b[start + LINE_HEAD.length] !== OPEN_BRACE) return -1;
  const eventStart = start + LINE_HEAD.length;
  bindWords(b);
  fields.seq = -1;
  fields.timeStart = -1;
  fields.timeEnd = -1;
  const eventEnd = objectEnd(b, eventStart, limit, 1, fields);
  if (eventEnd < 0 || !matches(b, eventEnd, limit, LINE_INDEX)) return -1;
  const digitsStart = eventEnd + LINE_INDEX.length;
  let digitsEnd = digitsStart;
  while (digitsEnd < limit && (b[digitsEnd] as number) >= ZERO && (b[digitsEnd] as number) <= NINE) digitsEnd += 1;
  if (digitsEnd === digitsStart || (b[digitsStart] === ZERO && digitsEnd - digitsStart > 1)) return -1;
  const index = integerAt(b, digitsStart, digitsEnd);
  if (index < 0) return -1;
  let tailStart = digitsEnd;
  let leafStart = -1;
  if (matches(b, digitsEnd, limit, LINE_LEAF)) {
    leafStart = digitsEnd + LINE_LEAF.length;
    tailStart = leafStart + LEAF_CHARS + 1;
    if (tailStart > limit || b[tailStart - 1] !== QUOTE) return -1;
  }
  if (!matches(b, tailStart, limit, LINE_TAIL)) return -1;
  const lineEnd = tailStart + LINE_TAIL.length;
  if (lineEnd !== limit && b[lineEnd] !== NEWLINE) return -1;
  scanned.index = index;
  scanned.seq = fields.seq;
  scanned.eventStart = eventStart;
  scanned.eventEnd = eventEnd;
  scanned.timeStart = fields.timeStart;
  scanned.timeEnd = fields.timeEnd;
  scanned.leafStart = leafStart;
  return lineEnd;
}

/** A run of consecutive event lines, each canonical and carrying `seq` equal to its index. */
export interface EventRun {
  kind: 'run';
  /** Byte range of the run's lines in the batch (without the last line's "\n"). */
  start: number;
  end: number;
  /** The index of its first event; it has `count` events, one per line. */
  first: number;
  count: number;
  /**
   * The heads of the aligned subtrees covering leaves first..first+count-1, in order, 32 bytes
   * each, as a latin1 string (cheap to hand between threads).
   */
  heads: string;
  /** Their heights (a head covers 2^height leaves). */
  heights: number[];
  /** How many of its lines state a leaf hash (each the hash of its event: other lines end a run). */
  leaves: number;
  /** The `time` of its first and last events that carry a string one. */
  firstTime: string | null;
  lastTime: string | null;
}

/** Lines for the general path. */
export interface OtherLines {
  kind: 'lines';
  start: number;
  end: number;
}

export type BatchItem = EventRun | OtherLines;

function timeOf(b: Uint8Array, start: number, end: number): string {
  return JSON.parse(Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8')) as string;
}

/**
 * Splits `batch` (complete lines separated by "\n"; the last one has none) into runs of fast
 * event lines and ranges of other lines, in order. A run ends at any line that is not an event
 * in the writer's layout with a canonical event, at an index that does not follow the one before
 * it, and at an event whose `seq` is not its index: those lines go to the general path, which
 * reports them exactly as it would without this scanner.
 *
 * The leaf of an event is SHA-256(0x00 || its bytes). The byte before the event object is the ":"
 * of `{"event":`; it is set to 0x00 for the hash and put back, so no byte is copied.
 */
export function scanBatch(batch: Buffer): BatchItem[] {
  const items: BatchItem[] = [];
  const tree = new AlignedSubtrees();
  let run: EventRun | null = null;
  let runLastTimeStart = -1;
  let runLastTimeEnd = -1;
  let other: OtherLines | null = null;

  const closeRun = (): void => {
    if (run === null) return;
    const { heads, heights } = tree.finish();
    run.heads = heads.toString('latin1');
    run.heights = heights;
    if (runLastTimeStart >= 0) run.lastTime = timeOf(batch, runLastTimeStart, runLastTimeEnd);
    items.push(run);
    run = null;
  };

  const length = batch.length;
  const memory = batch.buffer;
  const offset = batch.byteOffset;
  let start = 0;
  while (start <= length) {
    let nl = eventLineEnd(batch, start, length);
    let leaf: string | null = null;
    if (nl >= 0 && scanned.seq === scanned.index) {
      const at = scanned.eventStart - 1;
      batch[at] = 0;
      const input = new Uint8Array(memory, offset + at, scanned.eventEnd - at);
      if (scanned.leafStart < 0) {
        leaf = hash('sha256', input, 'binary');
      } else {
        // A stated leaf hash that is not the event's own (or not in its canonical base64url) is
        // for the general path to report.
        const digest = hash('sha256', input, 'buffer');
        if (digest.toString('base64url') === batch.toString('latin1', scanned.leafStart, scanned.leafStart + LEAF_CHARS)) leaf = digest.toString('latin1');
      }
      batch[at] = COLON;
    }
    if (leaf !== null) {
      const index = scanned.index;
      if (run !== null && index !== run.first + run.count) closeRun();
      if (run === null) {
        other = null;
        run = { kind: 'run', start, end: nl, first: index, count: 0, heads: '', heights: [], leaves: 0, firstTime: null, lastTime: null };
        runLastTimeStart = -1;
        tree.reset(index);
      }
      tree.appendLeafBinary(leaf);
      if (scanned.leafStart >= 0) run.leaves += 1;
      run.count += 1;
      run.end = nl;
      if (scanned.timeStart >= 0) {
        if (run.firstTime === null) run.firstTime = timeOf(batch, scanned.timeStart, scanned.timeEnd);
        runLastTimeStart = scanned.timeStart;
        runLastTimeEnd = scanned.timeEnd;
      }
    } else {
      if (nl < 0) {
        nl = batch.indexOf(NEWLINE, start);
        if (nl < 0) nl = length;
      }
      closeRun();
      if (other === null) {
        other = { kind: 'lines', start, end: nl };
        items.push(other);
      } else {
        other.end = nl;
      }
    }
    start = nl + 1;
  }
  closeRun();
  return items;
}
