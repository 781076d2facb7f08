import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REDACTED, scrubSecrets } from '../../src/gateway/scrub.ts';

// Built at run time so the secret scanner does not flag the test itself.
const KEY = ['sk', 'proj', 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'].join('-');

describe('scrubSecrets (vendor keys never reach a client)', () => {
  it('replaces the whole key', () => {
    expect(scrubSecrets(`Incorrect API key provided: ${KEY}.`, [KEY])).toBe(`Incorrect API key provided: ${REDACTED}.`);
  });

  it('replaces fragments of 8 or more characters, wherever they are cut', () => {
    expect(scrubSecrets(`key starting ${KEY.slice(0, 8)}***`, [KEY])).toBe(`key starting ${REDACTED}***`);
    expect(scrubSecrets(`ends in ${KEY.slice(-10)}`, [KEY])).toBe(`ends in ${REDACTED}`);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: KEY.length - 8 }), fc.integer({ min: 8, max: KEY.length }), (start, len) => {
        const fragment = KEY.slice(start, start + len);
        fc.pre(fragment.length >= 8);
        const out = scrubSecrets(`{"error":{"message":"bad ${fragment} here"}}`, [KEY]);
        expect(out).not.toContain(fragment);
        expect(out).toBe(`{"error":{"message":"bad ${REDACTED} here"}}`);
      }),
    );
  });

  it('leaves shorter pieces and unrelated text alone, and keeps JSON valid', () => {
    const text = `{"error":{"message":"key sk-proj***789 is wrong","code":"invalid_api_key"}}`;
    expect(scrubSecrets(text, [KEY])).toBe(text);
    expect(() => JSON.parse(scrubSecrets(`{"m":"${KEY} and ${KEY.slice(3, 20)}"}`, [KEY]))).not.toThrow();
  });

  it('handles several secrets, overlapping hits and empty input', () => {
    const other = 'another-secret-value-1234';
    expect(scrubSecrets(`${KEY}${other}`, [KEY, other])).toBe(REDACTED);
    expect(scrubSecrets('', [KEY])).toBe('');
    expect(scrubSecrets('abc', [])).toBe('abc');
    expect(scrubSecrets('short key: abc', ['abc'])).toBe(`short key: ${REDACTED}`);
  });
});
