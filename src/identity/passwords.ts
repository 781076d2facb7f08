/**
 * Passwords (AUTH-1, NIST SP 800-63B-4 section 3.1.1): the rules a new password must meet, and
 * Argon2id hashing and verification.
 *
 * Rules for a new password, in this order (`checkNewPassword`):
 *  1. length, counted after NFKC normalisation: at least `minLength` code points (15 for
 *     password-only accounts; 8 is the lowest a policy may set, for passwords used with a
 *     second factor), at most `maxLength` code points (never below 64) and at most `maxBytes`
 *     bytes of UTF-8 (the most Argon2 ever receives);
 *  2. the offline blocklist (see `isCommonPassword`), which also holds the placeholder passwords
 *     Gatehouse itself prints in example commands (see `PRINTED_PLACEHOLDERS`);
 *  3. strength: the zxcvbn score with the dictionaries of @zxcvbn-ts/language-common (common
 *     passwords, diceware words), keyboard graphs and the account's own data (email, name);
 *  4. optionally the online k-anonymity breach check (only 5 hex digits of the SHA-1 leave).
 * There are no composition rules (no "must contain a digit"), as NIST requires. Nothing is
 * trimmed, case-folded or truncated, ever; the only transformation is Unicode NFKC, applied
 * identically when checking, hashing and verifying. Refusal messages are fixed text: they never
 * contain the password or any part of it.
 *
 * Hashes are Argon2id PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash` by default, the
 * OWASP minimum); `needsRehash` says when a stored hash is weaker than the current parameters,
 * and `dummyVerify` gives unknown-user sign-ins the same cost as a real verification.
 *
 * The parts: password-base.ts (shapes, defaults, normalisation), password-hashing.ts (Argon2id);
 * the rules a new password must meet are here.
 */
import { createHash } from 'node:crypto';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';
import {
  codePointLength,
  DEFAULT_PASSWORD_POLICY,
  isInt,
  MAX_BREACH_BODY_BYTES,
  MAX_USER_INPUT_CHARS,
  MAX_USER_INPUTS,
  MIN_MAX_BYTES,
  MIN_MAX_LENGTH,
  MIN_MIN_LENGTH,
  normalizePassword,
  RAW_UNITS_PER_BYTE,
  ZXCVBN_MAX_CHARS,
  type PasswordCheckContext,
  type PasswordCheckResult,
  type PasswordPolicy,
  type PasswordProblem,
} from './password-base.ts';

export { DEFAULT_ARGON2, DEFAULT_PASSWORD_POLICY, normalizePassword } from './password-base.ts';
export type { Argon2Params, PasswordCheckContext, PasswordCheckResult, PasswordPolicy, PasswordProblem } from './password-base.ts';
export { dummyVerify, hashPassword, needsRehash, verifyPassword } from './password-hashing.ts';

// --- policy -----------------------------------------------------------------------------------------

/**
 * Throws a TypeError unless `policy` is one the module can honour: minLength >= 8,
 * maxLength >= 64 and >= minLength, 256 <= maxBytes <= 4096 (so 64 code points always fit and
 * `hashPassword` takes whatever passed), a score 0-4, a known breach mode, an http(s) range URL
 * and a positive timeout.
 * @example assertPasswordPolicy({ ...DEFAULT_PASSWORD_POLICY, minLength: 8 })
 */
export function assertPasswordPolicy(policy: PasswordPolicy): void {
  if (typeof policy !== 'object' || policy === null) throw new TypeError('password policy: not an object');
  const { minLength, maxLength, maxBytes, minStrengthScore, breachCheck, breachRangeUrl, breachTimeoutMs } = policy;
  if (!isInt(minLength) || minLength < MIN_MIN_LENGTH) throw new TypeError(`password policy: minLength must be an integer >= ${MIN_MIN_LENGTH}`);
  if (!isInt(maxLength) || maxLength < MIN_MAX_LENGTH) throw new TypeError(`password policy: maxLength must be an integer >= ${MIN_MAX_LENGTH}`);
  if (maxLength < minLength) throw new TypeError('password policy: maxLength is below minLength');
  if (!isInt(maxBytes) || maxBytes < MIN_MAX_BYTES || maxBytes > DEFAULT_PASSWORD_POLICY.maxBytes) {
    throw new TypeError(`password policy: maxBytes must be an integer in [${MIN_MAX_BYTES}, ${DEFAULT_PASSWORD_POLICY.maxBytes}]`);
  }
  if (!isInt(minStrengthScore) || minStrengthScore < 0 || minStrengthScore > 4) throw new TypeError('password policy: minStrengthScore must be 0-4');
  if (breachCheck !== 'off' && breachCheck !== 'fail-open' && breachCheck !== 'fail-closed') {
    throw new TypeError("password policy: breachCheck must be 'off', 'fail-open' or 'fail-closed'");
  }
  let url: URL;
  try {
    url = new URL(breachRangeUrl);
  } catch {
    throw new TypeError('password policy: breachRangeUrl is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('password policy: breachRangeUrl must be http(s)');
  if (typeof breachTimeoutMs !== 'number' || !Number.isFinite(breachTimeoutMs) || breachTimeoutMs <= 0) {
    throw new TypeError('password policy: breachTimeoutMs must be a positive number');
  }
}

// --- offline blocklist -----------------------------------------------------------------------------

/**
 * Placeholder passwords that Gatehouse prints in its own example commands (the first-run `curl`,
 * the password-reset mail). They are public, so they are refused like a common password: pasting
 * an example unchanged must not create an account whose password is in the README. Compared in
 * lowercase after NFKC, with and without the angle brackets.
 */
export const PRINTED_PLACEHOLDERS: readonly string[] = Object.freeze(['<a long passphrase>', '<new password>']);

let placeholders: Set<string> | undefined;

function printedPlaceholders(): Set<string> {
  placeholders ??= new Set(PRINTED_PLACEHOLDERS.flatMap((p) => [p, p.replace(/^<|>$/g, '')]).map((p) => p.normalize('NFKC').toLowerCase()));
  return placeholders;
}

/** True for a placeholder password Gatehouse prints in an example command (see `PRINTED_PLACEHOLDERS`). */
export function isPrintedPlaceholder(password: string): boolean {
  return printedPlaceholders().has(normalizePassword(password).toLowerCase().trim());
}

let blocklist: Set<string> | undefined;

/** The ~49,000 common and breached passwords that @zxcvbn-ts/language-common ships (lowercase, 3-20 characters). */
function commonPasswords(): Set<string> {
  blocklist ??= new Set(dictionary['passwords-common'].map((w) => String(w).normalize('NFKC').toLowerCase()));
  return blocklist;
}

/** Punctuation, symbols and spaces; digits too: what people append to a common password to pass a rule. */
const PUNCTUATION = /^[\p{P}\p{S}\s]$/u;
const PUNCTUATION_OR_DIGIT = /^[\p{N}\p{P}\p{S}\s]$/u;

/** `chars` without its trailing characters of `cls` (a backwards scan: linear, unlike a `[...]+$` regex). */
function stripTrailing(chars: readonly string[], cls: RegExp): string {
  let end = chars.length;
  while (end > 0 && cls.test(chars[end - 1] as string)) end--;
  return chars.slice(0, end).join('');
}

/**
 * The offline blocklist: true when the lowercased normalised password is one of the common and
 * breached passwords of @zxcvbn-ts/language-common (`dictionary['passwords-common']`, ~49,000
 * entries, shipped with the product, no data copied from elsewhere), or is one of them followed
 * only by punctuation, symbols, spaces and digits: the password with its trailing punctuation
 * stripped ('123456!!' is '123456'), and with its trailing digits and punctuation stripped
 * ('Password123!' is 'password'), are looked up too. Nothing else is stripped (no leading
 * characters, nothing inside). Entries are 3-20 characters, so with minLength 15 few whole entries
 * remain possible, but an entry plus a decoration still is ('qwertyuiop12345!'); the list matters
 * most when an operator lowers minLength for accounts with a second factor.
 * @example isCommonPassword('Password123!') === true
 */
export function isCommonPassword(password: string): boolean {
  const lowered = normalizePassword(password).toLowerCase();
  const list = commonPasswords();
  if (list.has(lowered)) return true;
  const chars = Array.from(lowered);
  for (const stem of [stripTrailing(chars, PUNCTUATION), stripTrailing(chars, PUNCTUATION_OR_DIGIT)]) {
    if (stem.length > 0 && stem !== lowered && list.has(stem)) return true;
  }
  return false;
}

// --- strength (zxcvbn) -------------------------------------------------------------------------------

let zxcvbn: ZxcvbnFactory | undefined;

/**
 * One zxcvbn instance, built on first use (its ranked dictionaries take ~30 ms to build).
 * Levenshtein matching stays off: it compares the whole password with every dictionary word and
 * took up to 0.6 s per check on digit strings; the blocklist above covers the near-miss cases it
 * would find. Only the first 128 characters are scored, which bounds a check to ~0.1 s; scoring a
 * prefix can only under-rate a password (the rest adds guesses), never over-rate it.
 * (@zxcvbn-ts/language-en, the English word lists, is not a dependency; the common package's
 * password list and diceware words, the keyboard graphs and the user inputs are used.)
 */
function strengthEstimator(): ZxcvbnFactory {
  zxcvbn ??= new ZxcvbnFactory({ dictionary, graphs: adjacencyGraphs, useLevenshteinDistance: false, maxLength: ZXCVBN_MAX_CHARS });
  return zxcvbn;
}

/** Our own wording for zxcvbn's warning keys (it returns the keys when no translation is set). */
const WARNINGS: Readonly<Record<string, string>> = {
  straightRow: 'Straight rows of keys on your keyboard are easy to guess.',
  keyPattern: 'Short keyboard patterns are easy to guess.',
  simpleRepeat: 'Repeated characters such as "aaa" are easy to guess.',
  extendedRepeat: 'Repeated character patterns such as "abcabcabc" are easy to guess.',
  sequences: 'Common character sequences such as "abc" are easy to guess.',
  recentYears: 'Recent years are easy to guess.',
  dates: 'Dates are easy to guess.',
  topTen: 'This is a heavily used password.',
  topHundred: 'This is a frequently used password.',
  common: 'This is a commonly used password.',
  similarToCommon: 'This is similar to a commonly used password.',
  wordByItself: 'Single words are easy to guess.',
  namesByThemselves: 'Single names or surnames are easy to guess.',
  commonNames: 'Common names and surnames are easy to guess.',
  userInputs: 'It contains your name, email address or other details about you.',
  pwned: 'This password was exposed in a data breach.',
};

/** The account's data as zxcvbn user inputs: each value, and its word-like parts (the email's local part, domain labels, names). */
function userInputWords(inputs: readonly unknown[] | undefined): string[] {
  const out = new Set<string>();
  for (const raw of inputs ?? []) {
    if (typeof raw !== 'string' || raw.length === 0) continue;
    const value = raw.slice(0, MAX_USER_INPUT_CHARS).normalize('NFKC').toLowerCase();
    out.add(value);
    for (const part of value.split(/[^\p{L}\p{N}]+/u)) if (codePointLength(part) >= 3) out.add(part);
    if (out.size >= MAX_USER_INPUTS) break;
  }
  return [...out].slice(0, MAX_USER_INPUTS);
}

// --- online breach check ----------------------------------------------------------------------------

type BreachAnswer = 'breached' | 'clean' | 'unavailable';

async function readCapped(res: Response, maxBytes: number): Promise<string | undefined> {
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * k-anonymity range lookup: only the first 5 hex digits of the SHA-1 of the normalised password
 * are sent; the answer lists the suffixes sharing that prefix, compared here. Padding entries
 * (count 0, asked for with `Add-Padding`) never count as breached.
 */
async function breachLookup(normalized: string, policy: PasswordPolicy, fetchImpl: typeof fetch): Promise<BreachAnswer> {
  const digest = createHash('sha1').update(normalized, 'utf8').digest('hex').toUpperCase();
  const prefix = digest.slice(0, 5);
  const suffix = digest.slice(5);
  try {
    const res = await fetchImpl(`${policy.breachRangeUrl}${prefix}`, {
      method: 'GET',
      headers: { accept: 'text/plain', 'add-padding': 'true', 'user-agent': 'gatehouse-password-check' },
      signal: AbortSignal.timeout(policy.breachTimeoutMs),
    });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      return 'unavailable';
    }
    const body = await readCapped(res, MAX_BREACH_BODY_BYTES);
    if (body === undefined) return 'unavailable';
    for (const line of body.split('\n')) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      if (line.slice(0, colon).trim().toUpperCase() !== suffix) continue;
      const count = Number.parseInt(line.slice(colon + 1).trim(), 10);
      return Number.isFinite(count) && count > 0 ? 'breached' : 'clean';
    }
    return 'clean';
  } catch {
    return 'unavailable';
  }
}

// --- checkNewPassword --------------------------------------------------------------------------------

function refuse(problem: PasswordProblem, message: string): PasswordCheckResult {
  return { ok: false, problem, message };
}

/**
 * Checks a new password (registration, change, reset) against `policy`, in the order: length,
 * offline blocklist, zxcvbn strength, online breach check (when enabled). The first failing rule
 * is reported; messages never contain the password. Throws a TypeError for an invalid policy.
 * The zxcvbn step is synchronous CPU work (up to ~0.1 s for adversarial input): keep the routes
 * that call this rate-limited.
 * @example await checkNewPassword(body.password, DEFAULT_PASSWORD_POLICY, { userInputs: [email, name] })
 */
export async function checkNewPassword(password: string, policy: PasswordPolicy, context?: PasswordCheckContext): Promise<PasswordCheckResult> {
  assertPasswordPolicy(policy);
  if (typeof password !== 'string') throw new TypeError('a password must be a string');

  // 1. length, after normalisation
  const tooLong = refuse('PASSWORD_TOO_LONG', `Use at most ${policy.maxLength} characters.`);
  if (password.length > RAW_UNITS_PER_BYTE * policy.maxBytes) return tooLong;
  const normalized = normalizePassword(password);
  const length = codePointLength(normalized);
  if (length < policy.minLength) return refuse('PASSWORD_TOO_SHORT', `Use at least ${policy.minLength} characters.`);
  if (length > policy.maxLength) return tooLong;
  if (Buffer.byteLength(normalized, 'utf8') > policy.maxBytes) {
    return refuse('PASSWORD_TOO_LONG', `This password is too long (at most ${policy.maxBytes} bytes of UTF-8; most characters outside Latin scripts take 2 to 4).`);
  }

  // 2. offline blocklist, and the placeholders of our own example commands
  if (isPrintedPlaceholder(normalized)) {
    return refuse('PASSWORD_COMMON', 'This is the placeholder from an example command, which anyone can read. Choose your own password.');
  }
  if (isCommonPassword(normalized)) {
    return refuse('PASSWORD_COMMON', 'This is a commonly used password (or one with only digits or symbols added). Choose another.');
  }

  // 3. strength
  const result = strengthEstimator().check(normalized, userInputWords(context?.userInputs));
  if (result.score < policy.minStrengthScore) {
    const key = result.feedback.warning;
    const warning = key !== null && Object.hasOwn(WARNINGS, key) ? WARNINGS[key] : undefined;
    return refuse(
      'PASSWORD_TOO_WEAK',
      warning === undefined
        ? 'This password is too easy to guess. Add more words that are unusual together.'
        : `This password is too easy to guess: ${warning} Add more words that are unusual together.`,
    );
  }

  // 4. online breach check
  if (policy.breachCheck !== 'off') {
    const answer = await breachLookup(normalized, policy, context?.fetch ?? fetch);
    if (answer === 'breached') return refuse('PASSWORD_BREACHED', 'This password has appeared in a data breach. Choose another.');
    if (answer === 'unavailable' && policy.breachCheck === 'fail-closed') {
      return refuse('PASSWORD_CHECK_UNAVAILABLE', 'The password could not be checked right now. Try again later.');
    }
  }
  return { ok: true };
}
