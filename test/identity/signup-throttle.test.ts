/**
 * Sign-up throttling per client IP (AUTH-5): accounts created are counted (5 an hour by default),
 * refused sign-ups separately and more generously, both reserved before any work so parallel
 * sign-ups cannot exceed them. The two-node half is in multinode.test.ts.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';

const PASSWORD = 'correct horse battery staple 42';
const REFUSED_LIMIT = 10;
let clock = Date.parse('2026-11-25T10:00:00Z');
let t: TestApp;

beforeAll(async () => {
  t = await createTestApp({ now: () => clock, overrides: { 'rateLimit.enabled': false, 'auth.refusedSignupsPerIpPerHour': REFUSED_LIMIT } });
});
afterAll(async () => t.close());

function signup(email: string, password: string, ip: string): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password }, remoteAddress: ip });
}

const outcome = (r: LightMyRequestResponse): string => `${r.statusCode} ${r.statusCode === 202 ? 'ACCEPTED' : r.json().error?.code}`;

async function accountsNamed(prefix: string): Promise<number> {
  return (await t.node.db.query('select 1 from users where email like $1', [`${prefix}%`])).rowCount;
}

describe('sign-up throttle (AUTH-5)', () => {
  it('counts accounts created, not requests: after four weak passwords the address still creates five accounts in the hour', async () => {
    const ip = '192.0.2.10';
    for (let i = 0; i < 4; i++) expect(outcome(await signup(`weak${i}@example.com`, 'too-short-pw', ip))).toBe('400 PASSWORD_TOO_SHORT');
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) codes.push(outcome(await signup(`made${i}@example.com`, PASSWORD, ip)));
    expect(codes).toEqual([...Array(5).fill('202 ACCEPTED'), '429 RATE_LIMITED']);
    expect(await accountsNamed('made')).toBe(5);
    // An hour and a window later the address may create accounts again.
    clock += 2 * 3_600_000;
    expect(outcome(await signup('made-later@example.com', PASSWORD, ip))).toBe('202 ACCEPTED');
  });

  it('a taken email uses an account slot exactly like a new one (no enumeration through the limit)', async () => {
    const ip = '192.0.2.11';
    expect(outcome(await signup('taken@example.com', PASSWORD, '192.0.2.250'))).toBe('202 ACCEPTED');
    for (let i = 0; i < 5; i++) expect(outcome(await signup('taken@example.com', PASSWORD, ip))).toBe('202 ACCEPTED');
    expect(outcome(await signup('new-after-taken@example.com', PASSWORD, ip))).toBe('429 RATE_LIMITED');
  });

  it(`attack: refused sign-ups are limited on their own (${REFUSED_LIMIT} an hour here), then even a valid one waits; other addresses are not affected`, async () => {
    const ip = '192.0.2.12';
    for (let i = 0; i < REFUSED_LIMIT; i++) expect(outcome(await signup(`probe${i}@example.com`, 'aaaaaaaaaaaaaaaaaaaa', ip))).toBe('400 PASSWORD_TOO_WEAK');
    const refused = await signup('probe-valid@example.com', PASSWORD, ip);
    expect(outcome(refused)).toBe('429 RATE_LIMITED');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(await accountsNamed('probe')).toBe(0);
    expect(outcome(await signup('probe-valid@example.com', PASSWORD, '192.0.2.13'))).toBe('202 ACCEPTED');
  });

  it('attack: 20 valid sign-ups sent at once from one address create exactly 5 accounts', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => signup(`burst${i}@example.com`, PASSWORD, '192.0.2.14')));
    const outcomes = results.map(outcome);
    expect(outcomes.filter((o) => o === '202 ACCEPTED')).toHaveLength(5);
    expect(outcomes.filter((o) => o === '429 RATE_LIMITED')).toHaveLength(15);
    expect(await accountsNamed('burst')).toBe(5);
  });

  it('attack: 40 weak sign-ups at once from one address are refused for bad input at most the refused limit times', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => signup(`weakburst${i}@example.com`, 'aaaaaaaaaaaaaaaaaaaa', '192.0.2.15')));
    const outcomes = results.map(outcome);
    expect(outcomes.filter((o) => o === '400 PASSWORD_TOO_WEAK')).toHaveLength(REFUSED_LIMIT);
    expect(outcomes.filter((o) => o === '429 RATE_LIMITED')).toHaveLength(40 - REFUSED_LIMIT);
  });
});
