/**
 * Brute-force defence for sign-in (AUTH-5). Every password attempt is counted in two buckets:
 *
 * - the client IP's (free attempts x 4, then a wait doubling from 1 s up to 15 min), and
 * - the account's: for a sign-in from a device this account has signed in on before (its device
 *   cookie matches a live device record), that device's own bucket; otherwise the account's
 *   bucket for unknown devices, keyed by the submitted email's hash so unknown emails behave
 *   exactly like known ones. Both allow `freeAttempts`, then double the wait from 1 s up to
 *   15 min; from `lockoutThreshold` failures on, each attempt waits `lockoutSeconds`; at
 *   MAX_CONSECUTIVE_FAILURES (NIST SP 800-63B-4: at most 100 consecutive failures per account)
 *   the bucket refuses until a success in it or a password reset clears it.
 *
 * So someone who only knows the email address can throttle and lock the unknown-device bucket,
 * never the owner's recognised devices; a passkey sign-in and the password reset do not go
 * through this throttle at all, and a reset clears every bucket of the account.
 *
 * The attempt is reserved atomically (kv.reserveBackoff: one Lua script on Redis) BEFORE the
 * password is checked, so parallel guesses, on one node or many, get exactly the attempts a
 * sequence would. A correct password gives its reservation back; a wrong one keeps it.
 *
 * What survives a restart: once an account bucket reaches `lockoutThreshold`, every attempt
 * reserved in it is also recorded in the database (sign-in-locks.ts) before the password is
 * checked, and the row is read before every reservation as the floor kv is never read below. So
 * the timed lockout, the 100-failure hard lock and the count between them hold when kv loses its
 * counters (a restart of the embedded node, a Redis without persistence). Below the threshold,
 * and for the per-IP bucket, kv alone counts: a lost store gives those attempts again.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { BackoffRule, Kv } from '../store/kv/types.ts';
import { clearSignInLocks, readSignInLock, recordSignInLock, type SignInLock } from './sign-in-locks.ts';

export interface ThrottleSettings {
  freeAttempts: number;
  lockoutThreshold: number;
  lockoutSeconds: number;
}

/** NIST SP 800-63B-4 (rate limiting): at most 100 consecutive failed attempts on one account. */
export const MAX_CONSECUTIVE_FAILURES = 100;
/** Per-IP free attempts are this many times the per-account ones. */
export const IP_FREE_FACTOR = 4;
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 900_000;
const IP_TTL_MS = 24 * 3_600_000;
// Long enough that the 100-failure bound is not reset by waiting a day.
const ACCOUNT_TTL_MS = 30 * 24 * 3_600_000;

/** The kv key part for an account: a hash, so kv never holds the address itself. */
export function accountKey(email: string): string {
  return createHash('sha256').update(`gatehouse.login.${email}`).digest('base64url').slice(0, 32);
}

/** One reserved sign-in attempt: report how the password check went. */
export interface LoginAttempt {
  /** Keeps the reservation; true when this failure locked the account's bucket. */
  failed(): Promise<{ locked: boolean }>;
  /** Gives the IP's reservation back and clears the account bucket this attempt was counted in. */
  succeeded(): Promise<void>;
}

/** Answer when the counter store or the database cannot say whether an attempt may run: never "allowed". */
function unavailable(cause: unknown): AppError {
  return new AppError('SERVICE_UNAVAILABLE', undefined, { headers: { 'retry-after': '5' }, cause });
}

export function createLoginThrottle(kv: Kv, db: Db, settings: ThrottleSettings, now: () => number) {
  const ipRule = (ip: string): BackoffRule => ({
    key: `auth:bo:ip:${ip}`,
    freeAttempts: settings.freeAttempts * IP_FREE_FACTOR,
    baseDelayMs: BASE_DELAY_MS,
    maxDelayMs: MAX_DELAY_MS,
    lockAfter: 0,
    lockMs: 0,
    maxAttempts: 0,
    ttlMs: IP_TTL_MS,
  });
  /**
   * The floor a recorded lock puts under the kv bucket. A timed lockout lapses when its kv bucket
   * would have (ACCOUNT_TTL_MS after the latest attempt); the hard lock never does.
   */
  const floorOf = (lock: SignInLock | null, at: number): Pick<BackoffRule, 'floorCount' | 'floorLast'> => {
    if (lock === null) return {};
    if (lock.hard) return { floorCount: Math.max(lock.failures, MAX_CONSECUTIVE_FAILURES), floorLast: lock.lastFailureAt };
    return lock.lastFailureAt > at - ACCOUNT_TTL_MS ? { floorCount: lock.failures, floorLast: lock.lastFailureAt } : {};
  };
  /** The account-side rule, never below the lock recorded in the database. */
  const accountRule = (key: string, lock: SignInLock | null, at: number): BackoffRule => ({
    key,
    ...floorOf(lock, at),
    freeAttempts: settings.freeAttempts,
    baseDelayMs: BASE_DELAY_MS,
    maxDelayMs: MAX_DELAY_MS,
    lockAfter: settings.lockoutThreshold,
    lockMs: settings.lockoutSeconds * 1000,
    maxAttempts: MAX_CONSECUTIVE_FAILURES,
    ttlMs: ACCOUNT_TTL_MS,
  });
  // The bucket's name in the database; its kv key is this behind `auth:bo:`.
  const unknownDeviceBucket = (account: string): string => `a:${account}`;
  const deviceBucket = (deviceId: string): string => `d:${deviceId}`;
  const kvKey = (bucket: string): string => `auth:bo:${bucket}`;

  /** The recorded lock of a bucket; a database that cannot answer refuses the attempt (503), never "not locked". */
  async function recordedLock(bucket: string): Promise<SignInLock | null> {
    try {
      return await readSignInLock(db, bucket);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * From the lockout threshold on, the count kv holds is written to the database before the
   * password is checked (at most one attempt per lockoutSeconds gets here), so a lost kv cannot
   * give it back. Also run on a refusal when the database holds less than kv (a write that failed
   * earlier). The same write for unknown emails as for known ones.
   */
  async function persist(bucket: string, count: number, lock: SignInLock | null, at: number): Promise<void> {
    if (count < settings.lockoutThreshold || (lock !== null && lock.failures >= count)) return;
    try {
      await recordSignInLock(db, bucket, count, at, count >= MAX_CONSECUTIVE_FAILURES);
    } catch (err) {
      throw unavailable(err);
    }
  }

  return {
    /**
     * Reserves one attempt for this account from this IP, from a recognised device (`deviceId`)
     * or an unknown one (null), after reading the bucket's recorded lock (one database read, for
     * unknown emails exactly as for known ones). Throws LOGIN_THROTTLED (429 + Retry-After), or
     * SERVICE_UNAVAILABLE (503 + Retry-After) when kv or the database cannot answer or the lock
     * cannot be recorded: an unchecked attempt is never let through.
     */
    async reserve(account: string, ip: string, deviceId: string | null): Promise<LoginAttempt> {
      const bucket = deviceId === null ? unknownDeviceBucket(account) : deviceBucket(deviceId);
      const at = now();
      const lock = await recordedLock(bucket);
      const rules = [ipRule(ip), accountRule(kvKey(bucket), lock, at)];
      let result;
      try {
        result = await kv.reserveBackoff(rules, at);
      } catch (err) {
        throw unavailable(err);
      }
      const count = result.counts[1] ?? 0;
      await persist(bucket, count, lock, at);
      if (!result.allowed) {
        throw new AppError('LOGIN_THROTTLED', undefined, { headers: { 'retry-after': String(Math.max(1, Math.ceil(result.retryAfterMs / 1000))) } });
      }
      return {
        async failed() {
          return { locked: count === settings.lockoutThreshold || count === MAX_CONSECUTIVE_FAILURES };
        },
        async succeeded() {
          await Promise.all([kv.releaseBackoff(rules[0]?.key ?? ''), kv.del(rules[1]?.key ?? '')]);
          // A success ends the lockout of the bucket it was counted in, in the database too.
          if (lock === null && count < settings.lockoutThreshold) return;
          try {
            await clearSignInLocks(db, [bucket]);
          } catch (err) {
            throw unavailable(err);
          }
        },
      };
    },

    /** A password reset: every bucket of the account (unknown devices and each of its devices) starts again, in kv and in the database. */
    async clearAccount(account: string, deviceIds: readonly string[]): Promise<void> {
      const buckets = [unknownDeviceBucket(account), ...deviceIds.map(deviceBucket)];
      // The database first: should it fail, the reset fails with the lock still in place.
      await clearSignInLocks(db, buckets);
      await Promise.all(buckets.map((bucket) => kv.del(kvKey(bucket))));
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
