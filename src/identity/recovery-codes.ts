/**
 * Recovery codes (AUTH-7): ten single-use codes shown once, for when the authenticator is lost.
 *
 * Each code is 120 bits from the CSPRNG, written as 24 Crockford base32 characters in groups of
 * four (no I, L, O or U to misread). They are stored as a plain SHA-256: a slow salted hash
 * protects guessable secrets, and a 120-bit random code is not guessable offline even at
 * billions of hashes a second (ASVS V6.5.2 asks for a password hash only below 112 bits), while
 * a plain hash lets a presented code be found with one indexed, single-use update.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Codes in one set. */
export const RECOVERY_CODE_COUNT = 10;

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const CODE_CHARS = 24;
const CODE_RE = /^[0-9a-hjkmnp-tv-z]{24}$/;

/** One new code, e.g. `7m2k-9q4d-x0ab-c3fz-8hgt-5rwe`. */
export function generateRecoveryCode(): string {
  const bytes = randomBytes((CODE_CHARS * 5) / 8);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(value >>> bits) & 31];
    }
    value &= (1 << bits) - 1;
  }
  return out.match(/.{4}/g)?.join('-') ?? out;
}

/** A fresh set of codes. */
export function generateRecoveryCodes(count: number = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, generateRecoveryCode);
}

/**
 * A typed code in its canonical form (lowercase, no separators, look-alikes folded as Crockford
 * base32 does), or null when it cannot be a code.
 */
export function normalizeRecoveryCode(input: string): string | null {
  const code = input.toLowerCase().replace(/[\s-]/g, '').replace(/[il]/g, '1').replace(/o/g, '0');
  return CODE_RE.test(code) ? code : null;
}

/** The stored form of a normalised code. */
export function hashRecoveryCode(normalized: string): string {
  return createHash('sha256').update(`gatehouse.recovery-code.${normalized}`, 'utf8').digest('base64url');
}
