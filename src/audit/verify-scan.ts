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
 * The scanner is conservative: it only ever answers "canonical" for bytes that are exactly the
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
 *
 * size-exception: the verifier's byte-level fast path for event lines (a single-pass scanner),
 * kept as one piece for speed without a committed measurement yet; split by concern is pending
 * (issue 17); no measured reason to keep it whole.
 */
import { hash } from 'node:crypto';
import { AlignedSubtrees } from './merkle.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const NEWLINE = 0x0a;
const ZERO = 0x30;
const NINE = 0x39;
const MINUS = 0x2d;

/** Nesting beyond this is left to the general path (which uses JSON.parse). */
const MAX_DEPTH = 64;

// Which byte may follow a backslash in canonical JSON (JSON.stringify's short escapes; "/" is
// never escaped). \u is handled on its own.
const SHORT_ESCAPE = new Uint8Array(256);
for (const c of '"\\bfnrt') SHORT_ESCAPE[c.charCodeAt(0)] = 1;
// Control characters that have a short escape, so may not be written as \u00XX.
const HAS_SHORT_FORM = new Uint8Array(32);
for (const c of [0x08, 0x09, 0x0a, 0x0c, 0x0d]) HAS_SHORT_FORM[c] = 1;

// Bytes that stand for themselves in a canonical string: printable ASCII but `"` and `\`.
const PLAIN = new Uint8Array(256);
for (let c = 0x20; c < 0x80; c += 1) if (c !== QUOTE && c !== BACKSLASH) PLAIN[c] = 1;

// A 32-bit view of the buffer being scanned, for `stringEnd`'s word-at-a-time loop, and the
// byte offset of the scanned view within it.
let words: Int32Array<ArrayBufferLike> = new Int32Array(0);
let wordsOf: ArrayBufferLike | null = null;
let wordsBase = 0;
let wordScan = false;

function bindWords(b: Uint8Array): void {
  const buffer = b.buffer;
  if (buffer !== wordsOf) {
    wordsOf = buffer;
    // Past 2 GiB, offsets no longer fit the 32-bit alignment test: scan bytewise.
    words = buffer.byteLength < 2 ** 31 ? new Int32Array(buffer, 0, buffer.byteLength >>> 2) : new Int32Array(0);
  }
  wordScan = words.length > 0;
  wordsBase = b.byteOffset;
}

function lowerHex(c: number): number {
  if (c >= ZERO && c <= NINE) return c - ZERO;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

function isContinuation(c: number): boolean {
  return c >= 0x80 && c <= 0xbf;
}

/**
 * End of the canonical string starting at `i` (the opening quote), or -1. The string must be
 * valid UTF-8 (no overlong form, no surrogate, nothing above U+10FFFF) written as JSON.stringify
 * writes it: only `"` and `\` and control characters escaped, with the short escapes where they
 * exist and lowercase `\u00xx` otherwise.
 */
function stringEnd(b: Uint8Array, i: number, end: number): number {
  i += 1;
  for (;;) {
    // Four bytes at a time where they are aligned: a word of plain bytes (printable ASCII but
    // `"` and `\`) has no byte with its high bit set, none below 0x20, none equal to 0x22 or
    // 0x5c. The tests are the classic "has a byte less than n" (exact for n <= 128) and "has a
    // zero byte" of x XOR the byte; bit operators in JavaScript work on exactly 32 bits.
    if (wordScan && ((wordsBase + i) & 3) === 0) {
      while (i + 4 <= end) {
        const w = words[(wordsBase + i) >>> 2] as number;
        const q = w ^ 0x22222222;
        const s = w ^ 0x5c5c5c5c;
        if (((w | ((w - 0x20202020) & ~w) | ((q - 0x01010101) & ~q) | ((s - 0x01010101) & ~s)) & 0x80808080) !== 0) break;
        i += 4;
      }
    }
    if (i >= end) return -1;
    const c = b[i] as number;
    if (PLAIN[c] === 1) {
      i += 1;
      continue;
    }
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      if (i + 1 >= end) return -1;
      const e = b[i + 1] as number;
      if (SHORT_ESCAPE[e] === 1) {
        i += 2;
        continue;
      }
      if (e !== 0x75 || i + 5 >= end) return -1;
      if (b[i + 2] !== ZERO || b[i + 3] !== ZERO) return -1;
      const hi = b[i + 4] as number;
      const lo = lowerHex(b[i + 5] as number);
      if ((hi !== ZERO && hi !== ZERO + 1) || lo < 0) return -1;
      if (HAS_SHORT_FORM[(hi - ZERO) * 16 + lo] === 1) return -1;
      i += 6;
      continue;
    }
    if (c < 0x20) return -1;
    // A multi-byte UTF-8 sequence (RFC 3629 section 4).
    if (c >= 0xc2 && c <= 0xdf) {
      if (i + 1 >= end || !isContinuation(b[i + 1] as number)) return -1;
      i += 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      if (i + 2 >= end) return -1;
      const c1 = b[i + 1] as number;
      const low = c === 0xe0 ? 0xa0 : 0x80;
      const high = c === 0xed ? 0x9f : 0xbf;
      if (c1 < low || c1 > high || !isContinuation(b[i + 2] as number)) return -1;
      i += 3;
    } else if (c >= 0xf0 && c <= 0xf4) {
      if (i + 3 >= end) return -1;
      const c1 = b[i + 1] as number;
      const low = c === 0xf0 ? 0x90 : 0x80;
      const high = c === 0xf4 ? 0x8f : 0xbf;
      if (c1 < low || c1 > high || !isContinuation(b[i + 2] as number) || !isContinuation(b[i + 3] as number)) return -1;
      i += 4;
    } else {
      return -1;
    }
  }
  return -1;
}

/** End of the key at `i` when it is plain ASCII without escapes (compared bytewise), else -1. */
function plainKeyEnd(b: Uint8Array, i: number, end: number): number {
  i += 1;
  while (i < end) {
    const c = b[i] as number;
    if (c === QUOTE) return i + 1;
    if (c < 0x20 || c >= 0x80 || c === BACKSLASH) return -1;
    i += 1;
  }
  return -1;
}

/**
 * Whether the key at [a, aEnd) sorts strictly before the key at [b, bEnd) (both without quotes).
 * For ASCII, byte order is the UTF-16 code unit order RFC 8785 sorts by.
 */
function keyBefore(buf: Uint8Array, a: number, aEnd: number, b: number, bEnd: number): boolean {
  const n = Math.min(aEnd - a, bEnd - b);
  for (let k = 0; k < n; k += 1) {
    const x = buf[a + k] as number;
    const y = buf[b + k] as number;
    if (x !== y) return x < y;
  }
  return aEnd - a < bEnd - b;
}

/** End of the canonical number at `i`, or -1. */
function numberEnd(b: Uint8Array, i: number, end: number): number {
  const start = i;
  let simple = true;
  if (b[i] === MINUS) i += 1;
  const firstDigit = i;
  while (i < end) {
    const c = b[i] as number;
    if (c >= ZERO && c <= NINE) i += 1;
    else if (c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === MINUS) {
      simple = false;
      i += 1;
    } else break;
  }
  const digits = i - firstDigit;
  if (digits === 0) return -1;
  if (simple) {
    // An integer: canonical when it has no leading zero, is not -0, and is exact (15 digits).
    if (b[firstDigit] === ZERO) return digits === 1 && firstDigit === start ? i : -1;
    if (digits <= 15) return i;
  }
  // Anything else is canonical when it is what ECMAScript prints for the number it denotes
  // (RFC 8785 section 3.2.2.3 is Number.prototype.toString). The token holds only ASCII.
  const token = String.fromCharCode(...b.subarray(start, i));
  const value = Number(token);
  return Number.isFinite(value) && String(value) === token ? i : -1;
}

function literalEnd(b: Uint8Array, i: number, end: number, word: readonly number[]): number {
  if (i + word.length > end) return -1;
  for (let k = 0; k < word.length; k += 1) if (b[i + k] !== word[k]) return -1;
  return i + word.length;
}

const TRUE = [...'true'].map((c) => c.charCodeAt(0));
const FALSE = [...'false'].map((c) => c.charCodeAt(0));
const NULL = [...'null'].map((c) => c.charCodeAt(0));

/** End of the canonical JSON value at `i`, or -1. */
function valueEnd(b: Uint8Array, i: number, end: number, depth: number): number {
  if (i >= end) return -1;
  const c = b[i] as number;
  if (c === QUOTE) return stringEnd(b, i, end);
  if (c === OPEN_BRACE) return objectEnd(b, i, end, depth + 1, null);
  if (c === OPEN_BRACKET) return arrayEnd(b, i, end, depth + 1);
  if (c === MINUS || (c >= ZERO && c <= NINE)) return numberEnd(b, i, end);
  if (c === 0x74) return literalEnd(b, i, end, TRUE);
  if (c === 0x66) return literalEnd(b, i, end, FALSE);
  if (c === 0x6e) return literalEnd(b, i, end, NULL);
  return -1;
}

function arrayEnd(b: Uint8Array, i: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH) return -1;
  i += 1;
  if (b[i] === CLOSE_BRACKET) return i + 1;
  for (;;) {
    i = valueEnd(b, i, end, depth);
    if (i < 0 || i >= end) return -1;
    const c = b[i];
    if (c === CLOSE_BRACKET) return i + 1;
    if (c !== COMMA) return -1;
    i += 1;
  }
}

/** What `objectEnd` found among the top-level members of an event. */
interface EventFields {
  /** The value of `seq` when it is a plain integer, -1 when absent or anything else. */
  seq: number;
  /** Byte range of the string value of `time` (with its quotes), -1 when absent or not a string. */
  timeStart: number;
  timeEnd: number;
}

const fields: EventFields = { seq: -1, timeStart: -1, timeEnd: -1 };

// The member names the verifier reads, as bytes.
const SEQ = [...'seq'].map((c) => c.charCodeAt(0));
const TIME = [...'time'].map((c) => c.charCodeAt(0));

function isName(b: Uint8Array, start: number, end: number, name: readonly number[]): boolean {
  if (end - start !== name.length) return false;
  for (let k = 0; k < name.length; k += 1) if (b[start + k] !== name[k]) return false;
  return true;
}

function integerAt(b: Uint8Array, start: number, end: number): number {
  if (end - start > 15) return -1;
  let n = 0;
  for (let k = start; k < end; k += 1) {
    const c = b[k] as number;
    if (c < ZERO || c > NINE) return -1;
    n = n * 10 + (c - ZERO);
  }
  return n;
}

/**
 * End of the canonical object at `i`, or -1: members sorted by key, no duplicate. With `out`,
 * records its `seq` and `time` members there.
 */
function objectEnd(b: Uint8Array, i: number, end: number, depth: number, out: EventFields | null): number {
  if (depth > MAX_DEPTH) return -1;
  i += 1;
  if (b[i] === CLOSE_BRACE) return i + 1;
  let previousStart = -1;
  let previousEnd = -1;
  for (;;) {
    if (b[i] !== QUOTE) return -1;
    const keyEnd = plainKeyEnd(b, i, end);
    if (keyEnd < 0) return -1;
    const nameStart = i + 1;
    const nameEnd = keyEnd - 1;
    if (previousStart >= 0 && !keyBefore(b, previousStart, previousEnd, nameStart, nameEnd)) return -1;
    previousStart = nameStart;
    previousEnd = nameEnd;
    if (b[keyEnd] !== COLON) return -1;
    const valueStart = keyEnd + 1;
    i = valueEnd(b, valueStart, end, depth);
    if (i < 0 || i >= end) return -1;
    if (out !== null) {
      if (isName(b, nameStart, nameEnd, SEQ)) out.seq = integerAt(b, valueStart, i);
      else if (isName(b, nameStart, nameEnd, TIME) && b[valueStart] === QUOTE) {
        out.timeStart = valueStart;
        out.timeEnd = i;
      }
    }
    const c = b[i];
    if (c === CLOSE_BRACE) return i + 1;
    if (c !== COMMA) return -1;
    i += 1;
  }
}

/**
 * Whether `bytes` are exactly the RFC 8785 canonical JSON text of some value: true only when
 * `canonicalText(JSON.parse(text))` gives back the same text. False also when unsure (see the
 * module comment): a false answer only means the general path must decide.
 */
export function isCanonicalJson(bytes: Uint8Array): boolean {
  bindWords(bytes);
  return valueEnd(bytes, 0, bytes.length, 0) === bytes.length;
}

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
