/**
 * Enterprise SSO with OIDC (AUTH-9, issue 8 item 6), end to end against a real OIDC provider
 * (oidc-provider on loopback) configured as an org's IdP by its discovery URL. The browser is
 * fetch with its own cookie jar at the IdP; Gatehouse is inject(). Runs on PGlite and memory kv,
 * or on a scratch PostgreSQL database and Redis when DATABASE_URL / REDIS_URL are set.
 * Each attack is named in its test with its exact refusal and a check that nothing was stored.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SSO_OIDC_STATE_COOKIE } from '../../src/federation/state.ts';
import { followToOrigin, startTestIdp, type TestIdp } from '../support/oidc-idp.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { suiteServices } from '../support/pg-scratch.ts';
import { signUpUser, TEST_PASSWORD, type SignedInUser } from '../support/users.ts';

const ORIGIN = 'https://gatehouse.test';
const CLIENT_ID = 'gatehouse-sso';
const CLIENT_SECRET = `sso-secret-${randomBytes(24).toString('base64url')}`;
const DOMAIN = 'acme.example';

let t: TestApp;
let services: Awaited<ReturnType<typeof suiteServices>> | undefined;
let ipCounter = 0;
const freshIp = (): string => `203.0.113.${(ipCounter++ % 250) + 1}`;

// ---------- the real OIDC provider ----------

let idp: TestIdp;

// ---------- the org ----------

let owner: SignedInUser;
let operator: SignedInUser;
let orgId = '';
let connectionId = '';


beforeAll(async () => {
  idp = await startTestIdp();
  t = await createTestApp({
    env: (services = await suiteServices()).env,
    overrides: { 'rateLimit.enabled': false, 'server.publicUrl': ORIGIN, 'sso.allowInsecureRequests': true },
  });
  owner = await signUpUser(t.app, t.mail, `owner@${DOMAIN}`);
  operator = await signUpUser(t.app, t.mail, 'operator@platform.example');
  await t.node.db.asOwner((tx) => tx.query('update users set is_operator = true where id = $1', [operator.userId]));
  orgId = (await t.app.inject({ method: 'POST', url: '/v1/orgs', headers: owner.auth, payload: { name: 'Acme' } })).json<{ id: string }>().id;
  const created = await t.app.inject({
    method: 'POST',
    url: `/v1/orgs/${orgId}/sso/connections`,
    headers: owner.auth,
    payload: { kind: 'oidc', name: 'Acme IdP', defaultRole: 'editor', issuer: idp.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scopes: ['openid', 'email'] },
  });
  expect(created.statusCode).toBe(201);
  connectionId = created.json<{ id: string }>().id;
  await idp.configure({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${ORIGIN}/v1/auth/sso/oidc/${connectionId}/callback`] });
  for (const domain of [DOMAIN, 'pending.example']) {
    const claimed = await t.app.inject({ method: 'POST', url: `/v1/orgs/${orgId}/sso/domains`, headers: owner.auth, payload: { domain, connectionId } });
    expect(claimed.statusCode).toBe(201);
  }
  // Only acme.example is verified by the operator; pending.example stays a claim.
  const verified = await t.app.inject({ method: 'POST', url: '/v1/admin/sso/domains/verify', headers: operator.auth, payload: { orgId, domain: DOMAIN } });
  expect(verified.json()).toMatchObject({ domain: DOMAIN, verified: true });
});

afterAll(async () => {
  await t?.close();
  await idp?.close();
  await services?.drop();
});

// ---------- the browser ----------

interface Browser {
  idpCookies: Map<string, string>;
  stateCookie: string | undefined;
}
const newBrowser = (): Browser => ({ idpCookies: new Map(), stateCookie: undefined });

function expectRefusal(res: LightMyRequestResponse, status: number, code: string): void {
  expect({ status: res.statusCode, code: res.json<{ error?: { code?: string } }>().error?.code }).toEqual({ status, code });
}

/** Who signs in at the IdP next. */
function atIdp(email: string, verified = true, sub = `sub-${randomBytes(6).toString('hex')}`): string {
  idp.accounts.set(sub, { email, email_verified: verified });
  idp.nextSubject = sub;
  return sub;
}

/** Starts at Gatehouse, follows the IdP's redirects, returns the callback path Gatehouse is sent back to. */
async function authorize(browser: Browser, startPath = `/v1/auth/sso/${connectionId}/start?mode=bearer`): Promise<string> {
  const start = await t.app.inject({ method: 'GET', url: startPath });
  expect(start.statusCode).toBe(302);
  browser.stateCookie = start.cookies.find((c) => c.name === SSO_OIDC_STATE_COOKIE)?.value;
  return followToOrigin(String(start.headers.location), ORIGIN, browser.idpCookies);
}

async function callback(path: string, stateCookie: string | undefined): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'GET', url: path, remoteAddress: freshIp(), ...(stateCookie ? { cookies: { [SSO_OIDC_STATE_COOKIE]: stateCookie } } : {}) });
}

async function signIn(startPath?: string): Promise<LightMyRequestResponse> {
  const browser = newBrowser();
  return callback(await authorize(browser, startPath), browser.stateCookie);
}

async function meOf(access: string): Promise<{ id: string; email: string; emailVerified: boolean }> {
  const me = await t.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${access}` } });
  expect(me.statusCode).toBe(200);
  return me.json();
}

async function roleIn(access: string): Promise<string | undefined> {
  const orgs = await t.app.inject({ url: '/v1/orgs', headers: { authorization: `Bearer ${access}` } });
  return orgs.json<{ orgs: { id: string; role: string }[] }>().orgs.find((o) => o.id === orgId)?.role;
}

async function userCount(email: string): Promise<number> {
  return (await t.node.db.asOwner((tx) => tx.query('select 1 from users where email = $1', [email]))).rowCount;
}

async function linkCount(): Promise<number> {
  return (await t.node.db.asOwner((tx) => tx.query('select 1 from sso_identities where connection_id = $1', [connectionId]))).rowCount;
}

async function orgEvents(): Promise<{ action: string; target: { id: string } | null; data: Record<string, unknown> }[]> {
  const r = await t.node.db.asOwner((tx) => tx.query<{ body: string }>('select body from audit_events where tenant_id = $1 order by seq', [orgId]));
  return r.rows.map((row) => JSON.parse(row.body) as { action: string; target: { id: string } | null; data: Record<string, unknown> });
}

// ---------- tests ----------

describe('enterprise SSO with OIDC: connections', () => {
  it('the client secret is sealed: absent from every answer, every log line, and the database plaintext', async () => {
    // The real services are used when they are configured.
    expect({ db: t.node.db.kind, kv: t.node.kv.kind }).toEqual({ db: process.env.DATABASE_URL ? 'postgres' : 'pglite', kv: process.env.REDIS_URL ? 'redis' : 'memory' });
    const list = await t.app.inject({ url: `/v1/orgs/${orgId}/sso/connections`, headers: owner.auth });
    expect(list.statusCode).toBe(200);
    const one = await t.app.inject({ url: `/v1/orgs/${orgId}/sso/connections/${connectionId}`, headers: owner.auth });
    expect(one.json()).toMatchObject({ kind: 'oidc', issuer: idp.issuer, clientId: CLIENT_ID, defaultRole: 'editor', redirectUri: `${ORIGIN}/v1/auth/sso/oidc/${connectionId}/callback` });
    for (const res of [list, one]) expect(res.body).not.toContain(CLIENT_SECRET);
    const row = await t.node.db.asOwner((tx) => tx.query<{ sealed: string }>('select oidc_client_secret_sealed as sealed from sso_connections where id = $1', [connectionId]));
    expect(row.rows[0]?.sealed).toBeTruthy();
    expect(row.rows[0]?.sealed).not.toContain(CLIENT_SECRET);
    const dump = await t.node.db.asOwner((tx) => tx.query<{ j: string }>('select row_to_json(c)::text as j from sso_connections c'));
    expect(dump.rows.map((r) => r.j).join('\n')).not.toContain(CLIENT_SECRET);
    // A replaced secret is not shown either.
    const patched = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${orgId}/sso/connections/${connectionId}`, headers: owner.auth, payload: { clientSecret: CLIENT_SECRET } });
    expect(patched.statusCode).toBe(200);
    expect(patched.body).not.toContain(CLIENT_SECRET);
    expect(t.logText()).not.toContain(CLIENT_SECRET);
  });

  it('attack: a viewer or editor managing SSO is refused with FORBIDDEN, and nothing changes', async () => {
    const editor = await signUpUser(t.app, t.mail, 'editor-member@other.example');
    await t.node.db.withTenant(orgId, (tx) => tx.query("insert into memberships (tenant_id, user_id, role) values ($1, $2, 'editor')", [orgId, editor.userId]));
    await t.node.tenancy.authority.evictOrg(orgId);
    const before = await t.node.db.asOwner((tx) => tx.query('select count(*)::int as n from sso_connections'));
    expectRefusal(await t.app.inject({ url: `/v1/orgs/${orgId}/sso/connections`, headers: editor.auth }), 403, 'FORBIDDEN');
    const add = await t.app.inject({
      method: 'POST',
      url: `/v1/orgs/${orgId}/sso/connections`,
      headers: editor.auth,
      payload: { kind: 'oidc', name: 'Rogue', defaultRole: 'viewer', issuer: 'https://rogue.example', clientId: 'x', clientSecret: 'y' },
    });
    expectRefusal(add, 403, 'FORBIDDEN');
    expect(await t.node.db.asOwner((tx) => tx.query('select count(*)::int as n from sso_connections'))).toEqual(before);
  });

  it('attack: a connection handing out the owner role is refused with VALIDATION_FAILED', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: `/v1/orgs/${orgId}/sso/connections`,
      headers: owner.auth,
      payload: { kind: 'oidc', name: 'Owners', defaultRole: 'owner', issuer: idp.issuer, clientId: CLIENT_ID, clientSecret: 'z' },
    });
    expectRefusal(res, 400, 'VALIDATION_FAILED');
  });

  it('attack: verifying a domain already verified for another org is refused with SSO_DOMAIN_TAKEN; a non-operator cannot verify (FORBIDDEN)', async () => {
    const rival = await signUpUser(t.app, t.mail, 'rival@rival.example');
    const rivalOrg = (await t.app.inject({ method: 'POST', url: '/v1/orgs', headers: rival.auth, payload: { name: 'Rival' } })).json<{ id: string }>().id;
    const conn = await t.app.inject({
      method: 'POST',
      url: `/v1/orgs/${rivalOrg}/sso/connections`,
      headers: rival.auth,
      payload: { kind: 'oidc', name: 'Rival IdP', defaultRole: 'viewer', issuer: 'https://idp.rival.example', clientId: 'rival', clientSecret: 'rival-secret' },
    });
    const claim = await t.app.inject({ method: 'POST', url: `/v1/orgs/${rivalOrg}/sso/domains`, headers: rival.auth, payload: { domain: DOMAIN.toUpperCase(), connectionId: conn.json<{ id: string }>().id } });
    expect(claim.statusCode).toBe(201);
    expectRefusal(await t.app.inject({ method: 'POST', url: '/v1/admin/sso/domains/verify', headers: rival.auth, payload: { orgId: rivalOrg, domain: DOMAIN } }), 403, 'FORBIDDEN');
    expectRefusal(await t.app.inject({ method: 'POST', url: '/v1/admin/sso/domains/verify', headers: operator.auth, payload: { orgId: rivalOrg, domain: DOMAIN } }), 409, 'SSO_DOMAIN_TAKEN');
    const rows = await t.node.db.asOwner((tx) => tx.query<{ tenant_id: string }>('select tenant_id from sso_domains where domain = $1 and verified_at is not null', [DOMAIN]));
    expect(rows.rows).toEqual([{ tenant_id: orgId }]);
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/sso/discover', payload: { email: `someone@${DOMAIN}` } })).json()).toMatchObject({ connectionId });
  });
});

describe('enterprise SSO with OIDC: routing and sign-in', () => {
  it('discover routes a verified domain to its connection; an unverified or unknown domain is not routed', async () => {
    const routed = await t.app.inject({ method: 'POST', url: '/v1/auth/sso/discover', payload: { email: `Someone@${DOMAIN.toUpperCase()}` } });
    expect(routed.json()).toEqual({ sso: true, connectionId, kind: 'oidc', startUrl: `${ORIGIN}/v1/auth/sso/${connectionId}/start` });
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/sso/discover', payload: { email: 'someone@pending.example' } })).json()).toEqual({ sso: false });
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/sso/discover', payload: { email: 'someone@nowhere.example' } })).json()).toEqual({ sso: false });
    expectRefusal(await t.app.inject({ method: 'POST', url: '/v1/auth/sso/discover', payload: { email: 'not an email' } }), 400, 'VALIDATION_FAILED');
  });

  it('the start redirects to the IdP with PKCE S256, state and nonce, bound to the browser by a __Host- cookie', async () => {
    const start = await t.app.inject({ method: 'GET', url: `/v1/auth/sso/${connectionId}/start` });
    expect(start.statusCode).toBe(302);
    const location = new URL(String(start.headers.location));
    expect(location.origin).toBe(idp.issuer);
    expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    expect(location.searchParams.get('state')).toBeTruthy();
    expect(location.searchParams.get('nonce')).toBeTruthy();
    expect(location.searchParams.get('redirect_uri')).toBe(`${ORIGIN}/v1/auth/sso/oidc/${connectionId}/callback`);
    expect(start.cookies.find((c) => c.name === SSO_OIDC_STATE_COOKIE)).toMatchObject({ httpOnly: true, secure: true, path: '/', sameSite: 'Lax', maxAge: 600 });
    expectRefusal(await t.app.inject({ method: 'GET', url: '/v1/auth/sso/00000000-0000-4000-8000-00000000abcd/start' }), 404, 'SSO_CONNECTION_UNKNOWN');
    expectRefusal(await t.app.inject({ method: 'GET', url: '/v1/auth/sso/not-a-uuid/start' }), 404, 'SSO_CONNECTION_UNKNOWN');
  });

  it('a new user is provisioned just in time through discover: account with a verified email, member with the default role, audited', async () => {
    const email = `jit@${DOMAIN}`;
    atIdp(email);
    const routed = (await t.app.inject({ method: 'POST', url: '/v1/auth/sso/discover', payload: { email } })).json<{ startUrl: string }>();
    const res = await signIn(`${routed.startUrl.slice(ORIGIN.length)}?mode=bearer`);
    expect(res.statusCode).toBe(200);
    const access = res.json<{ accessToken: string }>().accessToken;
    const me = await meOf(access);
    expect(me).toMatchObject({ email, emailVerified: true });
    expect(await roleIn(access)).toBe('editor');
    const provisioned = (await orgEvents()).filter((e) => e.action === 'sso.user.provisioned' && e.target?.id === me.id);
    expect(provisioned.map((e) => e.data)).toEqual([{ connection: connectionId, role: 'editor', createdAccount: true }]);
    // The next sign-in uses the link: same account, no second membership event.
    const again = await signIn();
    expect((await meOf(again.json<{ accessToken: string }>().accessToken)).id).toBe(me.id);
    expect((await orgEvents()).filter((e) => e.action === 'sso.user.provisioned' && e.target?.id === me.id)).toHaveLength(1);
  });

  it('cookie mode answers with session cookies, like the password sign-in', async () => {
    atIdp(`cookie@${DOMAIN}`);
    const res = await signIn(`/v1/auth/sso/${connectionId}/start?mode=cookie`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ sessionId: expect.any(String), csrfToken: expect.any(String) });
    expect(res.cookies.map((c) => c.name)).toEqual(expect.arrayContaining(['__Host-gh_access', '__Host-gh_refresh', '__Host-gh_csrf']));
    expect(res.cookies.find((c) => c.name === SSO_OIDC_STATE_COOKIE)?.value).toBe('');
  });

  it('an existing account with the email signs in and is linked by (connection, subject); it joins the org with the default role', async () => {
    const email = `existing@${DOMAIN}`;
    const existing = await signUpUser(t.app, t.mail, email);
    const sub = atIdp(email);
    const res = await signIn();
    expect(res.statusCode).toBe(200);
    const access = res.json<{ accessToken: string }>().accessToken;
    expect((await meOf(access)).id).toBe(existing.userId);
    expect(await roleIn(access)).toBe('editor');
    const link = await t.node.db.asOwner((tx) => tx.query('select user_id, email from sso_identities where connection_id = $1 and subject = $2', [connectionId, sub]));
    expect(link.rows).toEqual([{ user_id: existing.userId, email }]);
  });

  it('attack: a member an admin removed is not made a member again by the IdP (just in time); they still sign in to their own account; an accepted invitation brings them back; a member who left rejoins', async () => {
    const email = `removed@${DOMAIN}`;
    const sub = atIdp(email);
    const first = await signIn();
    expect(first.statusCode).toBe(200);
    const me = await meOf(first.json<{ accessToken: string }>().accessToken);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${orgId}/members/${me.id}`, headers: owner.auth })).statusCode).toBe(204);

    // The IdP still authenticates the person: a session for their own account, no membership.
    atIdp(email, true, sub);
    const again = await signIn();
    expect(again.statusCode).toBe(200);
    const access = again.json<{ accessToken: string }>().accessToken;
    expect((await meOf(access)).id).toBe(me.id);
    expect(await roleIn(access)).toBeUndefined();
    const member = async (): Promise<number> => (await t.node.db.asOwner((tx) => tx.query('select 1 from memberships where tenant_id = $1 and user_id = $2', [orgId, me.id]))).rowCount;
    expect(await member()).toBe(0);
    expect((await t.app.inject({ url: `/v1/orgs/${orgId}/members`, headers: { authorization: `Bearer ${access}` } })).statusCode).toBe(404);
    const logins = (await orgEvents()).filter((e) => e.action === 'sso.login' && e.target?.id === me.id);
    expect(logins.at(-1)?.data).toEqual({ connection: connectionId, provisioned: false, reason: 'member-removed' });

    // Invited back and accepted from that session: a member again, with the invited role, and SSO keeps it.
    expect((await t.app.inject({ method: 'POST', url: `/v1/orgs/${orgId}/invitations`, headers: owner.auth, payload: { email, role: 'viewer' } })).statusCode).toBe(201);
    const token = /ghi_[A-Za-z0-9_-]{65}/.exec([...t.mail].reverse().find((m) => m.to === email && m.kind === 'invitation')?.text ?? '')?.[0];
    const accepted = await t.app.inject({ method: 'POST', url: '/v1/invitations/accept', headers: { authorization: `Bearer ${access}` }, payload: { token } });
    expect(accepted.statusCode).toBe(200);
    atIdp(email, true, sub);
    expect(await roleIn((await signIn()).json<{ accessToken: string }>().accessToken)).toBe('viewer');

    // Leaving by oneself is not a removal: the next SSO sign-in provisions again, with the default role.
    expect((await t.app.inject({ method: 'POST', url: `/v1/orgs/${orgId}/leave`, headers: { authorization: `Bearer ${access}` }, payload: {} })).statusCode).toBe(204);
    atIdp(email, true, sub);
    expect(await roleIn((await signIn()).json<{ accessToken: string }>().accessToken)).toBe('editor');
  });

  it('SSO required: a member\'s correct password is refused with SSO_REQUIRED naming the start URL; a wrong one still gets INVALID_CREDENTIALS; the owner keeps password sign-in (break-glass)', async () => {
    const email = `member@${DOMAIN}`;
    const member = await signUpUser(t.app, t.mail, email);
    await t.node.db.withTenant(orgId, (tx) => tx.query("insert into memberships (tenant_id, user_id, role) values ($1, $2, 'admin')", [orgId, member.userId]));
    const on = await t.app.inject({ method: 'PUT', url: `/v1/orgs/${orgId}/sso/settings`, headers: owner.auth, payload: { ssoRequired: true } });
    expect(on.json()).toEqual({ ssoRequired: true });
    try {
      const sessionsBefore = (await t.node.db.asOwner((tx) => tx.query('select 1 from sessions where user_id = $1', [member.userId]))).rowCount;
      const refused = await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: TEST_PASSWORD }, remoteAddress: freshIp() });
      expectRefusal(refused, 403, 'SSO_REQUIRED');
      expect(refused.json<{ error: { message: string } }>().error.message).toContain(`/v1/auth/sso/${connectionId}/start`);
      expect(refused.headers.link).toBe(`<${ORIGIN}/v1/auth/sso/${connectionId}/start>; rel="sso"`);
      expect((await t.node.db.asOwner((tx) => tx.query('select 1 from sessions where user_id = $1', [member.userId]))).rowCount).toBe(sessionsBefore);
      // Without the password nothing about the org is revealed.
      expectRefusal(await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: 'a wrong password entirely' }, remoteAddress: freshIp() }), 401, 'INVALID_CREDENTIALS');
      // Owners are exempt.
      const ownerLogin = await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: owner.email, password: TEST_PASSWORD }, remoteAddress: freshIp() });
      expect(ownerLogin.statusCode).toBe(200);
      // The member signs in through SSO instead.
      atIdp(email);
      const viaSso = await signIn();
      expect(viaSso.statusCode).toBe(200);
      expect((await meOf(viaSso.json<{ accessToken: string }>().accessToken)).id).toBe(member.userId);
      expect((await orgEvents()).some((e) => e.action === 'sso.failed' && e.data.reason === 'sso-required')).toBe(true);
    } finally {
      await t.app.inject({ method: 'PUT', url: `/v1/orgs/${orgId}/sso/settings`, headers: owner.auth, payload: { ssoRequired: false } });
    }
  });

  it('attack: the attacker\'s callback URL in the victim\'s browser (swapped state) is refused with SSO_STATE_INVALID, and nothing is stored', async () => {
    const email = `attacker@${DOMAIN}`;
    atIdp(email);
    const attackerPath = await authorize(newBrowser());
    atIdp(`victim@${DOMAIN}`);
    const victim = newBrowser();
    await authorize(victim);
    const links = await linkCount();
    expectRefusal(await callback(attackerPath, victim.stateCookie), 400, 'SSO_STATE_INVALID');
    expectRefusal(await callback(attackerPath, undefined), 400, 'SSO_STATE_INVALID');
    expect(await userCount(email)).toBe(0);
    expect(await linkCount()).toBe(links);
  });

  it('attack: a replayed code is refused: the same callback again with SSO_STATE_INVALID, the code under a fresh state with SSO_EXCHANGE_FAILED', async () => {
    atIdp(`replay@${DOMAIN}`);
    const browser = newBrowser();
    const path = await authorize(browser);
    expect((await callback(path, browser.stateCookie)).statusCode).toBe(200);
    expectRefusal(await callback(path, browser.stateCookie), 400, 'SSO_STATE_INVALID');
    const other = newBrowser();
    const fresh = new URL(await authorize(other), ORIGIN);
    const replay = new URL(path, ORIGIN);
    replay.searchParams.set('state', fresh.searchParams.get('state') ?? '');
    const links = await linkCount();
    expectRefusal(await callback(replay.pathname + replay.search, other.stateCookie), 400, 'SSO_EXCHANGE_FAILED');
    expect(await linkCount()).toBe(links);
  });

  it('attack: an email outside the org\'s verified domains is refused with SSO_EMAIL_NOT_ALLOWED, and no account or link is made', async () => {
    const email = 'outsider@elsewhere.example';
    atIdp(email);
    const links = await linkCount();
    expectRefusal(await signIn(), 403, 'SSO_EMAIL_NOT_ALLOWED');
    expect(await userCount(email)).toBe(0);
    expect(await linkCount()).toBe(links);
  });

  it('attack: an email in a claimed but unverified domain is neither routed nor accepted (SSO_EMAIL_NOT_ALLOWED)', async () => {
    const email = 'someone@pending.example';
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/sso/discover', payload: { email } })).json()).toEqual({ sso: false });
    atIdp(email);
    expectRefusal(await signIn(), 403, 'SSO_EMAIL_NOT_ALLOWED');
    expect(await userCount(email)).toBe(0);
  });

  it('attack: an email the IdP marks unverified is refused with SSO_EMAIL_NOT_ALLOWED', async () => {
    const email = `unverified@${DOMAIN}`;
    atIdp(email, false);
    expectRefusal(await signIn(), 403, 'SSO_EMAIL_NOT_ALLOWED');
    expect(await userCount(email)).toBe(0);
  });

  it('attack: a linked subject now asserting another email (account takeover) is refused with SSO_SUBJECT_MISMATCH', async () => {
    const sub = atIdp(`first@${DOMAIN}`);
    expect((await signIn()).statusCode).toBe(200);
    const target = await signUpUser(t.app, t.mail, `target@${DOMAIN}`);
    atIdp(`target@${DOMAIN}`, true, sub);
    const links = await linkCount();
    expectRefusal(await signIn(), 403, 'SSO_SUBJECT_MISMATCH');
    expect(await linkCount()).toBe(links);
    const targetLinks = await t.node.db.asOwner((tx) => tx.query('select 1 from sso_identities where user_id = $1', [target.userId]));
    expect(targetLinks.rowCount).toBe(0);
  });

  it('attack: an org IdP asserting a platform operator\'s email is refused with SSO_ACCOUNT_NOT_ELIGIBLE', async () => {
    const op = await signUpUser(t.app, t.mail, `op@${DOMAIN}`);
    await t.node.db.asOwner((tx) => tx.query('update users set is_operator = true where id = $1', [op.userId]));
    atIdp(op.email);
    const links = await linkCount();
    expectRefusal(await signIn(), 403, 'SSO_ACCOUNT_NOT_ELIGIBLE');
    expect(await linkCount()).toBe(links);
  });

  it('attack: SSO for an account an operator disabled is refused with ACCOUNT_DISABLED, and no link or membership is made', async () => {
    const user = await signUpUser(t.app, t.mail, `disabled@${DOMAIN}`);
    expect((await t.app.inject({ method: 'POST', url: `/v1/admin/users/${user.userId}/disable`, headers: operator.auth, payload: { disabled: true } })).statusCode).toBe(200);
    atIdp(user.email);
    expectRefusal(await signIn(), 403, 'ACCOUNT_DISABLED');
    const rows = await t.node.db.asOwner(async (tx) => ({
      links: (await tx.query('select 1 from sso_identities where user_id = $1', [user.userId])).rowCount,
      memberships: (await tx.query('select 1 from memberships where user_id = $1', [user.userId])).rowCount,
    }));
    expect(rows).toEqual({ links: 0, memberships: 0 });
  });

  it('deleting the account removes its SSO links: the IdP subject no longer signs in to it', async () => {
    const email = `leaver@${DOMAIN}`;
    const user = await signUpUser(t.app, t.mail, email);
    const sub = atIdp(email);
    expect((await signIn()).statusCode).toBe(200);
    const deleted = await t.app.inject({ method: 'DELETE', url: '/v1/me', headers: user.auth, payload: { password: TEST_PASSWORD } });
    expect(deleted.statusCode).toBe(200);
    const links = await t.node.db.asOwner((tx) => tx.query('select 1 from sso_identities where user_id = $1', [user.userId]));
    expect(links.rowCount).toBe(0);
    // The same subject signing in again gets a new account, never the deleted one.
    atIdp(email, true, sub);
    const again = await signIn();
    expect(again.statusCode).toBe(200);
    expect((await meOf(again.json<{ accessToken: string }>().accessToken)).id).not.toBe(user.userId);
  });

  it('a disabled connection neither starts nor routes (SSO_CONNECTION_UNKNOWN)', async () => {
    const off = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${orgId}/sso/connections/${connectionId}`, headers: owner.auth, payload: { enabled: false } });
    expect(off.json()).toMatchObject({ enabled: false });
    try {
      expectRefusal(await t.app.inject({ method: 'GET', url: `/v1/auth/sso/${connectionId}/start` }), 404, 'SSO_CONNECTION_UNKNOWN');
      expect((await t.app.inject({ method: 'POST', url: '/v1/auth/sso/discover', payload: { email: `a@${DOMAIN}` } })).json()).toEqual({ sso: false });
    } finally {
      await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${orgId}/sso/connections/${connectionId}`, headers: owner.auth, payload: { enabled: true } });
    }
  });
});
