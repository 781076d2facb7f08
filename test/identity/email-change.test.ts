/**
 * Changing the account's email address (AUTH-2, AUTH-7, issue 8 item 4): a sensitive action that
 * needs the password again and a fresh second factor, and takes effect only when the new address
 * confirms it. Each test names the behaviour or the attack it pins; the clock is injected.
 */
import type { LightMyRequestResponse } from 'fastify';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { STEP_UP_MAX_AGE_MS } from '../../src/identity/mfa.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { signUpUser, TEST_PASSWORD, type SignedInUser } from '../support/users.ts';

let clock = Date.parse('2026-11-23T10:00:00Z');
let t: TestApp;
let n = 0;
const freshEmail = (tag: string): string => `${tag}-${++n}@example.test`;
const ghe = /ghe_[A-Za-z0-9_-]{43}/;

beforeAll(async () => {
  t = await createTestApp({ now: () => clock, overrides: { 'rateLimit.enabled': false, 'auth.accessTokenTtlSeconds': 3600 } });
});
afterAll(async () => t.close());

function expectRefusal(res: LightMyRequestResponse, status: number, code: string): void {
  expect({ status: res.statusCode, code: res.json().error?.code }).toEqual({ status, code });
}

async function requestChange(u: SignedInUser, payload: object): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/v1/me/email', headers: u.auth, payload });
}

async function confirmChange(token: string): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/v1/auth/email-change/confirm', payload: { token } });
}

/** The code in the newest email-change mail to `to`. */
function codeMailedTo(to: string): string {
  const text = [...t.mail].reverse().find((m) => m.to === to && m.kind === 'email-change')?.text ?? '';
  const code = ghe.exec(text)?.[0];
  if (!code) throw new Error(`no email-change code mailed to ${to}`);
  return code;
}

async function pendingChanges(userId: string): Promise<number> {
  const r = await t.node.db.query("select 1 from email_tokens where user_id = $1 and purpose = 'email-change' and used_at is null", [userId]);
  return r.rowCount;
}

async function emailOf(userId: string): Promise<{ email: string; verified: boolean }> {
  const r = await t.node.db.query<{ email: string; verified: boolean }>('select email, email_verified_at is not null as verified from users where id = $1', [userId]);
  const row = r.rows[0];
  if (!row) throw new Error('no such user');
  return row;
}

async function login(email: string): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: TEST_PASSWORD } });
}

describe('email change: the happy path', () => {
  it('mails a code to the new address and a notice to the old one; the confirmation moves the account, verified, and the old address no longer signs in', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('mover'));
    const to = freshEmail('moved');
    const sentBefore = t.mail.length;
    const res = await requestChange(u, { email: to, password: TEST_PASSWORD });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ status: 'accepted' });
    const sent = t.mail.slice(sentBefore);
    // Queued together, delivered by the mail queue in no defined order.
    expect(sent.map((m) => [m.to, m.kind]).sort()).toEqual(
      [
        [to, 'email-change'],
        [u.email, 'notice'],
      ].sort(),
    );
    expect(await emailOf(u.userId)).toEqual({ email: u.email, verified: true });

    const code = codeMailedTo(to);
    expect((await confirmChange(code)).statusCode).toBe(200);
    expect(await emailOf(u.userId)).toEqual({ email: to, verified: true });
    const me = await t.app.inject({ url: '/v1/me', headers: u.auth });
    expect(me.json()).toMatchObject({ email: to, emailVerified: true });
    expect((await login(to)).statusCode).toBe(200);
    expectRefusal(await login(u.email), 401, 'INVALID_CREDENTIALS');
    // The old address is told the change happened.
    expect(t.mail.filter((m) => m.to === u.email && m.subject === 'Your email address was changed')).toHaveLength(1);
    // Audited in the platform log, without the code.
    const events = await t.node.db.asOwner((tx) => tx.query<{ action: string; body: string }>('select action, body from audit_events where tenant_id = $1 and body like $2 order by seq', [PLATFORM_TENANT_ID, `%${u.userId}%`]));
    expect(events.rows.map((e) => e.action)).toEqual(expect.arrayContaining(['auth.email.change_requested', 'auth.email.changed']));
    expect(events.rows.map((e) => e.body).join('\n')).not.toContain(code);
    expect(t.logText()).not.toContain(code);
  });

  it('addresses are normalised: a change to the same address in other case is refused as unchanged (400 EMAIL_UNCHANGED)', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('same'));
    expectRefusal(await requestChange(u, { email: u.email.toUpperCase(), password: TEST_PASSWORD }), 400, 'EMAIL_UNCHANGED');
    expect(await pendingChanges(u.userId)).toBe(0);
  });

  it('a newer request voids the earlier code', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('twice'));
    const first = freshEmail('first');
    expect((await requestChange(u, { email: first, password: TEST_PASSWORD })).statusCode).toBe(202);
    const firstCode = codeMailedTo(first);
    clock += 120_001;
    const second = freshEmail('second');
    expect((await requestChange(u, { email: second, password: TEST_PASSWORD })).statusCode).toBe(202);
    expectRefusal(await confirmChange(firstCode), 400, 'TOKEN_INVALID');
    expect((await confirmChange(codeMailedTo(second))).statusCode).toBe(200);
    expect((await emailOf(u.userId)).email).toBe(second);
  });
});

describe('email change: attacks', () => {
  it('attack: a stolen access token alone (no password, a wrong password) cannot move the account — 401 INVALID_CREDENTIALS, nothing stored or mailed', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('victim'));
    const attacker = freshEmail('attacker');
    const sentBefore = t.mail.length;
    expectRefusal(await requestChange(u, { email: attacker }), 401, 'INVALID_CREDENTIALS');
    expectRefusal(await requestChange(u, { email: attacker, password: 'not the password at all, sorry' }), 401, 'INVALID_CREDENTIALS');
    expect(await pendingChanges(u.userId)).toBe(0);
    expect(t.mail.slice(sentBefore)).toEqual([]);
  });

  it('an account without a password (made by SSO) changes its email within 5 minutes of signing in; a session older than that gets 403 REAUTHENTICATION_REQUIRED, nothing stored or mailed', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('sso-made'));
    await t.node.db.asOwner((tx) => tx.query('update users set password_hash = null where id = $1', [u.userId]));
    expect((await requestChange(u, { email: freshEmail('sso-moved') })).statusCode).toBe(202);

    clock += 5 * 60_000 + 1000;
    try {
      const sentBefore = t.mail.length;
      const pendingBefore = await pendingChanges(u.userId);
      expectRefusal(await requestChange(u, { email: freshEmail('sso-late') }), 403, 'REAUTHENTICATION_REQUIRED');
      expect(await pendingChanges(u.userId)).toBe(pendingBefore);
      expect(t.mail.slice(sentBefore)).toEqual([]);
    } finally {
      clock -= 5 * 60_000 + 1000;
    }
  });

  it('attack: a session whose second factor is older than 5 minutes cannot change the email — 403 MFA_STEP_UP_REQUIRED until a step-up', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('mfa'));
    const start = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp', headers: u.auth, payload: { password: TEST_PASSWORD } });
    const { factorId, otpauthUri } = start.json<{ factorId: string; otpauthUri: string }>();
    const secret = Secret.fromBase32(new URL(otpauthUri).searchParams.get('secret') ?? '');
    const code = (): string => TOTP.generate({ secret, algorithm: 'SHA1', digits: 6, period: 30, timestamp: clock });
    clock += 30_000;
    expect((await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp/confirm', headers: u.auth, payload: { factorId, code: code() } })).statusCode).toBe(200);
    // Confirming the factor counts as verifying it; 5 minutes later it no longer does.
    clock += STEP_UP_MAX_AGE_MS + 1;
    const to = freshEmail('mfa-new');
    expectRefusal(await requestChange(u, { email: to, password: TEST_PASSWORD }), 403, 'MFA_STEP_UP_REQUIRED');
    expect(await pendingChanges(u.userId)).toBe(0);
    clock += 30_000;
    expect((await t.app.inject({ method: 'POST', url: '/v1/me/mfa/step-up', headers: u.auth, payload: { code: code() } })).statusCode).toBe(200);
    expect((await requestChange(u, { email: to, password: TEST_PASSWORD })).statusCode).toBe(202);
    // The step-up expires: 5 minutes later the next request is refused again.
    clock += STEP_UP_MAX_AGE_MS + 120_001;
    expectRefusal(await requestChange(u, { email: freshEmail('later'), password: TEST_PASSWORD }), 403, 'MFA_STEP_UP_REQUIRED');
  });

  it('attack: probing whether an address has an account — the same 202, the owner of the address is told and no code exists', async () => {
    const owner = await signUpUser(t.app, t.mail, freshEmail('owner'));
    const prober = await signUpUser(t.app, t.mail, freshEmail('prober'));
    const free = await requestChange(prober, { email: freshEmail('free'), password: TEST_PASSWORD });
    clock += 120_001;
    const sentBefore = t.mail.length;
    const taken = await requestChange(prober, { email: owner.email, password: TEST_PASSWORD });
    expect({ status: taken.statusCode, body: taken.json() }).toEqual({ status: free.statusCode, body: free.json() });
    const sent = t.mail.slice(sentBefore);
    expect(sent.map((m) => [m.to, m.kind])).toEqual([[owner.email, 'account-exists']]);
    expect(sent[0]?.text).not.toMatch(ghe);
    // Only the earlier request (to the free address) is pending.
    expect(await pendingChanges(prober.userId)).toBe(1);
    expect((await emailOf(owner.userId)).email).toBe(owner.email);
  });

  it('attack: replaying, forging or expiring a code — 400 TOKEN_INVALID, the address unchanged', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('replay'));
    const to = freshEmail('replay-new');
    await requestChange(u, { email: to, password: TEST_PASSWORD });
    const code = codeMailedTo(to);
    expectRefusal(await confirmChange(`ghe_${'A'.repeat(43)}`), 400, 'TOKEN_INVALID');
    expectRefusal(await confirmChange(code.slice(0, -1) + (code.endsWith('A') ? 'B' : 'A')), 400, 'TOKEN_INVALID');
    expect((await confirmChange(code)).statusCode).toBe(200);
    expectRefusal(await confirmChange(code), 400, 'TOKEN_INVALID');

    const v = await signUpUser(t.app, t.mail, freshEmail('expire'));
    const later = freshEmail('expire-new');
    await requestChange(v, { email: later, password: TEST_PASSWORD });
    clock += t.config.auth.emailTokenTtlSeconds * 1000 + 1;
    expectRefusal(await confirmChange(codeMailedTo(later)), 400, 'TOKEN_INVALID');
    expect((await emailOf(v.userId)).email).toBe(v.email);
  });

  it('attack: a code of another purpose (a password-reset code) does not confirm an email change and is not spent by trying', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('purpose'));
    await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', payload: { email: u.email } });
    const reset = /ghp_[A-Za-z0-9_-]{43}/.exec([...t.mail].reverse().find((m) => m.to === u.email && m.kind === 'password-reset')?.text ?? '')?.[0] ?? '';
    expect(reset).not.toBe('');
    expectRefusal(await confirmChange(reset), 400, 'TOKEN_INVALID');
    const confirmed = await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset/confirm', payload: { token: reset, password: 'a brand new passphrase for this account 7' } });
    expect(confirmed.statusCode).toBe(200);
  });

  it('attack: a password-reset code mailed to the old address stops working once the address changed', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('oldreset'));
    await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', payload: { email: u.email } });
    const reset = /ghp_[A-Za-z0-9_-]{43}/.exec([...t.mail].reverse().find((m) => m.to === u.email && m.kind === 'password-reset')?.text ?? '')?.[0] ?? '';
    const to = freshEmail('oldreset-new');
    await requestChange(u, { email: to, password: TEST_PASSWORD });
    expect((await confirmChange(codeMailedTo(to))).statusCode).toBe(200);
    const used = await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset/confirm', payload: { token: reset, password: 'a brand new passphrase for this account 8' } });
    expectRefusal(used, 400, 'TOKEN_INVALID');
  });

  it('race: the address is taken by another account between request and confirmation — 409 EMAIL_TAKEN, nothing changed, the code spent', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('race'));
    const contested = freshEmail('contested');
    await requestChange(u, { email: contested, password: TEST_PASSWORD });
    const code = codeMailedTo(contested);
    await signUpUser(t.app, t.mail, contested);
    expectRefusal(await confirmChange(code), 409, 'EMAIL_TAKEN');
    expect(await emailOf(u.userId)).toEqual({ email: u.email, verified: true });
    expectRefusal(await confirmChange(code), 400, 'TOKEN_INVALID');
  });

  it('attack: flooding an inbox through repeated requests — the second within a minute gets 429 RATE_LIMITED and mails nothing', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('flood'));
    const target = freshEmail('flooded');
    expect((await requestChange(u, { email: target, password: TEST_PASSWORD })).statusCode).toBe(202);
    const sentBefore = t.mail.length;
    const again = await requestChange(u, { email: target, password: TEST_PASSWORD });
    expectRefusal(again, 429, 'RATE_LIMITED');
    expect(Number(again.headers['retry-after'])).toBeGreaterThan(55);
    expect(t.mail.length).toBe(sentBefore);
  });

  it('bad input: malformed address, unknown field, no session — clear 4xx, nothing stored', async () => {
    const u = await signUpUser(t.app, t.mail, freshEmail('bad'));
    expectRefusal(await requestChange(u, { email: 'not-an-address', password: TEST_PASSWORD }), 400, 'VALIDATION_FAILED');
    expectRefusal(await requestChange(u, { email: freshEmail('x'), password: TEST_PASSWORD, role: 'admin' }), 400, 'VALIDATION_FAILED');
    expectRefusal(await requestChange(u, { email: 'a'.repeat(400) + '@example.test', password: TEST_PASSWORD }), 400, 'VALIDATION_FAILED');
    expectRefusal(await t.app.inject({ method: 'POST', url: '/v1/me/email', payload: { email: freshEmail('anon'), password: TEST_PASSWORD } }), 401, 'UNAUTHENTICATED');
    expectRefusal(await confirmChange('short'), 400, 'VALIDATION_FAILED');
    expect(await pendingChanges(u.userId)).toBe(0);
  });
});
