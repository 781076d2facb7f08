/**
 * Recovery codes: 120 bits in Crockford base32, typed loosely, hashed for storage.
 */
import { describe, expect, it } from 'vitest';
import { generateRecoveryCode, generateRecoveryCodes, hashRecoveryCode, normalizeRecoveryCode, RECOVERY_CODE_COUNT } from '../../src/identity/recovery-codes.ts';

describe('recovery codes', () => {
  it('are 24 characters of the 32-letter alphabet (120 bits), every letter in use', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const normalized = normalizeRecoveryCode(generateRecoveryCode());
      expect(normalized).toMatch(/^[0-9a-hjkmnp-tv-z]{24}$/);
      for (const ch of normalized ?? '') seen.add(ch);
    }
    expect(seen.size).toBe(32);
  });

  it('come ten to a set, all different', () => {
    const codes = generateRecoveryCodes();
    expect(codes).toHaveLength(RECOVERY_CODE_COUNT);
    expect(new Set(codes).size).toBe(RECOVERY_CODE_COUNT);
  });

  it('are read the way people type them: case, spaces, dashes and look-alike letters do not matter', () => {
    const code = '7m2k-9q4d-x0ab-c3fz-8hgt-5rwe';
    const canonical = normalizeRecoveryCode(code);
    expect(canonical).toBe('7m2k9q4dx0abc3fz8hgt5rwe');
    expect(normalizeRecoveryCode(' 7M2K 9Q4D XOAB C3FZ 8HGT 5RWE ')).toBe(canonical);
    expect(normalizeRecoveryCode('7m2k-9q4d-x0ab-c3fz-8hgt-5rw')).toBeNull();
    expect(normalizeRecoveryCode('7m2k-9q4d-x0ab-c3fz-8hgt-5rwu')).toBeNull();
    expect(normalizeRecoveryCode('')).toBeNull();
  });

  it('are stored as a hash that does not contain the code', () => {
    const canonical = '7m2k9q4dx0abc3fz8hgt5rwe';
    expect(hashRecoveryCode(canonical)).toBe(hashRecoveryCode(canonical));
    expect(hashRecoveryCode(canonical)).not.toContain(canonical.slice(0, 6));
    expect(hashRecoveryCode(canonical)).not.toBe(hashRecoveryCode('7m2k9q4dx0abc3fz8hgt5rwf'));
  });
});
