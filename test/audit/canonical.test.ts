/**
 * Canonical JSON. Vectors: RFC 8785 section 3.2.2 (the serialisation example) and section 3.2.3
 * (member ordering by UTF-16 code units).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalBytes, canonicalText, isCanonicalTextOf } from '../../src/audit/canonical.ts';

describe('canonicalText', () => {
  it('serialises the RFC 8785 section 3.2.2 example', () => {
    const input =
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], ' +
      '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}';
    const expected = '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}';
    expect(canonicalText(JSON.parse(input))).toBe(expected);
    expect(canonicalBytes(JSON.parse(input))).toEqual(Buffer.from(expected, 'utf8'));
  });

  it('orders members by UTF-16 code units (RFC 8785 section 3.2.3)', () => {
    const input = '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}';
    // Integer-like keys come first in any JS object, so the order is read from the text.
    const order = [...canonicalText(JSON.parse(input)).matchAll(/"([^"]*)":/g)].map((m) => m[1]);
    expect(order).toEqual(['\\r', '1', '\u0080', 'ö', '€', '😀', '\ufb33']);
  });

  const refused: [string, unknown][] = [
    ['undefined', undefined],
    ['NaN', Number.NaN],
    ['Infinity inside an object', { a: Number.POSITIVE_INFINITY }],
    ['a bigint', { a: 1n }],
    ['a function member', { a: () => 1 }],
    ['a symbol in an array', [Symbol('x')]],
    ['undefined in an array', [undefined]],
    ['a Map', new Map([['a', 1]])],
    ['a lone surrogate', { a: '\ud800' }],
  ];
  it.each(refused)('refuses %s with a TypeError', (_name, value) => {
    expect(() => canonicalText(value)).toThrow(TypeError);
  });

  it('refuses a cycle', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => canonicalText(a)).toThrow(TypeError);
  });

  it('leaves out undefined members and serialises dates through toJSON', () => {
    expect(canonicalText({ b: undefined, a: new Date(0) })).toBe('{"a":"1970-01-01T00:00:00.000Z"}');
  });
});

describe('isCanonicalTextOf', () => {
  it('says yes only for canonical text, and to canonical text unless it has integer-like keys', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.boolean(), (value, pretty) => {
        const text = pretty ? JSON.stringify(value, null, 1) : JSON.stringify(value);
        const parsed: unknown = JSON.parse(text);
        const canonical = canonicalText(parsed);
        if (isCanonicalTextOf(text, parsed)) expect(text).toBe(canonical);
        // A JS object lists integer-like keys first, in numeric order: a false no, which only
        // costs the caller a canonicalization.
        if (!/"\d+":/.test(canonical) && !canonical.includes('\\ud')) expect(isCanonicalTextOf(canonical, JSON.parse(canonical))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('says no for unsorted members, integer-like keys, whitespace and a lone surrogate escape', () => {
    const no = ['{"b":1,"a":2}', '{"10":1,"9":2}', '{"a": 1}', '["\\ud800"]', '{"a":1.0}'];
    for (const text of no) expect(isCanonicalTextOf(text, JSON.parse(text))).toBe(false);
    expect(isCanonicalTextOf('{"10":1,"9":2,"a":[1,{"x":null,"y":"é"}]}', JSON.parse('{"10":1,"9":2,"a":[1,{"x":null,"y":"é"}]}'))).toBe(
      false,
    );
    expect(isCanonicalTextOf('{"a":[1,{"x":null,"y":"é"}],"b":-0.5}', JSON.parse('{"a":[1,{"x":null,"y":"é"}],"b":-0.5}'))).toBe(true);
  });
});
