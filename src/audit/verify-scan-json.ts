/**
 * The byte-level check of RFC 8785 canonical JSON behind the offline verifier's fast path
 * (verify-scan.ts): a single pass over the bytes, never parsing into objects and never
 * re-serialising.
 *
 * It is conservative: it only ever answers "canonical" for bytes that are exactly the RFC 8785
 * text of the value they spell (property tests compare it with `canonicalText`). Whatever it is
 * not sure of (a key with an escape or a non-ASCII character, a number it cannot confirm, deep
 * nesting, invalid UTF-8) makes it answer no, and the verifier's general path decides.
 */
export const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
export const COLON = 0x3a;
export const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
export const NEWLINE = 0x0a;
export const ZERO = 0x30;
export const NINE = 0x39;
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

export function bindWords(b: Uint8Array): void {
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
export interface EventFields {
  /** The value of `seq` when it is a plain integer, -1 when absent or anything else. */
  seq: number;
  /** Byte range of the string value of `time` (with its quotes), -1 when absent or not a string. */
  timeStart: number;
  timeEnd: number;
}

// The member names the verifier reads, as bytes.
const SEQ = [...'seq'].map((c) => c.charCodeAt(0));
const TIME = [...'time'].map((c) => c.charCodeAt(0));

function isName(b: Uint8Array, start: number, end: number, name: readonly number[]): boolean {
  if (end - start !== name.length) return false;
  for (let k = 0; k < name.length; k += 1) if (b[start + k] !== name[k]) return false;
  return true;
}

export function integerAt(b: Uint8Array, start: number, end: number): number {
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
export function objectEnd(b: Uint8Array, i: number, end: number, depth: number, out: EventFields | null): number {
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
