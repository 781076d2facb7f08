/**
 * Redirect mode of SSO sign-in (UI-3, issue 25): a sign-in started with `returnTo` ends with a
 * 303 back into the console (or to an allowed return URL of the operator's app), never on a JSON
 * body, against a real OIDC provider (oidc-provider on loopback). The return URL is checked at the
 * start and again at the callback; each open-redirect attack is named with its exact refusal.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SSO_OIDC_STATE_COOKIE } from '../../src/federation/state.ts';
import { RETURN_COOKIE } from '../../src/identity/index.ts';
import { followToOrigin, startTestIdp, type TestIdp } from '../support/oidc-idp.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const ORIGIN = 'https://gatehouse.test';
const APP = 'https://app.example.com/after-sign-in';
const CLIENT_ID = 'gatehouse-sso';
const CLIENT_SECRET = `sso-secret-${randomBytes(24).toString('base64url')}`;
const DOMAIN = 'acme.example';

let t: TestApp;
let idp: TestIdp;
let owner: SignedInUser;
let connectionId = '';

beforeAll(async () => {
  idp = await startTestIdp();
  t = await createTestApp({
    logLevel: 'silent',
    overrides: { 'rateLimit.enabled': false, 'server.publicUrl': ORIGIN, 'sso.allowInsecureRequests': true, 'auth.returnUrls': [APP] },
  });
  owner = await signUpUser(t.app, t.mail, `owner@${DOMAIN}`);
  const orgId = (await t.app.inject({ method: 'POST', url: '/v1/orgs', headers: owner.auth, payload: { name: 'Acme' } })).json<{ id: string }>().id;
  const created = await t.app.inject({
    method: 'POST',
    url: `/v1/orgs/${orgId}/sso/connections`,
    headers: owner.auth,
    payload: { kind: 'oidc', name: 'Acme IdP', defaultRole: 'editor', issuer: idp.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scopes: ['openid', 'email'] },
  });
  connectionId = created.json<{ id: string }>().id;
  await idp.configure({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${ORIGIN}/v1/auth/sso/oidc/${connectionId}/callback`] });
  // The org's domain, verified by an operator: its users sign in through the connection.
  const operator = await signUpUser(t.app, t.mail, 'operator@platform.example');
  await t.node.db.asOwner((tx) => tx.query('update users set is_operator = true where id = $1', [operator.userId]));
  expect((await t.app.inject({ method: 'POST', url: `/v1/orgs/${orgId}/sso/domains`, headers: owner.auth, payload: { domain: DOMAIN, connectionId } })).statusCode).toBe(201);
  expect((await t.app.inject({ method: 'POST', url: '/v1/admin/sso/domains/verify', headers: operator.auth, payload: { orgId, domain: DOMAIN } })).statusCode).toBe(200);
});

afterAll(async () => {
  await t?.close();
  await idp?.close();
});

function atIdp(email: string): void {
  const sub = `sub-${randomBytes(6).toString('hex')}`;
  idp.accounts.set(sub, { email, email_verified: true });
  idp.nextSubject = sub;
}

function cookieOf(res: LightMyRequestResponse, name: string): string | undefined {
  return res.cookies.find((c) => c.name === name)?.value;
}

/** Starts with `returnTo`, goes through the IdP, and calls the callback with the cookies the start set. */
async function signInWith(returnTo: string, tamper?: (cookies: Record<string, string>) => void): Promise<LightMyRequestResponse> {
  const start = await t.app.inject({ url: `/v1/auth/sso/${connectionId}/start?returnTo=${encodeURIComponent(returnTo)}` });
  expect(start.statusCode).toBe(302);
  const cookies: Record<string, string> = { [SSO_OIDC_STATE_COOKIE]: cookieOf(start, SSO_OIDC_STATE_COOKIE) ?? '', [RETURN_COOKIE]: cookieOf(start, RETURN_COOKIE) ?? '' };
  tamper?.(cookies);
  const path = await followToOrigin(String(start.headers.location), ORIGIN, new Map());
  return t.app.inject({ url: path, cookies });
}

describe('SSO sign-in in redirect mode', () => {
  it('started with returnTo=/console/me, the callback answers 303 to /console/me with the session cookies, not a JSON body', async () => {
    atIdp(`alice@${DOMAIN}`);
    const res = await signInWith('/console/me');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/console/me');
    expect(res.body).not.toMatch(/sessionId|csrfToken|accessToken|mfaToken/);
    const access = cookieOf(res, '__Host-gh_access');
    expect(access).toBeTruthy();
    expect(res.cookies.map((c) => c.name)).toEqual(expect.arrayContaining(['__Host-gh_access', '__Host-gh_refresh', '__Host-gh_csrf']));
    // The return cookie is spent.
    expect(res.cookies.find((c) => c.name === RETURN_COOKIE)?.value).toBe('');
    const me = await t.app.inject({ url: '/v1/me', cookies: { '__Host-gh_access': access ?? '' } });
    expect(me.json()).toMatchObject({ email: `alice@${DOMAIN}` });
  });

  it('started with an allowed return URL of the app (auth.returnUrls), the callback answers 303 there', async () => {
    atIdp(`bob@${DOMAIN}`);
    const res = await signInWith(`${APP}/welcome?x=1`);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`${APP}/welcome?x=1`);
    expect(cookieOf(res, '__Host-gh_access')).toBeTruthy();
  });

  it('a refused callback in redirect mode lands on the console sign-in page with the refusal code, not JSON', async () => {
    atIdp(`carol@${DOMAIN}`);
    // The browser lost its state cookie (another tab, a cleared jar): the sign-in is refused.
    const res = await signInWith('/console/', (cookies) => delete cookies[SSO_OIDC_STATE_COOKIE]);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toMatch(/^\/console\/sign-in#error=SSO_STATE_INVALID$/);
    expect(cookieOf(res, '__Host-gh_access')).toBeUndefined();
  });

  // Each of these would send a signed-in browser to a site of the attacker's choosing.
  const ATTACKS: ReadonlyArray<[string, string]> = [
    ['open redirect: absolute URL of another site', 'https://evil.example/steal'],
    ['open redirect: protocol-relative //host', '//evil.example/steal'],
    ['open redirect: backslash /\\host (read as //host by browsers)', '/\\evil.example/steal'],
    ['open redirect: tab inside //host (parsers drop it)', '/\t/evil.example/steal'],
    ['open redirect: allowed host as a userinfo prefix (https://app.example.com@evil.example)', 'https://app.example.com@evil.example/after-sign-in'],
    ['open redirect: allowed host as a subdomain of the attacker (app.example.com.evil.example)', 'https://app.example.com.evil.example/after-sign-in'],
    ['open redirect: allowed origin, path outside the allowed path', 'https://app.example.com/other'],
    ['open redirect: allowed path as a prefix of a longer segment (/after-sign-in-evil)', 'https://app.example.com/after-sign-in-evil'],
    ['open redirect: dot segments climbing out of the allowed path', 'https://app.example.com/after-sign-in/../admin'],
    ['open redirect: allowed origin downgraded to http', 'http://app.example.com/after-sign-in'],
    ['open redirect: javascript: URL', 'javascript:alert(document.cookie)'],
    ['open redirect: data: URL', 'data:text/html,<script>alert(1)</script>'],
    ['open redirect: a path of this node outside the console', '/v1/me'],
    ['open redirect: dot segments out of the console', '/console/../v1/me'],
  ];

  describe('attack: open redirect through returnTo, in each of 14 forms, is refused at the start and at /v1/auth/return with 400 RETURN_URL_NOT_ALLOWED', () => {
    for (const [attack, returnTo] of ATTACKS) {
      it(`attack: ${attack} is refused at the start with 400 RETURN_URL_NOT_ALLOWED and no sign-in begins`, async () => {
        const res = await t.app.inject({ url: `/v1/auth/sso/${connectionId}/start?returnTo=${encodeURIComponent(returnTo)}` });
        expect({ status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code }).toEqual({ status: 400, code: 'RETURN_URL_NOT_ALLOWED' });
        expect(cookieOf(res, SSO_OIDC_STATE_COOKIE)).toBeUndefined();
        expect(cookieOf(res, RETURN_COOKIE)).toBeUndefined();
        // The console's finishing redirect refuses it the same way.
        const finish = await t.app.inject({ url: `/v1/auth/return?to=${encodeURIComponent(returnTo)}` });
        expect({ status: finish.statusCode, code: finish.json<{ error: { code: string } }>().error.code }).toEqual({ status: 400, code: 'RETURN_URL_NOT_ALLOWED' });
      });
    }
  });

  it('attack: a return cookie forged to another site is checked again at the callback: 400 RETURN_URL_NOT_ALLOWED, no session', async () => {
    atIdp(`dave@${DOMAIN}`);
    const res = await signInWith('/console/', (cookies) => {
      cookies[RETURN_COOKIE] = 'https://evil.example/steal';
    });
    expect({ status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code }).toEqual({ status: 400, code: 'RETURN_URL_NOT_ALLOWED' });
    expect(res.headers.location).toBeUndefined();
    expect(cookieOf(res, '__Host-gh_access')).toBeUndefined();
  });

  it('returnTo with mode "bearer" is refused (tokens never travel in a redirect): 400 VALIDATION_FAILED', async () => {
    const res = await t.app.inject({ url: `/v1/auth/sso/${connectionId}/start?mode=bearer&returnTo=${encodeURIComponent('/console/')}` });
    expect({ status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code }).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
  });

  it('/v1/auth/return redirects to an allowed return URL and a console path', async () => {
    for (const to of [`${APP}/next`, '/console/orgs']) {
      const res = await t.app.inject({ url: `/v1/auth/return?to=${encodeURIComponent(to)}` });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe(to);
    }
  });
});
