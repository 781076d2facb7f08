import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  API_KEY_LENGTH,
  API_KEY_PATTERN,
  API_KEY_PREFIX,
  generateApiKey,
  hashApiKeySecret,
  parseApiKey,
  verifyApiKeySecret,
} from '../../src/gateway/api-key-format.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

describe('API key format (GW-1)', () => {
  it('round-trips: a generated key parses to its id, and its secret matches the stored hash', () => {
    for (let i = 0; i < 200; i++) {
      const { key, id, secretHash } = generateApiKey();
      const parsed = parseApiKey(key);
      expect(parsed?.id).toBe(id);
      expect(hashApiKeySecret(parsed?.secret ?? '')).toBe(secretHash);
      expect(verifyApiKeySecret(parsed?.secret ?? '', secretHash)).toBe(true);
    }
  });

  it('has fixed lengths: prefix, 16 id, 32 secret, 6 checksum characters, all base62', () => {
    const { key, id, secretHash } = generateApiKey();
    expect(key).toHaveLength(API_KEY_LENGTH);
    expect(API_KEY_LENGTH).toBe(64);
    expect(key.startsWith(API_KEY_PREFIX)).toBe(true);
    expect(key.slice(API_KEY_PREFIX.length)).toMatch(/^[0-9A-Za-z]{54}$/);
    expect(id).toMatch(/^[0-9A-Za-z]{16}$/);
    expect(parseApiKey(key)?.secret).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(secretHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keys and ids do not repeat, and every base62 character occurs (no skewed alphabet)', () => {
    const keys = Array.from({ length: 2000 }, () => generateApiKey());
    expect(new Set(keys.map((k) => k.key)).size).toBe(keys.length);
    expect(new Set(keys.map((k) => k.id)).size).toBe(keys.length);
    const seen = new Set(keys.flatMap((k) => [...k.key.slice(API_KEY_PREFIX.length, -6)]));
    expect(seen.size).toBe(62);
  });

  it('catches every single-character change with the checksum (leak validation needs no false positives)', () => {
    const { key } = generateApiKey();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: API_KEY_LENGTH - 1 }), fc.integer({ min: 0, max: BASE62.length + 20 }), (position, pick) => {
        const alphabet = `${BASE62}_-+/=. !~gatehouse`;
        const replacement = alphabet[pick % alphabet.length] ?? 'x';
        fc.pre(replacement !== key[position]);
        const changed = key.slice(0, position) + replacement + key.slice(position + 1);
        expect(parseApiKey(changed)).toBeNull();
      }),
      { numRuns: 2000 },
    );
  });

  it('catches every single-character change exhaustively for one key (all positions x all base62 characters)', () => {
    const { key } = generateApiKey();
    for (let position = API_KEY_PREFIX.length; position < key.length; position++) {
      for (const c of BASE62) {
        if (c === key[position]) continue;
        expect(parseApiKey(key.slice(0, position) + c + key.slice(position + 1))).toBeNull();
      }
    }
  });

  it('refuses garbage: wrong prefix, length, charset, whitespace, non-strings', () => {
    const { key } = generateApiKey();
    const refused: unknown[] = [
      '',
      'gatehouse_',
      key.slice(0, -1),
      `${key}0`,
      ` ${key}`,
      `${key}\n`,
      `GATEHOUSE_${key.slice(API_KEY_PREFIX.length)}`,
      `gatehous_${key.slice(API_KEY_PREFIX.length)}0`,
      `${API_KEY_PREFIX}${'é'.repeat(54)}`,
      `${API_KEY_PREFIX}${'0'.repeat(54)}`,
      `sk-${key.slice(3)}`,
      'x'.repeat(10_000),
      undefined,
      null,
      42,
    ];
    for (const text of refused) expect(parseApiKey(text as string)).toBeNull();
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        expect(parseApiKey(text)).toBeNull();
      }),
    );
  });

  it('verifyApiKeySecret refuses another secret and a malformed stored hash', () => {
    const a = parseApiKey(generateApiKey().key);
    const b = generateApiKey();
    expect(verifyApiKeySecret(a?.secret ?? '', b.secretHash)).toBe(false);
    expect(verifyApiKeySecret(a?.secret ?? '', '')).toBe(false);
    expect(verifyApiKeySecret(a?.secret ?? '', 'zz')).toBe(false);
  });

  it('API_KEY_PATTERN finds keys in text for scanners, not keys glued to other words', () => {
    const { key } = generateApiKey();
    const text = `export GATEHOUSE_KEY="${key}"\nAuthorization: Bearer ${key}\nx${key}\n${key}Z`;
    const found = text.match(new RegExp(API_KEY_PATTERN.source, 'g')) ?? [];
    expect(found).toEqual([key, key]);
    expect(found.every((k) => parseApiKey(k) !== null)).toBe(true);
  });
});
