/**
 * The sign-in lockout (AUTH-5) outlives the counter store: the 100-failure hard lock, the timed
 * lockout from auth.lockoutThreshold on and a recognised device's own lock are recorded in the
 * database, so an embedded node restarted on its data directory (memory kv emptied) and a Redis
 * that lost its keys both still refuse. A database that cannot answer refuses with 503.
 * Time is an injected clock.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../src/cli/runtime.ts';
import { DEVICE_COOKIE } from '../../src/identity/devices.ts';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { accountKey, MAX_CONSECUTIVE_FAILURES } from '../../src/identity/throttle.ts';
import type { Db } from '../../src/store/db-types.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { redisTarget, requireUrl } from '../support/services.ts';
import { startTwoNodes, twoNodeSkipReason, type TwoNodes } from '../support/two-nodes.ts';
import { signUpUser, TEST_PASSWORD } from '../support/users.ts';

const FREE = 3;
const LOCK_AFTER = 5;
const LOCK_SECONDS = 900;
const SETTINGS = { 'rateLimit.enabled': false, 'auth.lockoutThreshold': LOCK_AFTER, 'auth.throttleFreeAttempts': FREE, 'auth.lockoutSeconds': LOCK_SECONDS };
let clock = Date.parse('2026-12-07T08:00:00Z');

let ipCounter = 0;
/** A new client address per call: only the account's bucket can stop these. */
const freshIp = (): string => {
  ipCounter += 1;
  return `203.0.${Math.floor(ipCounter / 250) % 250}.${(ipCounter % 250) + 1}`;
};

function login(app: FastifyInstance, email: string, password: string, deviceCookie?: string): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { email, password },
    remoteAddress: freshIp(),
    ...(deviceCookie ? { cookies: { [DEVICE_COOKIE]: deviceCookie } } : {}),
  });
}

const outcome = (r: LightMyRequestResponse): string => `${r.statusCode} ${r.statusCode === 200 ? 'OK' : r.json().error?.code}`;

/** Wrong passwords, LOCK_SECONDS + 1 min apart (every one is checked), until `count` failed. */
async function failTimes(app: FastifyInstance, email: string, count: number, deviceCookie?: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    clock += (LOCK_SECONDS + 60) * 1000;
    expect(outcome(await login(app, email, 'attacker guess guess guess', deviceCookie))).toBe('401 INVALID_CREDENTIALS');
  }
}

/** The recorded lock of an account's unknown-device bucket (or a device's), as the database holds it. */
async function lockRow(db: Db, bucket: string): Promise<{ failures: number; hard: boolean } | undefined> {
  const { rows } = await db.query<{ failures: number; hard: boolean }>('select failures, hard_locked_at is not null as hard from sign_in_locks where bucket = $1', [bucket]);
  return rows[0];
}

/** The owner resets the password through the mailbox. */
async function resetPassword(app: FastifyInstance, mail: readonly MailMessage[], email: string, password: string): Promise<void> {
  expect((await app.inject({ method: 'POST', url: '/v1/auth/password-reset', payload: { email }, remoteAddress: freshIp() })).statusCode).toBe(202);
  const text = [...mail].reverse().find((m) => m.to === email && m.kind === 'password-reset')?.text ?? '';
  const token = /ghp_[A-Za-z0-9_-]{43}/.exec(text)?.[0];
  expect((await app.inject({ method: 'POST', url: '/v1/auth/password-reset/confirm', payload: { token, password }, remoteAddress: freshIp() })).statusCode).toBe(200);
}

describe('embedded node restarted on its data directory (PGlite + memory kv)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-lock-'));
  const masterKeys = `1:${randomBytes(32).toString('base64')}`;
  const open = (): Promise<TestApp> => createTestApp({ dataDir: dir, now: () => clock, overrides: { ...SETTINGS, 'keyring.masterKeys': masterKeys } });
  let t: TestApp;
  /** Stops the node and starts it again on the same directory: every kv counter is gone. */
  async function restart(): Promise<void> {
    await t.close();
    t = await open();
  }

  beforeAll(async () => {
    t = await open();
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`attack: ${MAX_CONSECUTIVE_FAILURES} consecutive failures, then a restart: the correct password is still 429 LOGIN_THROTTLED, however long one waits, until a password reset`, async () => {
    const email = 'hard-restart@example.com';
    await signUpUser(t.app, t.mail, email);
    await failTimes(t.app, email, MAX_CONSECUTIVE_FAILURES);
    expect(outcome(await login(t.app, email, TEST_PASSWORD))).toBe('429 LOGIN_THROTTLED');
    expect(await lockRow(t.node.db, `a:${accountKey(email)}`)).toEqual({ failures: MAX_CONSECUTIVE_FAILURES, hard: true });
    await restart();
    clock += 60 * 86_400_000;
    const refused = await login(t.app, email, TEST_PASSWORD);
    expect(outcome(refused)).toBe('429 LOGIN_THROTTLED');
    expect(refused.headers['retry-after']).toBe(String(LOCK_SECONDS));
    await restart();
    expect(outcome(await login(t.app, email, TEST_PASSWORD))).toBe('429 LOGIN_THROTTLED');
    // The reset lifts it, and it stays lifted across the next restart.
    await resetPassword(t.app, t.mail, email, 'a brand new passphrase after the lock');
    expect(await lockRow(t.node.db, `a:${accountKey(email)}`)).toBeUndefined();
    await restart();
    expect(outcome(await login(t.app, email, 'a brand new passphrase after the lock'))).toBe('200 OK');
  });

  it('attack: the timed lockout survives a restart: one attempt per lockoutSeconds, not a fresh set of free attempts; for an unknown email exactly as for a known one', async () => {
    const known = 'timed-restart@example.com';
    const unknown = 'timed-restart-nobody@example.com';
    await signUpUser(t.app, t.mail, known);
    for (let i = 0; i < LOCK_AFTER; i++) {
      clock += (LOCK_SECONDS + 60) * 1000;
      for (const email of [known, unknown]) expect(outcome(await login(t.app, email, 'attacker guess guess guess'))).toBe('401 INVALID_CREDENTIALS');
    }
    expect(t.mail.filter((m) => m.to === known && m.kind === 'lockout')).toHaveLength(1);
    for (const email of [known, unknown]) expect(await lockRow(t.node.db, `a:${accountKey(email)}`)).toEqual({ failures: LOCK_AFTER, hard: false });
    clock += 60_000;
    await restart();
    for (const email of [known, unknown]) {
      const refused = await login(t.app, email, email === known ? TEST_PASSWORD : 'attacker guess guess guess');
      expect(outcome(refused)).toBe('429 LOGIN_THROTTLED');
      expect(refused.headers['retry-after']).toBe(String(LOCK_SECONDS - 60));
    }
    // After the lock's wait, one guess, then the wait again (a fresh kv alone would give FREE free guesses).
    clock += (LOCK_SECONDS - 60) * 1000;
    for (const email of [known, unknown]) {
      expect(outcome(await login(t.app, email, 'attacker guess guess guess'))).toBe('401 INVALID_CREDENTIALS');
      expect(outcome(await login(t.app, email, 'attacker guess guess guess'))).toBe('429 LOGIN_THROTTLED');
      expect(await lockRow(t.node.db, `a:${accountKey(email)}`)).toEqual({ failures: LOCK_AFTER + 1, hard: false });
    }
    // The lockout mail is not sent again for the same lock after a restart.
    expect(t.mail.filter((m) => m.to === known && m.kind === 'lockout')).toHaveLength(0);
    // The owner, after the wait: signed in, and the lock is over (in the database too).
    clock += LOCK_SECONDS * 1000;
    expect(outcome(await login(t.app, known, TEST_PASSWORD))).toBe('200 OK');
    expect(await lockRow(t.node.db, `a:${accountKey(known)}`)).toBeUndefined();
  });

  it("attack: a recognised device's own lock survives a restart; the account's other devices are not affected", async () => {
    const email = 'device-restart@example.com';
    await signUpUser(t.app, t.mail, email);
    const first = await login(t.app, email, TEST_PASSWORD);
    const device = first.cookies.find((c) => c.name === DEVICE_COOKIE)?.value ?? '';
    expect(device).not.toBe('');
    await failTimes(t.app, email, LOCK_AFTER, device);
    await restart();
    expect(outcome(await login(t.app, email, TEST_PASSWORD, device))).toBe('429 LOGIN_THROTTLED');
    expect(outcome(await login(t.app, email, TEST_PASSWORD))).toBe('200 OK');
    // The reset clears the device's lock too.
    await resetPassword(t.app, t.mail, email, 'another brand new passphrase here');
    expect(outcome(await login(t.app, email, 'another brand new passphrase here', device))).toBe('200 OK');
  });

  it('a database that cannot say whether the account is locked refuses with 503 SERVICE_UNAVAILABLE + Retry-After, never "not locked"; one that cannot record the lock likewise', async () => {
    const email = 'db-down@example.com';
    await signUpUser(t.app, t.mail, email);
    await t.node.db.asOwner((tx) => tx.query('revoke select on sign_in_locks from gatehouse_app'));
    try {
      for (const address of [email, 'db-down-nobody@example.com']) {
        const r = await login(t.app, address, TEST_PASSWORD);
        expect(outcome(r)).toBe('503 SERVICE_UNAVAILABLE');
        expect(r.headers['retry-after']).toBe('5');
      }
    } finally {
      await t.node.db.asOwner((tx) => tx.query('grant select on sign_in_locks to gatehouse_app'));
    }
    clock += 86_400_000;
    await failTimes(t.app, email, LOCK_AFTER - 1);
    await t.node.db.asOwner((tx) => tx.query('revoke insert on sign_in_locks from gatehouse_app'));
    try {
      clock += (LOCK_SECONDS + 60) * 1000;
      const r = await login(t.app, email, 'attacker guess guess guess');
      expect(outcome(r)).toBe('503 SERVICE_UNAVAILABLE');
      expect(r.headers['retry-after']).toBe('5');
    } finally {
      await t.node.db.asOwner((tx) => tx.query('grant insert on sign_in_locks to gatehouse_app'));
    }
    // The refused attempt stayed counted in kv; the next refusal records it in the database.
    expect(outcome(await login(t.app, email, TEST_PASSWORD))).toBe('429 LOGIN_THROTTLED');
    expect(await lockRow(t.node.db, `a:${accountKey(email)}`)).toEqual({ failures: LOCK_AFTER, hard: false });
  });
});

const skip = twoNodeSkipReason;
(skip ? describe.skip : describe)(`two nodes on PostgreSQL + Redis, Redis keys lost${skip ? `: ${skip}` : ''}`, () => {
  const prefix = `t${randomBytes(6).toString('hex')}:`;
  let nodes: TwoNodes | undefined;
  let a: Node;
  let b: Node;
  let redis: Redis;

  beforeAll(async () => {
    const env = {
      GATEHOUSE_KV_KEY_PREFIX: prefix,
      GATEHOUSE_RATE_LIMIT_ENABLED: 'false',
      GATEHOUSE_AUTH_LOCKOUT_THRESHOLD: String(LOCK_AFTER),
      GATEHOUSE_AUTH_THROTTLE_FREE_ATTEMPTS: String(FREE),
      GATEHOUSE_AUTH_LOCKOUT_SECONDS: String(LOCK_SECONDS),
    };
    nodes = await startTwoNodes({ env, now: () => clock });
    ({ a, b } = nodes);
    redis = new Redis(requireUrl(redisTarget()), { lazyConnect: true });
    await redis.connect();
  });
  afterAll(async () => {
    redis?.disconnect();
    await nodes?.close();
  });

  /** What a Redis restart without persistence does to these nodes: every key of theirs is gone (this run's prefix only). */
  async function loseRedisKeys(): Promise<number> {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    return keys.length;
  }

  const guessesAtOnce = (email: string, n: number): Promise<LightMyRequestResponse[]> =>
    Promise.all(Array.from({ length: n }, (_, i) => login((i % 2 ? a : b).app, email, `parallel guess ${i} at the lock`)));

  it('attack: 30 guesses at once on both nodes around the threshold record the lock once; with Redis emptied, 30 more at once still get one guess per lockoutSeconds', async () => {
    const email = 'parallel-lock@example.com';
    const nodeMail = nodes?.mail ?? [];
    await signUpUser(a.app, nodeMail, email);
    await failTimes(a.app, email, LOCK_AFTER - 1);
    clock += (LOCK_SECONDS + 60) * 1000;
    const first = (await guessesAtOnce(email, 30)).map(outcome);
    expect(first.filter((o) => o === '401 INVALID_CREDENTIALS')).toHaveLength(1);
    expect(first.filter((o) => o === '429 LOGIN_THROTTLED')).toHaveLength(29);
    expect(nodeMail.filter((m) => m.to === email && m.kind === 'lockout')).toHaveLength(1);
    expect(await lockRow(a.db, `a:${accountKey(email)}`)).toEqual({ failures: LOCK_AFTER, hard: false });
    // The account's bucket was among the keys lost.
    expect(await redis.exists(`${prefix}auth:bo:a:${accountKey(email)}`)).toBe(1);
    expect(await loseRedisKeys()).toBeGreaterThan(0);
    expect(outcome(await login(b.app, email, TEST_PASSWORD))).toBe('429 LOGIN_THROTTLED');
    clock += LOCK_SECONDS * 1000;
    await loseRedisKeys();
    const second = (await guessesAtOnce(email, 30)).map(outcome);
    expect(second.filter((o) => o === '401 INVALID_CREDENTIALS')).toHaveLength(1);
    expect(second.filter((o) => o === '429 LOGIN_THROTTLED')).toHaveLength(29);
    expect(await lockRow(a.db, `a:${accountKey(email)}`)).toEqual({ failures: LOCK_AFTER + 1, hard: false });
  });

  it(`attack: ${MAX_CONSECUTIVE_FAILURES} consecutive failures across both nodes, Redis emptied: still 429 LOGIN_THROTTLED until a password reset`, async () => {
    const email = 'hard-redis@example.com';
    const nodeMail = nodes?.mail ?? [];
    await signUpUser(a.app, nodeMail, email);
    await failTimes(a.app, email, MAX_CONSECUTIVE_FAILURES - 1);
    // The last one races on both nodes: exactly one is checked, and the hard lock is recorded.
    clock += (LOCK_SECONDS + 60) * 1000;
    const last = (await guessesAtOnce(email, 20)).map(outcome);
    expect(last.filter((o) => o === '401 INVALID_CREDENTIALS')).toHaveLength(1);
    expect(await lockRow(a.db, `a:${accountKey(email)}`)).toEqual({ failures: MAX_CONSECUTIVE_FAILURES, hard: true });
    expect(await redis.exists(`${prefix}auth:bo:a:${accountKey(email)}`)).toBe(1);
    expect(await loseRedisKeys()).toBeGreaterThan(0);
    clock += 60 * 86_400_000;
    for (const node of [a, b]) expect(outcome(await login(node.app, email, TEST_PASSWORD))).toBe('429 LOGIN_THROTTLED');
    await resetPassword(b.app, nodeMail, email, 'the passphrase after the hard lock');
    expect(outcome(await login(a.app, email, 'the passphrase after the hard lock'))).toBe('200 OK');
  });
});
