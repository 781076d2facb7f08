/**
 * Accounts and sessions end to end through the HTTP API (AUTH-1..6, AUTH-10): each test names
 * the behaviour or the attack it pins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { createTestApp, type TestApp } from '../support/app.ts';
import { readableMail } from '../support/smtp-sink.ts';

const PASSWORD = 'correct horse battery staple 42';
let clock = Date.parse('2026-11-22T12:00:00Z');
let t: TestApp;
let ipCounter = 0;
const freshIp = (): string => `198.51.100.${(ipCounter++ % 250) + 1}`;

beforeAll(async () => {
  t = await createTestApp({ now: () => clock, overrides: { 'rateLimit.enabled': false, 'auth.lockoutThreshold': 8 } });
});
afterAll(async () => t.close());

async function post(url: string, payload: object, headers: Record<string, string> = {}, remoteAddress = '203.0.113.10'): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url, payload, headers, remoteAddress });
}

function lastMail(to: string, kind: string): string {
  const m = [...t.mail].reverse().find((x) => x.to === to && x.kind === kind);
  if (!m) throw new Error(`no ${kind} mail to ${to}`);
  return m.text;
}

function codeIn(text: string, prefix: string): string {
  const m = new RegExp(`${prefix}[A-Za-z0-9_-]{43}`).exec(text);
  if (!m) throw new Error('no code in mail');
  return m[0];
}

async function verifiedUser(email: string, password = PASSWORD): Promise<{ access: string; refresh: string; sessionId: string }> {
  expect((await post('/v1/auth/signup', { email, password }, {}, freshIp())).statusCode).toBe(202);
  expect((await post('/v1/auth/verify-email', { token: codeIn(lastMail(email, 'verify-email'), 'ghv_') })).statusCode).toBe(200);
  const login = await post('/v1/auth/login', { email, password });
  expect(login.statusCode).toBe(200);
  const body = login.json();
  return { access: body.accessToken, refresh: body.refreshToken, sessionId: body.sessionId };
}

const me = (access: string): Promise<LightMyRequestResponse> => t.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${access}` } });

describe('sign-up and email verification', () => {
  it('signs up, verifies the email, signs in and reads /v1/me', async () => {
    const email = 'alice@example.com';
    const res = await post('/v1/auth/signup', { email: 'Alice@Example.com', password: PASSWORD }, {}, freshIp());
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ status: 'accepted' });
    const early = await post('/v1/auth/login', { email, password: PASSWORD });
    expect(early.statusCode).toBe(403);
    expect(early.json().error.code).toBe('EMAIL_NOT_VERIFIED');
    const token = codeIn(lastMail(email, 'verify-email'), 'ghv_');
    expect((await post('/v1/auth/verify-email', { token })).statusCode).toBe(200);
    // Single use.
    const again = await post('/v1/auth/verify-email', { token });
    expect(again.statusCode).toBe(400);
    expect(again.json().error.code).toBe('TOKEN_INVALID');
    const login = await post('/v1/auth/login', { email, password: PASSWORD });
    expect(login.statusCode).toBe(200);
    const body = login.json();
    expect(body.tokenType).toBe('Bearer');
    expect(body.expiresIn).toBe(600);
    expect(body.refreshToken).toMatch(/^ghr_/);
    const who = await me(body.accessToken);
    expect(who.statusCode).toBe(200);
    expect(who.json()).toMatchObject({ email, emailVerified: true, isOperator: false });
  });

  it('refuses weak, short and oversized passwords with their codes, storing nothing', async () => {
    const cases: [string, string][] = [
      ['too-short-pw', 'PASSWORD_TOO_SHORT'],
      ['a'.repeat(5000), 'PASSWORD_TOO_LONG'],
      ['aaaaaaaaaaaaaaaaaaaa', 'PASSWORD_TOO_WEAK'],
    ];
    for (const [password, code] of cases) {
      const email = `weak-${code.toLowerCase()}@example.com`;
      const res = await post('/v1/auth/signup', { email, password }, {}, freshIp());
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe(code);
      const stored = await t.node.db.query('select 1 from users where email = $1', [email]);
      expect(stored.rowCount).toBe(0);
    }
  });

  it('refuses unknown fields and malformed emails', async () => {
    const extra = await post('/v1/auth/signup', { email: 'x@example.com', password: PASSWORD, isOperator: true }, {}, freshIp());
    expect(extra.statusCode).toBe(400);
    expect(extra.json().error.message).toContain('body.isOperator: unknown field');
    const bad = await post('/v1/auth/signup', { email: 'not-an-email', password: PASSWORD }, {}, freshIp());
    expect(bad.statusCode).toBe(400);
  });
});

describe('no account enumeration', () => {
  it('sign-up with a taken email answers exactly like a new one and mails the owner instead', async () => {
    await verifiedUser('taken@example.com');
    const taken = await post('/v1/auth/signup', { email: 'taken@example.com', password: PASSWORD }, {}, freshIp());
    const fresh = await post('/v1/auth/signup', { email: 'brand-new@example.com', password: PASSWORD }, {}, freshIp());
    expect(taken.statusCode).toBe(fresh.statusCode);
    expect(taken.body).toBe(fresh.body);
    expect(lastMail('taken@example.com', 'account-exists')).toContain('already has one');
  });

  it('sign-in with an unknown email and with a wrong password give identical answers', async () => {
    await verifiedUser('known@example.com');
    const unknown = await post('/v1/auth/login', { email: 'nobody@example.com', password: PASSWORD }, {}, freshIp());
    const wrong = await post('/v1/auth/login', { email: 'known@example.com', password: 'wrong password entirely 99' }, {}, freshIp());
    expect(unknown.statusCode).toBe(401);
    expect(wrong.statusCode).toBe(401);
    const strip = (r: LightMyRequestResponse) => ({ ...r.json().error, requestId: undefined });
    expect(strip(unknown)).toEqual(strip(wrong));
    expect(strip(unknown).code).toBe('INVALID_CREDENTIALS');
  });

  it('attack: repeated reset and sign-up requests cannot flood the owner\'s inbox (one mail a minute)', async () => {
    await verifiedUser('inbox@example.com');
    const before = t.mail.filter((m) => m.to === 'inbox@example.com').length;
    for (let i = 0; i < 5; i++) {
      expect((await post('/v1/auth/password-reset', { email: 'inbox@example.com' })).statusCode).toBe(202);
      expect((await post('/v1/auth/signup', { email: 'inbox@example.com', password: PASSWORD }, {}, freshIp())).statusCode).toBe(202);
    }
    const sent = t.mail.filter((m) => m.to === 'inbox@example.com').slice(before);
    expect(sent.filter((m) => m.kind === 'password-reset')).toHaveLength(1);
    expect(sent.filter((m) => m.kind === 'account-exists')).toHaveLength(1);
  });

  it('password reset answers the same for known and unknown emails', async () => {
    await verifiedUser('resetme@example.com');
    const a = await post('/v1/auth/password-reset', { email: 'resetme@example.com' });
    const b = await post('/v1/auth/password-reset', { email: 'ghost@example.com' });
    expect(a.statusCode).toBe(202);
    expect(a.body).toBe(b.body);
    expect(t.mail.some((m) => m.to === 'ghost@example.com')).toBe(false);
  });
});

describe('refresh tokens', () => {
  it('rotate on every use; a racing reuse within the grace window gets the same successor', async () => {
    const u = await verifiedUser('rotate@example.com');
    const first = await post('/v1/auth/refresh', { refreshToken: u.refresh });
    expect(first.statusCode).toBe(200);
    const racing = await post('/v1/auth/refresh', { refreshToken: u.refresh });
    expect(racing.statusCode).toBe(200);
    expect(racing.json().refreshToken).toBe(first.json().refreshToken);
    expect(first.json().refreshToken).not.toBe(u.refresh);
    expect((await me(first.json().accessToken)).statusCode).toBe(200);
  });

  it('attack: replaying a used refresh token after the grace window revokes the whole session', async () => {
    const u = await verifiedUser('replay@example.com');
    const next = (await post('/v1/auth/refresh', { refreshToken: u.refresh })).json();
    clock += 11_000;
    const replay = await post('/v1/auth/refresh', { refreshToken: u.refresh });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe('REFRESH_TOKEN_REUSED');
    // The successor and every access token of the family are dead too.
    expect((await post('/v1/auth/refresh', { refreshToken: next.refreshToken })).json().error.code).toBe('REFRESH_TOKEN_INVALID');
    expect((await me(next.accessToken)).statusCode).toBe(401);
    expect((await me(u.access)).statusCode).toBe(401);
  });

  it('attack: forged or malformed refresh tokens are refused', async () => {
    for (const refreshToken of ['ghr_' + 'A'.repeat(43), 'not-a-token', 'ghr_../../etc']) {
      const r = await post('/v1/auth/refresh', { refreshToken });
      expect(r.statusCode).toBe(401);
      expect(r.json().error.code).toBe('REFRESH_TOKEN_INVALID');
    }
  });
});

describe('revocation is immediate', () => {
  it('logout kills the access token at once, not at expiry', async () => {
    const u = await verifiedUser('logout@example.com');
    expect((await me(u.access)).statusCode).toBe(200);
    expect((await post('/v1/auth/logout', {}, { authorization: `Bearer ${u.access}` })).statusCode).toBe(200);
    expect((await me(u.access)).statusCode).toBe(401);
    expect((await post('/v1/auth/refresh', { refreshToken: u.refresh })).statusCode).toBe(401);
  });

  it('logout-all ends every session; password change ends the others; reset ends all', async () => {
    const email = 'many@example.com';
    const a = await verifiedUser(email);
    const b = (await post('/v1/auth/login', { email, password: PASSWORD })).json();
    const c = (await post('/v1/auth/login', { email, password: PASSWORD })).json();
    const list = await t.app.inject({ url: '/v1/me/sessions', headers: { authorization: `Bearer ${a.access}` } });
    expect(list.json().sessions).toHaveLength(3);
    const newPassword = 'an entirely different passphrase 77';
    const change = await post('/v1/auth/password-change', { currentPassword: PASSWORD, newPassword }, { authorization: `Bearer ${a.access}` });
    expect(change.statusCode).toBe(200);
    expect((await me(a.access)).statusCode).toBe(200);
    expect((await me(b.accessToken)).statusCode).toBe(401);
    expect((await me(c.accessToken)).statusCode).toBe(401);
    expect(lastMail(email, 'notice')).toContain('password of your Gatehouse account was changed');
    expect((await post('/v1/auth/logout-all', {}, { authorization: `Bearer ${a.access}` })).json()).toMatchObject({ ok: true, revoked: 1 });
    expect((await me(a.access)).statusCode).toBe(401);
    // Reset: the code arrives by mail, works once, and every session ends.
    const d = (await post('/v1/auth/login', { email, password: newPassword })).json();
    await post('/v1/auth/password-reset', { email });
    const code = codeIn(lastMail(email, 'password-reset'), 'ghp_');
    const weak = await post('/v1/auth/password-reset/confirm', { token: code, password: 'short' });
    expect(weak.json().error.code).toBe('PASSWORD_TOO_SHORT');
    expect((await post('/v1/auth/password-reset/confirm', { token: code, password: PASSWORD })).statusCode).toBe(200);
    expect((await post('/v1/auth/password-reset/confirm', { token: code, password: PASSWORD })).json().error.code).toBe('TOKEN_INVALID');
    expect((await me(d.accessToken)).statusCode).toBe(401);
    expect(lastMail(email, 'notice')).toContain('was reset');
    expect((await post('/v1/auth/login', { email, password: PASSWORD })).statusCode).toBe(200);
  });

  it('revoking one session from the list ends only that one', async () => {
    const email = 'pick@example.com';
    const a = await verifiedUser(email);
    const b = (await post('/v1/auth/login', { email, password: PASSWORD })).json();
    const del = await t.app.inject({ method: 'DELETE', url: `/v1/me/sessions/${b.sessionId}`, headers: { authorization: `Bearer ${a.access}` } });
    expect(del.statusCode).toBe(200);
    expect((await me(b.accessToken)).statusCode).toBe(401);
    expect((await me(a.access)).statusCode).toBe(200);
    const other = await t.app.inject({ method: 'DELETE', url: `/v1/me/sessions/${a.sessionId}`, headers: { authorization: `Bearer ${b.accessToken}` } });
    expect(other.statusCode).toBe(401);
  });

  it('attack: an access token with alg none is refused', async () => {
    const u = await verifiedUser('algnone@example.com');
    const [, payload] = u.access.split('.');
    const forged = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${payload}.`;
    expect((await me(forged)).statusCode).toBe(401);
  });

  it('an expired access token is refused', async () => {
    const u = await verifiedUser('expire@example.com');
    clock += 601_000 + 30_000;
    expect((await me(u.access)).statusCode).toBe(401);
  });
});

describe('brute force (AUTH-5)', () => {
  it('growing delays after the free attempts: 429 LOGIN_THROTTLED with Retry-After, the same for unknown emails', async () => {
    await verifiedUser('victim@example.com');
    const attempt = (email: string) => post('/v1/auth/login', { email, password: 'guess guess guess guess' }, {}, '192.0.2.77');
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 6; i++) {
      known.push((await attempt('victim@example.com')).statusCode);
      unknown.push((await attempt('no-such-victim@example.com')).statusCode);
    }
    expect(known.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(known[5]).toBe(429);
    expect(unknown).toEqual(known);
    const throttled = await attempt('victim@example.com');
    expect(throttled.json().error.code).toBe('LOGIN_THROTTLED');
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Even the right password waits.
    expect((await post('/v1/auth/login', { email: 'victim@example.com', password: PASSWORD }, {}, '192.0.2.77')).statusCode).toBe(429);
    clock += 2_000;
    expect((await post('/v1/auth/login', { email: 'victim@example.com', password: PASSWORD }, {}, '192.0.2.78')).statusCode).toBe(200);
  });

  it('locks the account after the threshold and mails the owner; the lock expires', async () => {
    await verifiedUser('lockme@example.com');
    let locked = false;
    for (let i = 0; i < 20 && !locked; i++) {
      clock += 20 * 60_000;
      const r = await post('/v1/auth/login', { email: 'lockme@example.com', password: 'nope nope nope nope' }, {}, freshIp());
      locked = r.statusCode === 401 && t.mail.some((m) => m.to === 'lockme@example.com' && m.kind === 'lockout');
    }
    expect(locked).toBe(true);
    const r = await post('/v1/auth/login', { email: 'lockme@example.com', password: PASSWORD }, {}, freshIp());
    expect(r.statusCode).toBe(429);
    clock += 16 * 60_000;
    expect((await post('/v1/auth/login', { email: 'lockme@example.com', password: PASSWORD }, {}, freshIp())).statusCode).toBe(200);
  });

  it('sign-up is limited per client IP (5 per hour by default)', async () => {
    const ip = '192.0.2.200';
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await post('/v1/auth/signup', { email: `flood${i}@example.com`, password: PASSWORD }, {}, ip)).statusCode);
    expect(codes).toEqual([202, 202, 202, 202, 202, 429]);
  });
});

describe('browser sessions (AUTH-4)', () => {
  const cookieHeader = (res: LightMyRequestResponse): string =>
    res.cookies.map((c) => `${c.name}=${c.value}`).join('; ');

  it('sets __Host- cookies (HttpOnly, Secure, SameSite=Lax, Path=/) and needs CSRF for state changes', async () => {
    const email = 'browser@example.com';
    await verifiedUser(email);
    const login = await post('/v1/auth/login', { email, password: PASSWORD, mode: 'cookie' });
    expect(login.statusCode).toBe(200);
    const { csrfToken } = login.json();
    const access = login.cookies.find((c) => c.name === '__Host-gh_access');
    expect(access).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });
    expect(access?.domain).toBeUndefined();
    expect(login.cookies.find((c) => c.name === '__Host-gh_refresh')).toMatchObject({ httpOnly: true, secure: true, path: '/' });
    expect(login.cookies.find((c) => c.name === '__Host-gh_csrf')?.httpOnly).toBeFalsy();
    expect(login.json().accessToken).toBeUndefined();
    const cookie = cookieHeader(login);
    expect((await t.app.inject({ url: '/v1/me', headers: { cookie } })).statusCode).toBe(200);

    const origin = t.app.gatehouse.services.config.server.publicUrl ?? 'http://127.0.0.1:8700';
    // Attack: a cross-site form post carries the cookies but cannot read or send the CSRF token.
    const noToken = await t.app.inject({ method: 'POST', url: '/v1/auth/logout', payload: {}, headers: { cookie, origin } });
    expect(noToken.statusCode).toBe(403);
    expect(noToken.json().error.code).toBe('CSRF_FAILED');
    const evil = await t.app.inject({ method: 'POST', url: '/v1/auth/logout', payload: {}, headers: { cookie, origin: 'https://evil.example', 'x-csrf-token': csrfToken } });
    expect(evil.json().error.code).toBe('CSRF_FAILED');
    const wrongToken = await t.app.inject({ method: 'POST', url: '/v1/auth/logout', payload: {}, headers: { cookie, origin, 'x-csrf-token': 'x'.repeat(43) } });
    expect(wrongToken.json().error.code).toBe('CSRF_FAILED');
    // Refresh through the cookie needs the same proof.
    const refreshNoCsrf = await t.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: {}, headers: { cookie, origin } });
    expect(refreshNoCsrf.json().error.code).toBe('CSRF_FAILED');
    const ok = await t.app.inject({ method: 'POST', url: '/v1/auth/logout', payload: {}, headers: { cookie, origin, 'x-csrf-token': csrfToken } });
    expect(ok.statusCode).toBe(200);
    expect((await t.app.inject({ url: '/v1/me', headers: { cookie } })).statusCode).toBe(401);
  });

  it('bearer requests need no CSRF token', async () => {
    const u = await verifiedUser('bearer-only@example.com');
    expect((await post('/v1/auth/logout', {}, { authorization: `Bearer ${u.access}`, origin: 'https://elsewhere.example' })).statusCode).toBe(200);
  });
});

describe('devices (AUTH-6)', () => {
  it('records devices, and mails the owner about a sign-in from a new device or network', async () => {
    const email = 'devices@example.com';
    const u = await verifiedUser(email);
    const first = await post('/v1/auth/login', { email, password: PASSWORD }, { 'user-agent': 'Laptop' }, '203.0.113.50');
    const deviceCookie = first.cookies.find((c) => c.name === '__Host-gh_device');
    expect(deviceCookie).toMatchObject({ httpOnly: true, secure: true });
    const before = t.mail.filter((m) => m.to === email && m.kind === 'new-device').length;
    // Same device, new network (another /24).
    await post('/v1/auth/login', { email, password: PASSWORD }, { cookie: `__Host-gh_device=${deviceCookie?.value}`, 'user-agent': 'Laptop' }, '198.18.7.9');
    // Same device, same network: no mail.
    await post('/v1/auth/login', { email, password: PASSWORD }, { cookie: `__Host-gh_device=${deviceCookie?.value}`, 'user-agent': 'Laptop' }, '198.18.7.10');
    const after = t.mail.filter((m) => m.to === email && m.kind === 'new-device').length;
    expect(after - before).toBe(1);
    const list = await t.app.inject({ url: '/v1/me/devices', headers: { authorization: `Bearer ${u.access}` } });
    const laptop = list.json().devices.find((d: { userAgent: string }) => d.userAgent === 'Laptop');
    expect(laptop.networks).toEqual(expect.arrayContaining(['203.0.113.0/24', '198.18.7.0/24']));
  });
});

describe('lifecycle (AUTH-10)', () => {
  it('exports the user\'s data as JSON without secrets', async () => {
    const u = await verifiedUser('export@example.com');
    const res = await t.app.inject({ url: '/v1/me/export', headers: { authorization: `Bearer ${u.access}` } });
    expect(res.statusCode).toBe(200);
    const data = res.json();
    expect(data.user.email).toBe('export@example.com');
    expect(data.sessions.length).toBeGreaterThan(0);
    expect(res.body).not.toMatch(/argon2|password|ghr_/);
  });

  it('deletes the account only with the password; sessions end; the email can sign up again', async () => {
    const email = 'leaving@example.com';
    const u = await verifiedUser(email);
    const wrong = await t.app.inject({ method: 'DELETE', url: '/v1/me', payload: { password: 'not my password at all' }, headers: { authorization: `Bearer ${u.access}` } });
    expect(wrong.statusCode).toBe(401);
    const ok = await t.app.inject({ method: 'DELETE', url: '/v1/me', payload: { password: PASSWORD }, headers: { authorization: `Bearer ${u.access}` } });
    expect(ok.statusCode).toBe(200);
    expect((await me(u.access)).statusCode).toBe(401);
    expect((await post('/v1/auth/login', { email, password: PASSWORD }, {}, freshIp())).statusCode).toBe(401);
    const row = (await t.node.db.query<{ email: string; password_hash: string | null; status: string }>('select email, password_hash, status from users where id = (select user_id from sessions where id = $1)', [u.sessionId])).rows[0];
    expect(row).toMatchObject({ status: 'deleted', password_hash: null });
    expect(row?.email).not.toContain('leaving');
    expect((await post('/v1/auth/signup', { email, password: PASSWORD }, {}, freshIp())).statusCode).toBe(202);
  });
});

describe('first run and operators', () => {
  it('a one-time setup code creates the operator, who can disable a user at once', async () => {
    const code = await t.node.identity.accounts.ensureSetupToken();
    expect(code).toMatch(/^ghs_/);
    const op = await post('/v1/setup', { token: code ?? '', email: 'ops@example.com', password: PASSWORD });
    expect(op.statusCode).toBe(201);
    expect(op.json()).toMatchObject({ isOperator: true, emailVerified: true });
    expect((await post('/v1/setup', { token: code ?? '', email: 'ops2@example.com', password: PASSWORD })).json().error.code).toBe('TOKEN_INVALID');
    expect(await t.node.identity.accounts.ensureSetupToken()).toBeNull();

    const opLogin = (await post('/v1/auth/login', { email: 'ops@example.com', password: PASSWORD }, {}, freshIp())).json();
    const victim = await verifiedUser('disable-me@example.com');
    const victimId = (await me(victim.access)).json().id;
    // A normal user cannot disable anyone.
    const denied = await post(`/v1/admin/users/${victimId}/disable`, { disabled: true }, { authorization: `Bearer ${victim.access}` });
    expect(denied.statusCode).toBe(403);
    expect((await post(`/v1/admin/users/${victimId}/disable`, { disabled: true }, { authorization: `Bearer ${opLogin.accessToken}` })).statusCode).toBe(200);
    expect((await me(victim.access)).statusCode).toBe(401);
    const login = await post('/v1/auth/login', { email: 'disable-me@example.com', password: PASSWORD }, {}, freshIp());
    expect(login.json().error.code).toBe('ACCOUNT_DISABLED');
  });
});

describe('mail over real SMTP', () => {
  it('the verification code reaches a real SMTP server, and works', async () => {
    const { SMTPServer } = await import('smtp-server');
    const received: { to: string[]; data: string }[] = [];
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, callback) {
        let data = '';
        stream.on('data', (c: Buffer) => (data += c.toString('utf8')));
        stream.on('end', () => {
          received.push({ to: session.envelope.rcptTo.map((r) => r.address), data });
          callback();
        });
      },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.server.address() as import('node:net').AddressInfo).port;
    const { createMailer } = await import('../../src/identity/mailer.ts');
    const smtp = await createTestApp({
      overrides: { 'rateLimit.enabled': false },
      mailer: createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: 'Gatehouse <no-reply@example.com>', outboxDir: '/nonexistent' }),
    });
    try {
      const res = await smtp.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: 'smtp-user@example.com', password: PASSWORD } });
      expect(res.statusCode).toBe(202);
      expect(received).toHaveLength(1);
      expect(received[0]?.to).toEqual(['smtp-user@example.com']);
      const code = /ghv_[A-Za-z0-9_-]{43}/.exec(readableMail(received[0]?.data ?? ''))?.[0];
      expect(code).toBeDefined();
      expect((await smtp.app.inject({ method: 'POST', url: '/v1/auth/verify-email', payload: { token: code } })).statusCode).toBe(200);
      // The one-time code is in the mail, never in the log.
      expect(smtp.logText()).not.toContain(code);
    } finally {
      await smtp.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('password hashing parameters', () => {
  it('rehashes a stored hash on sign-in when the parameters were raised', async () => {
    const email = 'rehash@example.com';
    await verifiedUser(email);
    const { hashPassword } = await import('../../src/identity/passwords.ts');
    // Simulate a hash made with older, weaker parameters (below today's minimum).
    const weak = (await hashPassword(PASSWORD, { memoryKiB: 8192, timeCost: 1, parallelism: 1 })).toString();
    await t.node.db.query('update users set password_hash = $2 where email = $1', [email, weak]);
    expect((await post('/v1/auth/login', { email, password: PASSWORD }, {}, freshIp())).statusCode).toBe(200);
    const stored = (await t.node.db.query<{ password_hash: string }>('select password_hash from users where email = $1', [email])).rows[0]?.password_hash;
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });
});
