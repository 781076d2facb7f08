/**
 * Passwords, shared part (AUTH-1, see passwords.ts): the policy and Argon2 parameter shapes, the
 * defaults, the length bounds, and the one normalisation (NFKC) every check and hash starts from.
 */

// --- types and defaults ------------------------------------------------------------------------

export interface Argon2Params {
  /** Memory cost in KiB (`m=`). */
  memoryKiB: number;
  /** Passes over memory (`t=`). */
  timeCost: number;
  /** Lanes (`p=`). */
  parallelism: number;
}

export interface PasswordPolicy {
  /** Shortest accepted, in Unicode code points after normalisation. 15 for password-only accounts; at least 8. */
  minLength: number;
  /** Longest accepted, in code points after normalisation; at least 64. */
  maxLength: number;
  /** Longest accepted, in UTF-8 bytes after normalisation: the cap of what Argon2 ever receives (at most 4096). */
  maxBytes: number;
  /** Lowest zxcvbn score (0-4) accepted. */
  minStrengthScore: 0 | 1 | 2 | 3 | 4;
  /** Online k-anonymity breach check of new passwords. */
  breachCheck: 'off' | 'fail-open' | 'fail-closed';
  /** Range API: GET `<breachRangeUrl><first 5 hex of SHA-1, uppercase>`, answer lines `<35-hex suffix>:<count>`. */
  breachRangeUrl: string;
  /** Deadline of the whole breach request (headers and body). */
  breachTimeoutMs: number;
}

export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = Object.freeze({
  minLength: 15,
  maxLength: 1024,
  maxBytes: 4096,
  minStrengthScore: 3,
  breachCheck: 'off',
  breachRangeUrl: 'https://api.pwnedpasswords.com/range/',
  breachTimeoutMs: 3000,
});

/** OWASP Password Storage Cheat Sheet minimum for Argon2id: 19 MiB, 2 passes, 1 lane. */
export const DEFAULT_ARGON2: Argon2Params = Object.freeze({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 });

export type PasswordProblem =
  | 'PASSWORD_TOO_SHORT'
  | 'PASSWORD_TOO_LONG'
  | 'PASSWORD_COMMON'
  | 'PASSWORD_BREACHED'
  | 'PASSWORD_TOO_WEAK'
  | 'PASSWORD_CHECK_UNAVAILABLE';

export interface PasswordCheckContext {
  /** The account's own data (email, name, username): a password built from them is weak. */
  userInputs?: string[];
  /** The fetch used by the breach check (default: the global one). */
  fetch?: typeof fetch;
}

export type PasswordCheckResult = { ok: true } | { ok: false; problem: PasswordProblem; message: string };

/** The lowest `maxLength` a policy may set (NIST: SHOULD permit at least 64 characters). */
export const MIN_MAX_LENGTH = 64;
/** The lowest `minLength` a policy may set (NIST: SHALL be at least 8 even with a second factor). */
export const MIN_MIN_LENGTH = 8;
/** A UTF-8 code point is at most 4 bytes, so 64 code points always fit in 256 bytes. */
export const MIN_MAX_BYTES = 4 * MIN_MAX_LENGTH;
/**
 * Before normalising, a string longer than this many UTF-16 units times `maxBytes` is refused
 * outright, so a huge body cannot make us run NFKC (or anything else) over megabytes. It cannot
 * refuse a password whose normalised form fits: NFKC composition merges at most 4 code points
 * into one, and a code point is at most 2 UTF-16 units, so the input of a normalised password of
 * `maxBytes` bytes (hence at most `maxBytes` code points) is at most 8 x `maxBytes` units.
 */
export const RAW_UNITS_PER_BYTE = 16;
/** zxcvbn scores only this many leading characters (its cost grows fast with length; see `strengthEstimator`). */
export const ZXCVBN_MAX_CHARS = 128;
/** At most this many user inputs, each cut to this many characters, reach zxcvbn. */
export const MAX_USER_INPUTS = 32;
export const MAX_USER_INPUT_CHARS = 256;
/** A range answer is about 30-40 KB (more with padding); a larger body is not a range answer. */
export const MAX_BREACH_BODY_BYTES = 2 * 1024 * 1024;

// --- normalisation and length --------------------------------------------------------------------

/**
 * The one transformation applied to a password before anything else looks at it: Unicode NFKC
 * (SP 800-63B-4 allows NFKC or NFKD), so the same password typed as composed or decomposed
 * characters, or with full-width letters, is the same password. No trimming, no case folding,
 * no truncation. (A lone UTF-16 surrogate, which no keyboard produces, is kept here and becomes
 * U+FFFD in the UTF-8 bytes Argon2 receives, the same way every time.)
 * @example normalizePassword('cafe\u0301 au lait') === 'caf\u00e9 au lait'
 */
export function normalizePassword(password: string): string {
  if (typeof password !== 'string') throw new TypeError('a password must be a string');
  return password.normalize('NFKC');
}

export function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Normalises, or returns undefined when the password could never have been accepted (too long). */
export function normalizeBounded(password: string, maxBytes: number): string | undefined {
  if (password.length > RAW_UNITS_PER_BYTE * maxBytes) return undefined;
  const normalized = normalizePassword(password);
  if (Buffer.byteLength(normalized, 'utf8') > maxBytes) return undefined;
  return normalized;
}

export function isInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n);
}
