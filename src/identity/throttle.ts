/**
 * Brute-force defence for sign-in (AUTH-5): failures are counted per account (keyed by the
 * submitted email's hash, so unknown emails behave exactly like known ones) and per client IP.
 * After a few free attempts each further failure doubles the wait, from 1 s up to 15 min; after
 * `lockoutThreshold` consecutive failures the account is locked for `lockoutSeconds`.
 * State lives in kv, so the limits hold across nodes.
 */
import { createHash } from 'node:crypto';
import type { Kv } from '../store/kv/types.ts';

export interface ThrottleSettings {
  freeAttempts: number;
  lockoutThreshold: number;
  lockoutSeconds: number;
}

export interface ThrottleState {
  allowed: boolean;
  retryAfterSeconds: number;
  locked: boolean;
}

const MAX_DELAY_S = 900;
const WINDOW_MS = 24 * 3600 * 1000;

/** The kv key part for an account: a hash, so kv never holds the address itself. */
export function accountKey(email: string): string {
  return createHash('sha256').update(`gatehouse.login.${email}`).digest('base64url').slice(0, 32);
}

function delaySeconds(failures: number, free: number): number {
  if (failures < free) return 0;
  return Math.min(MAX_DELAY_S, 2 ** (failures - free));
}

export function createLoginThrottle(kv: Kv, settings: ThrottleSettings, now: () => number) {
  const ipFree = settings.freeAttempts * 4;

  async function read(prefix: string): Promise<{ count: number; last: number }> {
    const [count, last] = await Promise.all([kv.get(`${prefix}:n`), kv.get(`${prefix}:t`)]);
    return { count: Number(count ?? 0), last: Number(last ?? 0) };
  }

  return {
    /** Whether a sign-in for this account from this IP may be attempted now. */
    async check(account: string, ip: string): Promise<ThrottleState> {
      const t = now();
      const lockedUntil = Number((await kv.get(`auth:lock:${account}`)) ?? 0);
      if (lockedUntil > t) return { allowed: false, retryAfterSeconds: Math.ceil((lockedUntil - t) / 1000), locked: true };
      const [acct, byIp] = await Promise.all([read(`auth:fail:a:${account}`), read(`auth:fail:ip:${ip}`)]);
      const waitA = acct.last + delaySeconds(acct.count, settings.freeAttempts) * 1000 - t;
      const waitI = byIp.last + delaySeconds(byIp.count, ipFree) * 1000 - t;
      const wait = Math.max(waitA, waitI);
      return wait > 0 ? { allowed: false, retryAfterSeconds: Math.ceil(wait / 1000), locked: false } : { allowed: true, retryAfterSeconds: 0, locked: false };
    },

    /** Records a failure; returns true when this failure locked the account. */
    async fail(account: string, ip: string): Promise<boolean> {
      const t = String(now());
      const [count] = await Promise.all([
        kv.incr(`auth:fail:a:${account}:n`, 1, WINDOW_MS),
        kv.incr(`auth:fail:ip:${ip}:n`, 1, WINDOW_MS),
        kv.set(`auth:fail:a:${account}:t`, t, WINDOW_MS),
        kv.set(`auth:fail:ip:${ip}:t`, t, WINDOW_MS),
      ]);
      if (count >= settings.lockoutThreshold) {
        const until = now() + settings.lockoutSeconds * 1000;
        await kv.set(`auth:lock:${account}`, String(until), settings.lockoutSeconds * 1000);
        await Promise.all([kv.del(`auth:fail:a:${account}:n`), kv.del(`auth:fail:a:${account}:t`)]);
        return true;
      }
      return false;
    },

    /** A successful sign-in clears the account's failures (not the IP's). */
    async succeed(account: string): Promise<void> {
      await Promise.all([kv.del(`auth:fail:a:${account}:n`), kv.del(`auth:fail:a:${account}:t`)]);
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
