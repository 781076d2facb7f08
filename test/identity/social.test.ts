/**
 * Social sign-in end to end (AUTH-8, issue 8 item 5): a real OIDC provider (oidc-provider) on
 * loopback, a hand-written OIDC server that signs whatever id_token a test asks for (other
 * issuer, other audience, wrong nonce, expired), and a hand-written plain-OAuth server shaped
 * like GitHub and Discord. The browser is fetch with its own cookie jar; Gatehouse is inject().
 * Each test names the behaviour or the attack it pins, with its exact refusal.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SOCIAL_STATE_COOKIE } from '../../src/identity/social.ts';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { followToOrigin, startTestIdp, type TestIdp } from '../support/oidc-idp.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { signUpUser, TEST_PASSWORD } from '../support/users.ts';

const ORIGIN = 'https://gatehouse.test';
const CLIENT_ID = 'gatehouse-client';
const CLIENT_SECRET = randomBytes(24).toString('base64url');

let t: TestApp;
/** Added to the wall clock Gatehouse reads (the providers keep the real one). */
let skewMs = 0;
let ipCounter = 0;
const freshIp = (): string => `203.0.113.${(ipCounter++ % 250) + 1}`;

// ---------- the real OIDC provider ----------

let idp: TestIdp;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startRealIdp(): Promise<void> {
  idp = await startTestIdp();
  await idp.configure({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${ORIGIN}/v1/auth/social/idp/callback`] });
}

// ---------- the forging OIDC server and the plain-OAuth server ----------

let mock: Server;
let mockOrigin = '';
let signingKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let publicJwk: JWK;
interface PendingCode {
  challenge: string;
  nonce: string | null;
  used: boolean;
  subject: string;
}
const codes = new Map<string, PendingCode>();
/** Claims the forging server puts over the honest ones in its next id_token. */
let forge: Record<string, unknown> = {};
/** What the plain-OAuth servers say about the next person. */
let nextOauthUser: { id: number; email: string; verified: boolean } = { id: 1, email: '', verified: true };
const accessTokens = new Map<string, { id: number; email: string; verified: boolean }>();

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function handleMock(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', mockOrigin);
  const issuer = `${mockOrigin}/oidc`;
  if (url.pathname === '/oidc/.well-known/openid-configuration') {
    return json(res, 200, {
      issuer,
      authorization_endpoint: `${mockOrigin}/oidc/authorize`,
      token_endpoint: `${mockOrigin}/oidc/token`,
      jwks_uri: `${mockOrigin}/oidc/jwks`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      code_challenge_methods_supported: ['S256'],
    });
  }
  if (url.pathname === '/oidc/jwks') return json(res, 200, { keys: [publicJwk] });
  if (url.pathname.endsWith('/authorize')) {
    // Every shape: the person agrees at once and is sent back with a code.
    const code = randomBytes(16).toString('base64url');
    codes.set(code, { challenge: url.searchParams.get('code_challenge') ?? '', nonce: url.searchParams.get('nonce'), used: false, subject: String(nextOauthUser.id) });
    const back = new URL(url.searchParams.get('redirect_uri') ?? '');
    back.searchParams.set('code', code);
    back.searchParams.set('state', url.searchParams.get('state') ?? '');
    res.writeHead(302, { location: back.href });
    return void res.end();
  }
  if (url.pathname.endsWith('/token')) {
    const form = await readForm(req);
    const pending = codes.get(form.get('code') ?? '');
    const verifier = form.get('code_verifier') ?? '';
    if (!pending || pending.used || createHash('sha256').update(verifier).digest('base64url') !== pending.challenge || form.get('client_secret') !== CLIENT_SECRET) {
      return json(res, 400, { error: 'invalid_grant' });
    }
    pending.used = true;
    const accessToken = randomBytes(16).toString('base64url');
    accessTokens.set(accessToken, { ...nextOauthUser });
    if (!url.pathname.startsWith('/oidc/')) return json(res, 200, { access_token: accessToken, token_type: 'bearer', scope: 'user:email' });
    const nowS = Math.floor(Date.now() / 1000);
    const claims = { iss: issuer, aud: CLIENT_ID, sub: pending.subject, nonce: pending.nonce, email: nextOauthUser.email, email_verified: nextOauthUser.verified, iat: nowS, exp: nowS + 300, ...forge };
    const idToken = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(signingKey);
    return json(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 300, id_token: idToken });
  }
  const person = accessTokens.get((req.headers.authorization ?? '').replace(/^Bearer /i, ''));
  if (!person) return json(res, 401, { message: 'Bad credentials' });
  // GitHub: /user has no verification flag; the verified primary address is in /user/emails.
  if (url.pathname === '/gh/user') return json(res, 200, { id: person.id, login: `user${person.id}`, email: null });
  if (url.pathname === '/gh/user/emails') {
    return json(res, 200, [
      { email: `other-${person.id}@example.net`, primary: false, verified: true },
      { email: person.email, primary: true, verified: person.verified },
    ]);
  }
  // Discord: /users/@me carries email and verified.
  if (url.pathname === '/dc/users/@me') return json(res, 200, { id: String(person.id), username: `user${person.id}`, email: person.email, verified: person.verified });
  return json(res, 404, {});
}

async function startMock(): Promise<void> {
  const pair = await generateKeyPair('RS256');
  signingKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  mock = createServer((req, res) => {
    void handleMock(req, res).catch((err: unknown) => json(res, 500, { error: String(err) }));
  });
  mockOrigin = await listen(mock);
}

beforeAll(async () => {
  await Promise.all([startRealIdp(), startMock()]);
  t = await createTestApp({
    now: () => Date.now() + skewMs,
    overrides: {
      'rateLimit.enabled': false,
      'server.publicUrl': ORIGIN,
      'social.allowInsecureRequests': true,
      'social.clientSecrets': { idp: CLIENT_SECRET, forged: CLIENT_SECRET, gh: CLIENT_SECRET, dc: CLIENT_SECRET },
      'social.providers': [
        { id: 'idp', kind: 'oidc', issuer: idp.issuer, clientId: CLIENT_ID },
        { id: 'forged', kind: 'oidc', issuer: `${mockOrigin}/oidc`, clientId: CLIENT_ID },
        {
          id: 'gh',
          preset: 'github',
          clientId: CLIENT_ID,
          authorizationEndpoint: `${mockOrigin}/gh/authorize`,
          tokenEndpoint: `${mockOrigin}/gh/token`,
          userinfoEndpoint: `${mockOrigin}/gh/user`,
          emailsEndpoint: `${mockOrigin}/gh/user/emails`,
        },
        {
          id: 'dc',
          preset: 'discord',
          clientId: CLIENT_ID,
          authorizationEndpoint: `${mockOrigin}/dc/authorize`,
          tokenEndpoint: `${mockOrigin}/dc/token`,
          userinfoEndpoint: `${mockOrigin}/dc/users/@me`,
        },
      ],
    },
  });
});

afterAll(async () => {
  await t.close();
  mock.closeAllConnections();
  await Promise.all([idp.close(), new Promise((r) => mock.close(r))]);
});

// ---------- the browser ----------

/** One browser: its cookies at the provider, and the state cookie Gatehouse gave it. */
interface Browser {
  idpCookies: Map<string, string>;
  stateCookie: string | undefined;
}

const newBrowser = (): Browser => ({ idpCookies: new Map(), stateCookie: undefined });

function expectRefusal(res: LightMyRequestResponse, status: number, code: string): void {
  expect({ status: res.statusCode, code: res.json<{ error?: { code?: string } }>().error?.code }).toEqual({ status, code });
}

/** Starts at Gatehouse, follows the provider's redirects, and returns the callback path Gatehouse is sent back to. */
async function authorize(browser: Browser, provider: string, mode: 'bearer' | 'cookie' = 'bearer'): Promise<string> {
  const start = await t.app.inject({ method: 'GET', url: `/v1/auth/social/${provider}/start?mode=${mode}` });
  expect(start.statusCode).toBe(302);
  browser.stateCookie = start.cookies.find((c) => c.name === SOCIAL_STATE_COOKIE)?.value;
  return followToOrigin(String(start.headers.location), ORIGIN, browser.idpCookies);
}

async function callback(path: string, stateCookie: string | undefined): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'GET', url: path, remoteAddress: freshIp(), ...(stateCookie ? { cookies: { [SOCIAL_STATE_COOKIE]: stateCookie } } : {}) });
}

/** A whole sign-in in one browser. */
async function signInWith(provider: string, mode: 'bearer' | 'cookie' = 'bearer'): Promise<LightMyRequestResponse> {
  const browser = newBrowser();
  return callback(await authorize(browser, provider, mode), browser.stateCookie);
}

function atIdp(email: string, verified = true): string {
  const sub = `sub-${randomBytes(6).toString('hex')}`;
  idp.accounts.set(sub, { email, email_verified: verified });
  idp.nextSubject = sub;
  return sub;
}

async function meOf(access: string): Promise<{ id: string; email: string; emailVerified: boolean }> {
  const me = await t.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${access}` } });
  expect(me.statusCode).toBe(200);
  return me.json();
}

async function linkedUsers(email: string): Promise<number> {
  const r = await t.node.db.asOwner((tx) => tx.query('select 1 from social_identities where email = $1', [email]));
  return r.rowCount;
}

async function platformEvents(): Promise<{ action: string; target: { id: string } | null; data: Record<string, unknown> }[]> {
  const r = await t.node.db.asOwner((tx) => tx.query<{ body: string }>('select body from audit_events where tenant_id = $1 order by seq', [PLATFORM_TENANT_ID]));
  return r.rows.map((row) => JSON.parse(row.body) as { action: string; target: { id: string } | null; data: Record<string, unknown> });
}

// ---------- tests ----------

describe('social sign-in with an OIDC provider (oidc-provider)', () => {
  it('the start redirects to the provider with PKCE S256, state and nonce, and binds them to the browser with a __Host- cookie', async () => {
    const start = await t.app.inject({ method: 'GET', url: '/v1/auth/social/idp/start' });
    expect(start.statusCode).toBe(302);
    const location = new URL(String(start.headers.location));
    expect(location.origin).toBe(idp.issuer);
    expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    expect(location.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(location.searchParams.get('state')).toBeTruthy();
    expect(location.searchParams.get('nonce')).toBeTruthy();
    expect(location.searchParams.get('redirect_uri')).toBe(`${ORIGIN}/v1/auth/social/idp/callback`);
    const cookie = start.cookies.find((c) => c.name === SOCIAL_STATE_COOKIE);
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, path: '/', sameSite: 'Lax', maxAge: 600 });
  });

  it('an unknown provider is refused with SOCIAL_PROVIDER_UNKNOWN', async () => {
    expectRefusal(await t.app.inject({ method: 'GET', url: '/v1/auth/social/myspace/start' }), 404, 'SOCIAL_PROVIDER_UNKNOWN');
  });

  it('a new verified email creates an account without a password and signs in; the next sign-in uses the link', async () => {
    const email = 'new-oidc@example.com';
    atIdp(email);
    const first = await signInWith('idp');
    expect(first.statusCode).toBe(200);
    const me = await meOf(first.json<{ accessToken: string }>().accessToken);
    expect(me).toMatchObject({ email, emailVerified: true });
    // No password was set: the password sign-in fails like a wrong password.
    const pw = await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: TEST_PASSWORD }, remoteAddress: freshIp() });
    expectRefusal(pw, 401, 'INVALID_CREDENTIALS');
    const again = await signInWith('idp');
    expect(again.statusCode).toBe(200);
    expect((await meOf(again.json<{ accessToken: string }>().accessToken)).id).toBe(me.id);
    expect(await linkedUsers(email)).toBe(1);
    // The link is the user's data: the export lists it.
    const exported = await t.app.inject({ url: '/v1/me/export', headers: { authorization: `Bearer ${again.json<{ accessToken: string }>().accessToken}` } });
    expect(exported.json<{ socialIdentities: unknown[] }>().socialIdentities).toEqual([{ provider: 'idp', email, linkedAt: expect.any(String) }]);
  });

  it('cookie mode answers with session cookies, like the password sign-in', async () => {
    atIdp('cookie-mode@example.com');
    const res = await signInWith('idp', 'cookie');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ sessionId: expect.any(String), csrfToken: expect.any(String) });
    expect(res.cookies.map((c) => c.name)).toEqual(expect.arrayContaining(['__Host-gh_access', '__Host-gh_refresh']));
    // The state cookie is spent.
    expect(res.cookies.find((c) => c.name === SOCIAL_STATE_COOKIE)?.value).toBe('');
  });

  it('attack: a callback without the state cookie (login CSRF) is refused with SOCIAL_STATE_INVALID', async () => {
    atIdp('no-cookie@example.com');
    const path = await authorize(newBrowser(), 'idp');
    expectRefusal(await callback(path, undefined), 400, 'SOCIAL_STATE_INVALID');
  });

  it('attack: a callback without the state parameter is refused with SOCIAL_STATE_INVALID', async () => {
    atIdp('no-state@example.com');
    const browser = newBrowser();
    const path = await authorize(browser, 'idp');
    const stripped = new URL(path, ORIGIN);
    stripped.searchParams.delete('state');
    expectRefusal(await callback(stripped.pathname + stripped.search, browser.stateCookie), 400, 'SOCIAL_STATE_INVALID');
  });

  it('attack: the attacker\'s callback URL in the victim\'s browser (swapped state) is refused with SOCIAL_STATE_INVALID', async () => {
    atIdp('attacker@example.com');
    const attacker = newBrowser();
    const attackerPath = await authorize(attacker, 'idp');
    atIdp('victim@example.com');
    const victim = newBrowser();
    await authorize(victim, 'idp');
    expectRefusal(await callback(attackerPath, victim.stateCookie), 400, 'SOCIAL_STATE_INVALID');
  });

  it('attack: a callback after the state cookie expired (10 minutes) is refused with SOCIAL_STATE_INVALID', async () => {
    atIdp('slow@example.com');
    const browser = newBrowser();
    const path = await authorize(browser, 'idp');
    skewMs = 10 * 60_000 + 1_000;
    try {
      expectRefusal(await callback(path, browser.stateCookie), 400, 'SOCIAL_STATE_INVALID');
    } finally {
      skewMs = 0;
    }
  });

  it('attack: a forged state cookie (bad signature) is refused with SOCIAL_STATE_INVALID', async () => {
    atIdp('forged-cookie@example.com');
    const browser = newBrowser();
    const path = await authorize(browser, 'idp');
    const [body] = (browser.stateCookie ?? '').split('.');
    expectRefusal(await callback(path, `${body}.${randomBytes(32).toString('base64url')}`), 400, 'SOCIAL_STATE_INVALID');
  });

  it('attack: a replayed code is refused: the same callback again with SOCIAL_STATE_INVALID, the code under a fresh state with SOCIAL_EXCHANGE_FAILED', async () => {
    atIdp('replay@example.com');
    const browser = newBrowser();
    const path = await authorize(browser, 'idp');
    expect((await callback(path, browser.stateCookie)).statusCode).toBe(200);
    expectRefusal(await callback(path, browser.stateCookie), 400, 'SOCIAL_STATE_INVALID');
    // The attacker starts their own sign-in and sends the spent code with their own state.
    const other = newBrowser();
    const fresh = new URL(await authorize(other, 'idp'), ORIGIN);
    const replay = new URL(path, ORIGIN);
    replay.searchParams.set('state', fresh.searchParams.get('state') ?? '');
    expectRefusal(await callback(replay.pathname + replay.search, other.stateCookie), 400, 'SOCIAL_EXCHANGE_FAILED');
  });

  it('an existing account with the verified email is not signed in: a pending link, confirmed by the password', async () => {
    const email = 'has-password@example.com';
    const owner = await signUpUser(t.app, t.mail, email);
    atIdp(email);
    const res = await signInWith('idp');
    expect(res.statusCode).toBe(200);
    const body = res.json<{ linkRequired: boolean; linkToken: string; accessToken?: string }>();
    expect(body.linkRequired).toBe(true);
    expect(body.accessToken).toBeUndefined();
    expect(await linkedUsers(email)).toBe(0);

    // attack: link confirmation with a wrong password.
    const wrong = await t.app.inject({ method: 'POST', url: '/v1/auth/social/link/confirm', payload: { linkToken: body.linkToken, password: 'not the password at all' }, remoteAddress: freshIp() });
    expectRefusal(wrong, 401, 'INVALID_CREDENTIALS');
    expect(await linkedUsers(email)).toBe(0);

    const ok = await t.app.inject({ method: 'POST', url: '/v1/auth/social/link/confirm', payload: { linkToken: body.linkToken, password: TEST_PASSWORD }, remoteAddress: freshIp() });
    expect(ok.statusCode).toBe(200);
    expect((await meOf(ok.json<{ accessToken: string }>().accessToken)).id).toBe(owner.userId);
    expect(await linkedUsers(email)).toBe(1);

    // Single use.
    const again = await t.app.inject({ method: 'POST', url: '/v1/auth/social/link/confirm', payload: { linkToken: body.linkToken, password: TEST_PASSWORD }, remoteAddress: freshIp() });
    expectRefusal(again, 400, 'SOCIAL_LINK_INVALID');

    // Linked: the next social sign-in goes straight in.
    const direct = await signInWith('idp');
    expect((await meOf(direct.json<{ accessToken: string }>().accessToken)).id).toBe(owner.userId);
    const actions = (await platformEvents()).filter((e) => e.target?.id === owner.userId).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['auth.social.linked', 'auth.social.login']));
    // Neither the link token nor the client secret reaches a log line.
    expect(t.logText()).not.toContain(body.linkToken);
    expect(t.logText()).not.toContain(CLIENT_SECRET);
  });

  it('a signed-in owner confirms a pending link with their session; another account\'s session cannot (SOCIAL_LINK_INVALID)', async () => {
    const email = 'signed-in-link@example.com';
    const owner = await signUpUser(t.app, t.mail, email);
    const stranger = await signUpUser(t.app, t.mail, 'stranger@example.com');
    atIdp(email);
    const { linkToken } = (await signInWith('idp')).json<{ linkToken: string }>();
    const stolen = await t.app.inject({ method: 'POST', url: '/v1/me/social/link', headers: stranger.auth, payload: { linkToken } });
    expectRefusal(stolen, 400, 'SOCIAL_LINK_INVALID');
    const mine = await t.app.inject({ method: 'POST', url: '/v1/me/social/link', headers: owner.auth, payload: { linkToken } });
    expect(mine.statusCode).toBe(200);
    const direct = await signInWith('idp');
    expect((await meOf(direct.json<{ accessToken: string }>().accessToken)).id).toBe(owner.userId);
  });

  it('attack: an unverified email at the provider trying to link to an existing account is refused with SOCIAL_EMAIL_UNVERIFIED', async () => {
    const email = 'target@example.com';
    await signUpUser(t.app, t.mail, email);
    atIdp(email, false);
    expectRefusal(await signInWith('idp'), 403, 'SOCIAL_EMAIL_UNVERIFIED');
    expect(await linkedUsers(email)).toBe(0);
    expect((await platformEvents()).filter((e) => e.action === 'auth.social.failed').map((e) => e.data.reason)).toContain('email-unverified');
  });

  it('an unverified email never creates an account', async () => {
    const email = 'unverified-new@example.com';
    atIdp(email, false);
    expectRefusal(await signInWith('idp'), 403, 'SOCIAL_EMAIL_UNVERIFIED');
    const r = await t.node.db.asOwner((tx) => tx.query('select 1 from users where email = $1', [email]));
    expect(r.rowCount).toBe(0);
  });

  it('a linked user with TOTP gets the second step ({ mfaRequired, mfaToken }), at the link confirmation and at each social sign-in', async () => {
    const email = 'totp-social@example.com';
    const user = await signUpUser(t.app, t.mail, email);
    const enrol = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp', headers: user.auth, payload: { password: TEST_PASSWORD } });
    const { factorId, otpauthUri } = enrol.json<{ factorId: string; otpauthUri: string }>();
    const secret = Secret.fromBase32(new URL(otpauthUri).searchParams.get('secret') ?? '');
    const code = TOTP.generate({ secret, algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() });
    expect((await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp/confirm', headers: user.auth, payload: { factorId, code } })).statusCode).toBe(200);

    atIdp(email);
    const link = (await signInWith('idp')).json<{ linkToken: string }>();
    const confirmed = await t.app.inject({ method: 'POST', url: '/v1/auth/social/link/confirm', payload: { linkToken: link.linkToken, password: TEST_PASSWORD }, remoteAddress: freshIp() });
    expect(confirmed.json()).toMatchObject({ mfaRequired: true, mfaToken: expect.any(String), methods: expect.arrayContaining(['totp']) });
    expect(confirmed.json<{ accessToken?: string }>().accessToken).toBeUndefined();

    const social = await signInWith('idp');
    expect(social.statusCode).toBe(200);
    expect(social.json()).toMatchObject({ mfaRequired: true, mfaToken: expect.any(String) });
    expect(social.json<{ accessToken?: string }>().accessToken).toBeUndefined();
  });
});

describe('removing a link', () => {
  it('a password account removes its link (204, audited); the next social sign-in asks to link again', async () => {
    const email = 'unlink-me@example.com';
    const owner = await signUpUser(t.app, t.mail, email);
    atIdp(email);
    const pending = (await signInWith('idp')).json<{ linkToken: string }>();
    await t.app.inject({ method: 'POST', url: '/v1/auth/social/link/confirm', payload: { linkToken: pending.linkToken, password: TEST_PASSWORD }, remoteAddress: freshIp() });
    expect(await linkedUsers(email)).toBe(1);
    const removed = await t.app.inject({ method: 'DELETE', url: '/v1/me/social/idp', headers: owner.auth });
    expect(removed.statusCode).toBe(204);
    expect(await linkedUsers(email)).toBe(0);
    expect((await platformEvents()).some((e) => e.action === 'auth.social.unlinked' && e.target?.id === owner.userId)).toBe(true);
    expect((await signInWith('idp')).json<{ linkRequired?: boolean }>().linkRequired).toBe(true);
    expectRefusal(await t.app.inject({ method: 'DELETE', url: '/v1/me/social/idp', headers: owner.auth }), 404, 'NOT_FOUND');
  });

  it('an account without a password cannot remove its only link (409 SOCIAL_LAST_SIGN_IN_METHOD)', async () => {
    const email = 'social-only@example.com';
    atIdp(email);
    const access = (await signInWith('idp')).json<{ accessToken: string }>().accessToken;
    const refused = await t.app.inject({ method: 'DELETE', url: '/v1/me/social/idp', headers: { authorization: `Bearer ${access}` } });
    expectRefusal(refused, 409, 'SOCIAL_LAST_SIGN_IN_METHOD');
    expect(await linkedUsers(email)).toBe(1);
  });
});

describe('id_token checks (a server that signs what the test asks for)', () => {
  it('control: an honest id_token signs in (so the refusals below are the checks, not the server)', async () => {
    forge = {};
    nextOauthUser = { id: 7001, email: 'forged-control@example.com', verified: true };
    const res = await signInWith('forged');
    expect(res.statusCode).toBe(200);
    expect((await meOf(res.json<{ accessToken: string }>().accessToken)).email).toBe('forged-control@example.com');
  });

  const attacks: [string, () => Record<string, unknown>][] = [
    ['an id_token from another issuer', () => ({ iss: 'https://evil.example' })],
    ['an id_token for another audience', () => ({ aud: 'someone-else' })],
    ['a wrong nonce', () => ({ nonce: 'not-the-nonce' })],
    ['an expired id_token', () => ({ iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 })],
  ];
  for (const [name, claims] of attacks) {
    it(`attack: ${name} is refused with SOCIAL_EXCHANGE_FAILED`, async () => {
      forge = claims();
      nextOauthUser = { id: 7002, email: `forged-${randomBytes(4).toString('hex')}@example.com`, verified: true };
      try {
        expectRefusal(await signInWith('forged'), 400, 'SOCIAL_EXCHANGE_FAILED');
      } finally {
        forge = {};
      }
    });
  }
});

describe('plain OAuth 2 providers (GitHub and Discord shapes)', () => {
  it('GitHub shape: the verified primary address from /user/emails creates the account; PKCE was checked by the server', async () => {
    nextOauthUser = { id: 4242, email: 'octo@example.com', verified: true };
    const res = await signInWith('gh');
    expect(res.statusCode).toBe(200);
    expect(await meOf(res.json<{ accessToken: string }>().accessToken)).toMatchObject({ email: 'octo@example.com', emailVerified: true });
    // The same GitHub id signs in to the same account even after the address changed there.
    nextOauthUser = { id: 4242, email: 'octo-new@example.com', verified: true };
    const again = await signInWith('gh');
    expect((await meOf(again.json<{ accessToken: string }>().accessToken)).email).toBe('octo@example.com');
  });

  it('GitHub shape, attack: an unverified primary address is refused with SOCIAL_EMAIL_UNVERIFIED', async () => {
    nextOauthUser = { id: 4243, email: 'unverified-octo@example.com', verified: false };
    expectRefusal(await signInWith('gh'), 403, 'SOCIAL_EMAIL_UNVERIFIED');
  });

  it('Discord shape: email and verified from /users/@me', async () => {
    nextOauthUser = { id: 5151, email: 'wumpus@example.com', verified: true };
    const res = await signInWith('dc');
    expect(res.statusCode).toBe(200);
    expect((await meOf(res.json<{ accessToken: string }>().accessToken)).email).toBe('wumpus@example.com');
    nextOauthUser = { id: 5152, email: 'wumpus2@example.com', verified: false };
    expectRefusal(await signInWith('dc'), 403, 'SOCIAL_EMAIL_UNVERIFIED');
  });

  it('attack: a replayed plain-OAuth code under a fresh state is refused with SOCIAL_EXCHANGE_FAILED', async () => {
    nextOauthUser = { id: 6161, email: 'replay-gh@example.com', verified: true };
    const browser = newBrowser();
    const path = await authorize(browser, 'gh');
    expect((await callback(path, browser.stateCookie)).statusCode).toBe(200);
    const other = newBrowser();
    const fresh = new URL(await authorize(other, 'gh'), ORIGIN);
    const replay = new URL(path, ORIGIN);
    replay.searchParams.set('state', fresh.searchParams.get('state') ?? '');
    expectRefusal(await callback(replay.pathname + replay.search, other.stateCookie), 400, 'SOCIAL_EXCHANGE_FAILED');
  });
});
