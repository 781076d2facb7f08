import { describe, expect, it } from 'vitest';
import { CryptoError } from '../../src/crypto/errors.ts';
import { randomToken, randomUuid } from '../../src/crypto/random.ts';

describe('randomToken', () => {
  it('is unpadded base64url of the requested number of bytes (32 by default)', () => {
    expect(randomToken()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(randomToken(), 'base64url')).toHaveLength(32);
    expect(Buffer.from(randomToken(16), 'base64url')).toHaveLength(16);
    expect(randomToken(1)).toMatch(/^[A-Za-z0-9_-]{2}$/);
  });

  it('does not repeat', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => randomToken(16)));
    expect(tokens.size).toBe(1000);
  });

  it('refuses sizes that are not a positive integer (up to 1024)', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 1025]) expect(() => randomToken(bad)).toThrow(TypeError);
  });
});

describe('randomUuid', () => {
  it('is a lowercase version 4 UUID, and does not repeat', () => {
    const ids = Array.from({ length: 100 }, () => randomUuid());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(100);
  });
});

describe('CryptoError', () => {
  it('is an Error with a stable code and name', () => {
    const err = new CryptoError('KEY_UNKNOWN', 'no such key');
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('KEY_UNKNOWN');
    expect(err.name).toBe('CryptoError');
    expect(err.message).toBe('no such key');
  });
});
