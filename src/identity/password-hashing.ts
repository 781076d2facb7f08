/**
 * Passwords, hashing (AUTH-1, see passwords.ts): Argon2id PHC strings, verification, whether a
 * stored hash is weaker than the current parameters, and the dummy verification that gives
 * unknown-user sign-ins the same cost as a real one.
 */
import { randomBytes } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import type { Algorithm } from '@node-rs/argon2';
import { DEFAULT_PASSWORD_POLICY, isInt, normalizeBounded, type Argon2Params } from './password-base.ts';

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
