/**
 * Remembered devices and the new-device policy (AUTH-6, AUTH-7, issue 8 item 4): with
 * auth.rememberSecondFactorDays, a device on which the user verified a second factor at sign-in
 * skips the second step; auth.newDeviceRequiresSecondFactor asks again from a new network; a new
 * device is always asked. The clock is injected; networks are the client addresses.
 */
import type { LightMyRequestResponse } from 'fastify';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_COOKIE } from '../../src/identity/devices.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { signUpUser, TEST_PASSWORD } from '../support/users.ts';

let clock = Date.parse('2026-11-23T11:00:00Z');
let n = 0;
const HOME = '203.0.113.10';
const HOME_NEIGHBOUR = '203.0.113.77';
const ELSEWHERE = '198.51.100.20';

interface Enrolled {
  email: string;
  secret: Secret;
}

function code(secret: Secret): string {
  clock += 30_000;
  return TOTP.generate({ secret, algorithm: 'SHA1', digits: 6, period: 30, timestamp: clock });
}

async function enrolledUser(t: TestApp): Promise<Enrolled> {
  const u = await signUpUser(t.app, t.mail, `device-${++n}@example.test`);
  const start = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp', headers: u.auth, payload: { password: TEST_PASSWORD } });
  const { factorId, otpauthUri } = start.json<{ factorId: string; otpauthUri: string }>();
  const secret = Secret.fromBase32(new URL(otpauthUri).searchParams.get('secret') ?? '');
  const confirmed = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp/confirm', headers: u.auth, payload: { factorId, code: code(secret) } });
  expect(confirmed.statusCode).toBe(200);
  return { email: u.email, secret };
}

async function login(t: TestApp, email: string, ip: string, device?: string): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: TEST_PASSWORD }, remoteAddress: ip, ...(device ? { cookies: { [DEVICE_COOKIE]: device } } : {}) });
}

function deviceCookieOf(res: LightMyRequestResponse): string {
  const value = res.cookies.find((c) => c.name === DEVICE_COOKIE)?.value;
  if (!value) throw new Error('no device cookie set');
  return value;
}

/** A full sign-in with the second factor; returns the device cookie the node set. */
async function signInWithFactor(t: TestApp, u: Enrolled, ip: string, device?: string): Promise<string> {
  const first = await login(t, u.email, ip, device);
  expect(first.json()).toMatchObject({ mfaRequired: true });
  const done = await t.app.inject({
    method: 'POST',
    url: '/v1/auth/mfa/verify',
    payload: { mfaToken: first.json<{ mfaToken: string }>().mfaToken, code: code(u.secret) },
    remoteAddress: ip,
    ...(device ? { cookies: { [DEVICE_COOKIE]: device } } : {}),
  });
  expect(done.statusCode).toBe(200);
  return deviceCookieOf(done);
}

describe('remembered devices with the new-device policy on', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({
      now: () => clock,
      overrides: { 'rateLimit.enabled': false, 'auth.accessTokenTtlSeconds': 3600, 'auth.rememberSecondFactorDays': 30, 'auth.newDeviceRequiresSecondFactor': true },
    });
  });
  afterAll(async () => t.close());

  it('a device that verified the second factor signs in with the password alone from its network; the session still steps up for sensitive actions', async () => {
    const u = await enrolledUser(t);
    const device = await signInWithFactor(t, u, HOME);
    const again = await login(t, u.email, HOME_NEIGHBOUR, device);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toHaveProperty('accessToken');
    const access = again.json<{ accessToken: string }>().accessToken;
    const del = await t.app.inject({ method: 'DELETE', url: '/v1/me', headers: { authorization: `Bearer ${access}` }, payload: { password: TEST_PASSWORD } });
    expect({ status: del.statusCode, code: del.json().error?.code }).toEqual({ status: 403, code: 'MFA_STEP_UP_REQUIRED' });
  });

  it('attack: the password from a new device (no device cookie, or a forged one) — the second factor is asked', async () => {
    const u = await enrolledUser(t);
    await signInWithFactor(t, u, HOME);
    expect((await login(t, u.email, HOME)).json()).toMatchObject({ mfaRequired: true });
    expect((await login(t, u.email, HOME, 'A'.repeat(43))).json()).toMatchObject({ mfaRequired: true });
  });

  it('attack: a remembered device cookie used from another network — the second factor is asked (newDeviceRequiresSecondFactor)', async () => {
    const u = await enrolledUser(t);
    const device = await signInWithFactor(t, u, HOME);
    expect((await login(t, u.email, ELSEWHERE, device)).json()).toMatchObject({ mfaRequired: true });
  });

  it('another user\'s remembered device does not skip the second factor', async () => {
    const a = await enrolledUser(t);
    const b = await enrolledUser(t);
    const deviceOfA = await signInWithFactor(t, a, HOME);
    expect((await login(t, b.email, HOME, deviceOfA)).json()).toMatchObject({ mfaRequired: true });
  });

  it('the memory expires after rememberSecondFactorDays', async () => {
    const u = await enrolledUser(t);
    const device = await signInWithFactor(t, u, HOME);
    clock += 30 * 86_400_000 + 1;
    expect((await login(t, u.email, HOME, device)).json()).toMatchObject({ mfaRequired: true });
  });

  it('a password reset forgets every remembered device', async () => {
    const u = await enrolledUser(t);
    const device = await signInWithFactor(t, u, HOME);
    await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', payload: { email: u.email } });
    const reset = /ghp_[A-Za-z0-9_-]{43}/.exec([...t.mail].reverse().find((m) => m.to === u.email && m.kind === 'password-reset')?.text ?? '')?.[0] ?? '';
    const confirmed = await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset/confirm', payload: { token: reset, password: TEST_PASSWORD } });
    expect(confirmed.statusCode).toBe(200);
    expect((await login(t, u.email, HOME, device)).json()).toMatchObject({ mfaRequired: true });
  });
});

describe('remembered devices: the defaults and the policy off', () => {
  it('by default (rememberSecondFactorDays 0) every sign-in asks for the second factor, on a known device too', async () => {
    const t = await createTestApp({ now: () => clock, overrides: { 'rateLimit.enabled': false } });
    try {
      const u = await enrolledUser(t);
      const device = await signInWithFactor(t, u, HOME);
      expect((await login(t, u.email, HOME, device)).json()).toMatchObject({ mfaRequired: true });
    } finally {
      await t.close();
    }
  });

  it('with newDeviceRequiresSecondFactor off, a remembered device skips the second step from a new network too', async () => {
    const t = await createTestApp({ now: () => clock, overrides: { 'rateLimit.enabled': false, 'auth.rememberSecondFactorDays': 7 } });
    try {
      const u = await enrolledUser(t);
      const device = await signInWithFactor(t, u, HOME);
      const res = await login(t, u.email, ELSEWHERE, device);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toHaveProperty('accessToken');
    } finally {
      await t.close();
    }
  });
});
