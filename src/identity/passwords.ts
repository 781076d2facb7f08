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
 * size-exception: the password rules of NIST SP 800-63B-4 with their explanation and Argon2id
 * hashing; split by concern is pending (issue 17); no measured reason to keep it whole.
 */
import { createHash, randomBytes } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import type { Algorithm } from '@node-rs/argon2';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';

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
const MIN_MAX_LENGTH = 64;
/** The lowest `minLength` a policy may set (NIST: SHALL be at least 8 even with a second factor). */
const MIN_MIN_LENGTH = 8;
/** A UTF-8 code point is at most 4 bytes, so 64 code points always fit in 256 bytes. */
const MIN_MAX_BYTES = 4 * MIN_MAX_LENGTH;
/**
 * Before normalising, a string longer than this many UTF-16 units times `maxBytes` is refused
 * outright, so a huge body cannot make us run NFKC (or anything else) over megabytes. It cannot
 * refuse a password whose normalised form fits: NFKC composition merges at most 4 code points
 * into one, and a code point is at most 2 UTF-16 units, so the input of a normalised password of
 * `maxBytes` bytes (hence at most `maxBytes` code points) is at most 8 x `maxBytes` units.
 */
const RAW_UNITS_PER_BYTE = 16;
/** zxcvbn scores only this many leading characters (its cost grows fast with length; see `strengthEstimator`). */
const ZXCVBN_MAX_CHARS = 128;
/** At most this many user inputs, each cut to this many characters, reach zxcvbn. */
const MAX_USER_INPUTS = 32;
const MAX_USER_INPUT_CHARS = 256;
/** A range answer is about 30-40 KB (more with padding); a larger body is not a range answer. */
const MAX_BREACH_BODY_BYTES = 2 * 1024 * 1024;

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

function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Normalises, or returns undefined when the password could never have been accepted (too long). */
function normalizeBounded(password: string, maxBytes: number): string | undefined {
  if (password.length > RAW_UNITS_PER_BYTE * maxBytes) return undefined;
  const normalized = normalizePassword(password);
  if (Buffer.byteLength(normalized, 'utf8') > maxBytes) return undefined;
  return normalized;
}

// --- policy -----------------------------------------------------------------------------------------

function isInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n);
}

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

// --- Argon2id -------------------------------------------------------------------------------------

/** `Algorithm.Argon2id` of @node-rs/argon2 (an ambient const enum, which isolatedModules cannot read). */
const ARGON2ID = 2 as Algorithm;

function assertParams(params: Argon2Params): void {
  if (typeof params !== 'object' || params === null) throw new TypeError('argon2 params: not an object');
  const { memoryKiB, timeCost, parallelism } = params;
  if (!isInt(parallelism) || parallelism < 1 || parallelism > 255) throw new TypeError('argon2 params: parallelism must be an integer in [1, 255]');
  if (!isInt(timeCost) || timeCost < 1 || timeCost > 0xffff_ffff) throw new TypeError('argon2 params: timeCost must be a positive integer');
  if (!isInt(memoryKiB) || memoryKiB < 8 * parallelism || memoryKiB > 0xffff_ffff) {
    throw new TypeError('argon2 params: memoryKiB must be an integer >= 8 x parallelism');
  }
}

function argon2Options(params: Argon2Params): { memoryCost: number; timeCost: number; parallelism: number; algorithm: Algorithm } {
  return { memoryCost: params.memoryKiB, timeCost: params.timeCost, parallelism: params.parallelism, algorithm: ARGON2ID };
}

/**
 * Hashes a password with Argon2id (random 16-byte salt, 32-byte tag) into a PHC string.
 * Normalises first. Throws a TypeError for an empty password or one over 4096 bytes
 * (`maxBytes` of the default policy) after normalisation: check it with `checkNewPassword` first.
 * @example await hashPassword(password, DEFAULT_ARGON2) // '$argon2id$v=19$m=19456,t=2,p=1$...$...'
 */
export async function hashPassword(password: string, params: Argon2Params): Promise<string> {
  assertParams(params);
  if (typeof password !== 'string') throw new TypeError('a password must be a string');
  const normalized = normalizeBounded(password, DEFAULT_PASSWORD_POLICY.maxBytes);
  if (normalized === undefined) {
    throw new TypeError(`refusing to hash a password over ${DEFAULT_PASSWORD_POLICY.maxBytes} bytes (check it with checkNewPassword first)`);
  }
  if (normalized.length === 0) throw new TypeError('refusing to hash an empty password');
  const phc = await argon2Hash(Buffer.from(normalized, 'utf8'), argon2Options(params));
  if (!phc.startsWith('$argon2id$')) throw new Error('argon2: the hash is not argon2id');
  return phc;
}

interface ParsedPhc {
  algorithm: string;
  version: number;
  m: number;
  t: number;
  p: number;
}

const B64 = /^[A-Za-z0-9+/]+$/;
const DECIMAL = /^\d{1,10}$/;

/** Parses `$argon2{id,i,d}$v=19$m=..,t=..,p=..$salt$hash` (`v=` absent in version 1.0 hashes); undefined if malformed. */
function parsePhc(phc: string): ParsedPhc | undefined {
  if (typeof phc !== 'string' || phc.length > 512) return undefined;
  const parts = phc.split('$');
  if (parts[0] !== '') return undefined;
  const algorithm = parts[1];
  if (algorithm !== 'argon2id' && algorithm !== 'argon2i' && algorithm !== 'argon2d') return undefined;
  let rest = parts.slice(2);
  let version = 0x10;
  if (rest[0]?.startsWith('v=')) {
    const v = rest[0].slice(2);
    if (!DECIMAL.test(v)) return undefined;
    version = Number(v);
    rest = rest.slice(1);
  }
  if (rest.length !== 3) return undefined;
  const [paramText, salt, tag] = rest as [string, string, string];
  if (!B64.test(salt) || !B64.test(tag)) return undefined;
  const values = new Map<string, number>();
  for (const pair of paramText.split(',')) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (eq < 0 || !['m', 't', 'p'].includes(key) || values.has(key) || !DECIMAL.test(value)) return undefined;
    values.set(key, Number(value));
  }
  const m = values.get('m');
  const t = values.get('t');
  const p = values.get('p');
  if (m === undefined || t === undefined || p === undefined) return undefined;
  return { algorithm, version, m, t, p };
}

/**
 * Verifies a password against a stored PHC string. Normalises first. False, never a throw, for a
 * wrong password, a malformed or non-Argon2 hash, or a password over 4096 bytes (which could not
 * have been hashed; refused before any Argon2 work, as `dummyVerify` does).
 * @example if (await verifyPassword(user.passwordHash, body.password)) ...
 */
export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  if (typeof password !== 'string' || parsePhc(phc) === undefined) return false;
  const normalized = normalizeBounded(password, DEFAULT_PASSWORD_POLICY.maxBytes);
  if (normalized === undefined) return false;
  try {
    return await argon2Verify(phc, Buffer.from(normalized, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * True when a stored hash should be replaced at the next successful sign-in: it is not Argon2id
 * version 19 (0x13), its m, t or p is below `params`, or it cannot be parsed.
 * @example if (ok && needsRehash(user.passwordHash, argon2)) await store(await hashPassword(password, argon2))
 */
export function needsRehash(phc: string, params: Argon2Params): boolean {
  assertParams(params);
  const parsed = parsePhc(phc);
  if (parsed === undefined || parsed.algorithm !== 'argon2id' || parsed.version !== 0x13) return true;
  return parsed.m < params.memoryKiB || parsed.t < params.timeCost || parsed.p < params.parallelism;
}

/** A hash per parameter set of a random per-process password, built on first use. */
const dummyHashes = new Map<string, Promise<string>>();
const DUMMY_CACHE_MAX = 8;
const dummySecret = randomBytes(32);

function dummyHash(params: Argon2Params): Promise<string> {
  const key = `${params.memoryKiB}:${params.timeCost}:${params.parallelism}`;
  let pending = dummyHashes.get(key);
  if (pending === undefined) {
    if (dummyHashes.size >= DUMMY_CACHE_MAX) {
      const oldest = dummyHashes.keys().next().value;
      if (oldest !== undefined) dummyHashes.delete(oldest);
    }
    pending = argon2Hash(dummySecret, argon2Options(params));
    pending.catch(() => dummyHashes.delete(key));
    dummyHashes.set(key, pending);
  }
  return pending;
}

/**
 * For sign-ins to an unknown account: does the same work as `verifyPassword` (normalisation, the
 * same size limit, one Argon2id verification with `params`) against a fixed hash, and discards
 * the result, so the response takes as long as for an existing account. The hash is built once
 * per parameter set on first use (that first call costs one extra hash).
 * @example if (user === undefined) { await dummyVerify(body.password, argon2); return invalidCredentials() }
 */
export async function dummyVerify(password: string, params: Argon2Params): Promise<void> {
  assertParams(params);
  const phc = await dummyHash(params);
  if (typeof password !== 'string') return;
  const normalized = normalizeBounded(password, DEFAULT_PASSWORD_POLICY.maxBytes);
  if (normalized === undefined) return;
  try {
    await argon2Verify(phc, Buffer.from(normalized, 'utf8'));
  } catch {
    // the result and any failure are irrelevant: only the time spent matters
  }
}
