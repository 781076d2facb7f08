/**
 * The verifier's fast scanner against the reference: `canonicalText` (RFC 8785) for the
 * canonical check, `MerkleFrontier.appendText` for the leaves and the tree. The scanner may say
 * "not sure" (the general path then decides), but it must never accept bytes that are not the
 * canonical text of what they spell.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalText } from '../../src/audit/canonical.ts';
import { AlignedSubtrees, MerkleFrontier, leafHash } from '../../src/audit/merkle.ts';
import { isCanonicalJson, scanBatch, scanEventLine, type EventRun } from '../../src/audit/verify-scan.ts';

/** The reference: does `text` parse, and is it exactly the canonical text of its value? */
function referenceCanonical(text: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  try {
    return canonicalText(value) === text;
  } catch {
    return false;
  }
}

/** Whether `bytes` are well-formed UTF-8 (what the verifier's decoder requires). */
function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** The cases where the scanner may answer "not sure": a key that is not plain ASCII, or deep nesting. */
function scannerMayDecline(value: unknown, depth = 0): boolean {
  if (depth > 60) return true;
  if (Array.isArray(value)) return value.some((v) => scannerMayDecline(v, depth + 1));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).some(([k, v]) => !/^[\x20-\x7f]*$/.test(k) || k.includes('"') || k.includes('\\') || scannerMayDecline(v, depth + 1));
  }
  return false;
}

const json = fc.jsonValue({ maxDepth: 4 });
// Strings and keys over characters that need care: escapes, controls, non-ASCII, astral.
const trickyString = fc.string({ unit: fc.constantFrom('a', 'Z', '"', '\\', '/', '\n', '\t', '\u0000', '\u001f', '\u007f', 'é', '€', '\u2028', '😀', '\ufb33', ' ') });
const trickyValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    trickyString,
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.constantFrom(true, false, null, 0, -0, 1e21, 1e-7, 5e-324, 2 ** 53, -1.5),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(trickyString, fc.string()), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('isCanonicalJson', () => {
  it('accepts the canonical text of any JSON value (unless a key needs the general path)', () => {
    fc.assert(
      fc.property(fc.oneof(json, trickyValue), (value) => {
        const text = canonicalText(value);
        expect(isCanonicalJson(Buffer.from(text, 'utf8'))).toBe(!scannerMayDecline(value));
      }),
      { numRuns: 2000 },
    );
  });

  /** Small edits that often make a canonical text non-canonical (or not JSON). */
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom(' ', '\n', ',', '0', '-', '.', 'e', 'E', '+', '"', '\\', '\\u0041', '\\/', '\\u00e9', '\\ud800', '\\u001F', '\\u000a', '{}', '[]', ':', '\u00e9', '1') }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 3 }) }),
    fc.record({ kind: fc.constant('swap' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  );

  function mutate(bytes: Buffer, m: { kind: string; at: number; text?: string; length?: number; byte?: number }): Buffer {
    const at = bytes.length === 0 ? 0 : m.at % (bytes.length + 1);
    switch (m.kind) {
      case 'insert':
        return Buffer.concat([bytes.subarray(0, at), Buffer.from(m.text as string, 'utf8'), bytes.subarray(at)]);
      case 'delete':
        return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + (m.length as number))]);
      case 'swap': {
        const copy = Buffer.from(bytes);
        if (at + 1 < copy.length) [copy[at], copy[at + 1]] = [copy[at + 1] as number, copy[at] as number];
        return copy;
      }
      default: {
        const copy = Buffer.from(bytes);
        if (at < copy.length) copy[at] = m.byte as number;
        return copy;
      }
    }
  }

  it('never accepts a mutated text that is not canonical, not JSON or not UTF-8', () => {
    fc.assert(
      fc.property(fc.oneof(json, trickyValue), fc.array(mutation, { minLength: 1, maxLength: 3 }), (value, mutations) => {
        let bytes: Buffer = Buffer.from(canonicalText(value), 'utf8');
        for (const m of mutations) bytes = mutate(bytes, m);
        if (isCanonicalJson(bytes)) {
          expect(isUtf8(bytes)).toBe(true);
          expect(referenceCanonical(bytes.toString('utf8'))).toBe(true);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('never accepts random JSON-like text that is not canonical', () => {
    const piece = fc.constantFrom('{', '}', '[', ']', ',', ':', '"a"', '"b"', '"a', '1', '-', '0', '.5', 'e+1', 'true', 'null', 'fals', ' ', '"\\n"', '"\\u0007"', '"\\u00e9"', '1e21', '1e+21', '-0', '0.1');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const text = pieces.join('');
        if (isCanonicalJson(Buffer.from(text, 'utf8'))) expect(referenceCanonical(text)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it.each([
    ['whitespace', '{"a": 1}'],
    ['unsorted members', '{"b":1,"a":2}'],
    ['a duplicate member', '{"a":1,"a":1}'],
    ['an escaped slash', '"a\\/b"'],
    ['an escape where the character stands for itself', '"\\u0041"'],
    ['an uppercase hex escape', '"\\u001F"'],
    ['\\u000a instead of \\n', '"\\u000a"'],
    ['an escaped lone surrogate', '"\\ud800"'],
    ['a raw control character', '"a\u0001b"'],
    ['a number with an exponent JSON.stringify would not write', '1E5'],
    ['a trailing zero', '1.50'],
    ['negative zero', '-0'],
    ['a leading zero', '01'],
    ['a 16-digit integer above 2^53', '9007199254740993'],
    ['a trailing comma', '[1,]'],
    ['a bare word', 'nul'],
    ['two values', '1 2'],
  ])('refuses %s', (_name, text) => {
    expect(referenceCanonical(text)).toBe(false);
    expect(isCanonicalJson(Buffer.from(text, 'utf8'))).toBe(false);
  });

  it.each([
    ['an overlong encoding', [0x22, 0xc0, 0xaf, 0x22]],
    ['an encoded surrogate', [0x22, 0xed, 0xa0, 0x80, 0x22]],
    ['a code point above U+10FFFF', [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22]],
    ['a cut sequence', [0x22, 0xe2, 0x82, 0x22]],
    ['a stray continuation byte', [0x22, 0x80, 0x22]],
  ])('refuses invalid UTF-8: %s', (_name, bytes) => {
    expect(isCanonicalJson(Uint8Array.from(bytes))).toBe(false);
  });
});

describe('scanEventLine', () => {
  const line = (event: string, index: string): Buffer => Buffer.from(`{"event":${event},"index":${index},"type":"event"}`, 'utf8');

  it('reads the index, seq, time and event bytes of a line in the writer layout', () => {
    const event = '{"action":"x","seq":12,"time":"2025-03-01T09:00:00.000Z"}';
    const b = line(event, '12');
    const read = scanEventLine(b, 0, b.length);
    expect(read).not.toBeNull();
    expect(read?.index).toBe(12);
    expect(read?.seq).toBe(12);
    expect(b.toString('utf8', read?.eventStart, read?.eventEnd)).toBe(event);
    expect(b.toString('utf8', read?.timeStart, read?.timeEnd)).toBe('"2025-03-01T09:00:00.000Z"');
  });

  it.each([
    ['a non-canonical event', line('{"seq":1, "a":1}', '1')],
    ['an index with a leading zero', line('{"seq":1}', '01')],
    ['an index of 16 digits', line('{"seq":1}', '1000000000000000')],
    ['members in another order', Buffer.from('{"index":1,"event":{"seq":1},"type":"event"}')],
    ['a trailing carriage return', Buffer.from('{"event":{"seq":1},"index":1,"type":"event"}\r')],
    ['an event that is an array', line('[1]', '1')],
  ])('leaves %s to the general path', (_name, b) => {
    expect(scanEventLine(b, 0, b.length)).toBeNull();
  });

  it('reports seq as -1 when it is missing, negative, fractional or not a number', () => {
    for (const event of ['{"a":1}', '{"seq":-1}', '{"seq":1.5}', '{"seq":"1"}', '{"seq":[1]}']) {
      const b = line(event, '1');
      expect(scanEventLine(b, 0, b.length)?.seq).toBe(-1);
    }
  });
});

describe('AlignedSubtrees and MerkleFrontier.appendSubtree', () => {
  const leafData = (i: number): string => `{"seq":${i}}`;

  it('give the tree of appending every leaf, for any split of the leaves into runs', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 70 }), (runs, prunedAt) => {
        const reference = new MerkleFrontier();
        for (let i = 0; i < prunedAt; i += 1) reference.appendText(leafData(i));
        const built = MerkleFrontier.from(
          reference.toJSON().hashes.map((h) => Buffer.from(h, 'base64url')),
          prunedAt,
        );
        const subtrees = new AlignedSubtrees();
        let next = prunedAt;
        for (const length of runs) {
          subtrees.reset(next);
          for (let i = next; i < next + length; i += 1) {
            reference.appendText(leafData(i));
            subtrees.appendLeafInput(Buffer.from(`\u0000${leafData(i)}`, 'utf8'));
          }
          const { heads, heights } = subtrees.finish();
          expect(heights.reduce((n, h) => n + 2 ** h, 0)).toBe(length);
          heights.forEach((h, k) => built.appendSubtree(heads.subarray(k * 32, k * 32 + 32), h));
          next += length;
          expect(built.size).toBe(reference.size);
          expect(built.root().equals(reference.root())).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a subtree that is not aligned with the tree, and a leaf input without its prefix', () => {
    const tree = new MerkleFrontier();
    tree.append(leafHash(Buffer.from('a')));
    expect(() => tree.appendSubtree(Buffer.alloc(32), 1)).toThrow(RangeError);
    expect(() => tree.appendSubtree(Buffer.alloc(31), 0)).toThrow(TypeError);
    expect(() => new AlignedSubtrees().appendLeafInput(Buffer.from('{"a":1}'))).toThrow(TypeError);
  });
});

describe('scanBatch', () => {
  it('hashes runs as the frontier would and hands every other line back, in order', () => {
    const events = Array.from({ length: 9 }, (_, i) => `{"seq":${i},"time":"t${i}"}`);
    const lines = [
      '{"type":"header"}',
      ...events.slice(0, 5).map((e, i) => `{"event":${e},"index":${i},"type":"event"}`),
      '{"type":"checkpoint"}',
      ...events.slice(5).map((e, i) => `{"event":${e},"index":${i + 5},"type":"event"}`),
      '{"event":{"seq":99},"index":9,"type":"event"}',
    ];
    const batch = Buffer.from(lines.join('\n'), 'utf8');
    const before = Buffer.from(batch);
    const items = scanBatch(batch);
    expect(batch.equals(before)).toBe(true);
    expect(items.map((i) => i.kind)).toEqual(['lines', 'run', 'lines', 'run', 'lines']);
    const runs = items.filter((i): i is EventRun => i.kind === 'run');
    expect(runs.map((r) => [r.first, r.count, r.firstTime, r.lastTime])).toEqual([
      [0, 5, 't0', 't4'],
      [5, 4, 't5', 't8'],
    ]);
    const reference = new MerkleFrontier();
    const built = new MerkleFrontier();
    for (const run of runs) {
      const heads = Buffer.from(run.heads, 'latin1');
      run.heights.forEach((h, k) => built.appendSubtree(heads.subarray(k * 32, k * 32 + 32), h));
      for (let i = run.first; i < run.first + run.count; i += 1) reference.appendText(events[i] as string);
      expect(built.root().equals(reference.root())).toBe(true);
    }
    // The line with seq 99 under index 9 is left to the general path, which names SEQ_MISMATCH.
    const last = items.at(-1);
    expect(batch.toString('utf8', last?.start, last?.end)).toBe(lines.at(-1));
  });

  it('starts a new run where the indexes jump', () => {
    const lines = [0, 1, 5, 6].map((i) => `{"event":{"seq":${i}},"index":${i},"type":"event"}`);
    const items = scanBatch(Buffer.from(lines.join('\n')));
    expect(items.map((i) => (i.kind === 'run' ? [i.first, i.count] : i.kind))).toEqual([
      [0, 2],
      [5, 2],
    ]);
  });
});
