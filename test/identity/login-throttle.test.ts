/**
 * The sign-in throttle (AUTH-5) under attack, through the HTTP API on one node: parallel guesses,
 * the per-IP half, an attacker who only knows the email address, and the 100-failure bound. The
 * two-node half is in multinode.test.ts. Time is an injected clock.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEVICE_COOKIE } from '../../src/identity/devices.ts';
import { MAX_CONSECUTIVE_FAILURES } from '../../src/identity/throttle.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { signUpUser, TEST_PASSWORD } from '../support/users.ts';

/** How many password checks (Argon2 verifications, real or dummy) ran: what the throttle must bound. */
const checks = vi.hoisted(() => ({ count: 0 }));
vi.mock('../../src/identity/passwords.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/identity/passwords.ts')>();
  return {
    ...real,
    verifyPassword: (...args: Parameters<typeof real.verifyPassword>) => {
      checks.count++;
      return real.verifyPassword(...args);
    },
    dummyVerify: (...args: Parameters<typeof real.dummyVerify>) => {
      checks.count++;
      return real.dummyVerify(...args);
    },
  };
});

const FREE = 5;
const LOCK_AFTER = 8;
let clock = Date.parse('2026-11-24T08:00:00Z');
let t: TestApp;
let ipCounter = 0;
/** A new client address per call: only the per-account half can stop these. */
const freshIp = (): string => {
  ipCounter += 1;
  return `203.0.${Math.floor(ipCounter / 250) % 250}.${(ipCounter % 250) + 1}`;
};

beforeAll(async () => {
  t = await createTestApp({ now: () => clock, overrides: { 'rateLimit.enabled': false, 'auth.lockoutThreshold': LOCK_AFTER, 'auth.throttleFreeAttempts': FREE } });
});
afterAll(async () => t.close());

function login(email: string, password: string, ip = freshIp(), deviceCookie?: string): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { email, password },
    remoteAddress: ip,
    ...(deviceCookie ? { cookies: { [DEVICE_COOKIE]: deviceCookie } } : {}),
  });
}

const outcome = (r: LightMyRequestResponse): string => `${r.statusCode} ${r.statusCode === 200 ? 'OK' : r.json().error?.code}`;

/** A verified user and the device cookie of the device they signed in on (a recognised device from now on). */
async function userWithDevice(email: string): Promise<string> {
  await signUpUser(t.app, t.mail, email);
  const signIn = await login(email, TEST_PASSWORD);
  expect(signIn.statusCode).toBe(200);
  const cookie = signIn.cookies.find((c) => c.name === DEVICE_COOKIE)?.value;
  if (!cookie) throw new Error('no device cookie');
  return cookie;
}

describe('parallel guesses (AUTH-5)', () => {
  it('attack: 60 wrong passwords sent at once, each from another address, get exactly the free attempts checked; the rest 429 LOGIN_THROTTLED before Argon2', async () => {
    await signUpUser(t.app, t.mail, 'parallel-victim@example.com');
    const before = checks.count;
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => login('parallel-victim@example.com', `wrong guess number ${i} here`)));
    const outcomes = results.map(outcome);
    expect(outcomes.filter((o) => o === '401 INVALID_CREDENTIALS')).toHaveLength(FREE);
    expect(outcomes.filter((o) => o === '429 LOGIN_THROTTLED')).toHaveLength(60 - FREE);
    expect(results.filter((r) => r.statusCode === 429).every((r) => Number(r.headers['retry-after']) >= 1)).toBe(true);
    // The throttled ones never reached Argon2.
    expect(checks.count - before).toBe(FREE);
    clock += 3_600_000;
  });

  it('attack: the same for an unknown email (no enumeration through the throttle)', async () => {
    const before = checks.count;
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => login('nobody-here@example.com', `wrong guess number ${i} here`)));
    expect(results.map(outcome).filter((o) => o === '401 INVALID_CREDENTIALS')).toHaveLength(FREE);
    expect(checks.count - before).toBe(FREE);
    clock += 3_600_000;
  });
});

describe('the per-address half (AUTH-5)', () => {
  it('attack: one address guessing across many accounts waits after 4x the free attempts, whatever account it tries next; other addresses are not slowed', async () => {
    const ip = '192.0.2.66';
    // One guess per account, so the per-account half never stops these.
    for (let i = 0; i < FREE * 4; i++) expect(outcome(await login(`spray${i}@example.com`, 'spray spray spray spray', ip))).toBe('401 INVALID_CREDENTIALS');
    const throttled = await login('spray-fresh@example.com', 'spray spray spray spray', ip);
    expect(outcome(throttled)).toBe('429 LOGIN_THROTTLED');
    expect(Number(throttled.headers['retry-after'])).toBe(1);
    expect(outcome(await login('spray-fresh@example.com', 'spray spray spray spray', '192.0.2.67'))).toBe('401 INVALID_CREDENTIALS');
    // The wait doubles from the address's next failure on.
    clock += 1_000;
    expect(outcome(await login('spray-other@example.com', 'spray spray spray spray', ip))).toBe('401 INVALID_CREDENTIALS');
    const again = await login('spray-third@example.com', 'spray spray spray spray', ip);
    expect(outcome(again)).toBe('429 LOGIN_THROTTLED');
    expect(Number(again.headers['retry-after'])).toBe(2);
    clock += 3_600_000;
  });

  it('a correct password gives the address its attempt back (a busy office behind one address is not slowed by its own sign-ins)', async () => {
    await signUpUser(t.app, t.mail, 'office@example.com');
    const ip = '192.0.2.90';
    for (let i = 0; i < FREE * 4 + 5; i++) expect((await login('office@example.com', TEST_PASSWORD, ip)).statusCode).toBe(200);
  });
});

describe('someone who knows only the email address (AUTH-5)', () => {
  it('attack: guesses without the device cookie lock out unknown devices, never the owner\'s recognised device', async () => {
    const device = await userWithDevice('owner@example.com');
    let locked = false;
    for (let i = 0; i < LOCK_AFTER && !locked; i++) {
      clock += 20 * 60_000;
      expect(outcome(await login('owner@example.com', 'attacker guess guess guess'))).toBe('401 INVALID_CREDENTIALS');
      locked = t.mail.some((m) => m.to === 'owner@example.com' && m.kind === 'lockout');
    }
    expect(locked).toBe(true);
    // Unknown devices (and a made-up device cookie) are locked out, even with the right password.
    expect(outcome(await login('owner@example.com', TEST_PASSWORD))).toBe('429 LOGIN_THROTTLED');
    expect(outcome(await login('owner@example.com', TEST_PASSWORD, freshIp(), 'A'.repeat(43)))).toBe('429 LOGIN_THROTTLED');
    // The owner's device is not.
    expect(outcome(await login('owner@example.com', TEST_PASSWORD, freshIp(), device))).toBe('200 OK');
    // ... and its sign-in does not lift the lock for the attacker.
    expect(outcome(await login('owner@example.com', 'attacker guess guess guess'))).toBe('429 LOGIN_THROTTLED');
  });

  it('attack: a stolen device cookie still gets only the free attempts, counted for that device alone', async () => {
    const device = await userWithDevice('stolen-cookie@example.com');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => login('stolen-cookie@example.com', `guess with cookie ${i} ok`, freshIp(), device)));
    expect(results.map(outcome).filter((o) => o === '401 INVALID_CREDENTIALS')).toHaveLength(FREE);
    // Unknown devices are unaffected by that device's failures.
    expect(outcome(await login('stolen-cookie@example.com', TEST_PASSWORD))).toBe('200 OK');
  });

  it(`attack: after ${MAX_CONSECUTIVE_FAILURES} consecutive failures unknown devices stay refused however long one waits; a password reset lifts it`, async () => {
    await signUpUser(t.app, t.mail, 'hundred@example.com');
    let failures = 0;
    for (let i = 0; i < MAX_CONSECUTIVE_FAILURES + 5; i++) {
      clock += 16 * 60_000;
      const r = await login('hundred@example.com', 'attacker keeps guessing on');
      if (r.statusCode === 401) failures++;
      else expect(outcome(r)).toBe('429 LOGIN_THROTTLED');
    }
    expect(failures).toBe(MAX_CONSECUTIVE_FAILURES);
    clock += 7 * 86_400_000;
    expect(outcome(await login('hundred@example.com', TEST_PASSWORD))).toBe('429 LOGIN_THROTTLED');
    // The owner resets the password through the mailbox: the lock is gone.
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', payload: { email: 'hundred@example.com' }, remoteAddress: freshIp() })).statusCode).toBe(202);
    const text = [...t.mail].reverse().find((m) => m.to === 'hundred@example.com' && m.kind === 'password-reset')?.text ?? '';
    const token = /ghp_[A-Za-z0-9_-]{43}/.exec(text)?.[0];
    const newPassword = 'a brand new passphrase for hundred';
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset/confirm', payload: { token, password: newPassword }, remoteAddress: freshIp() })).statusCode).toBe(200);
    expect(outcome(await login('hundred@example.com', newPassword))).toBe('200 OK');
  });
});
