/**
 * Passkeys end to end in a real browser (issue 8 item 3): Debian's Chromium driven by
 * playwright-core, with a CDP virtual authenticator (CTAP2, internal, resident keys, user
 * verification), on the page Gatehouse serves at /passkeys. The node listens on loopback and the
 * page is opened at http://localhost:<port> (a secure context, where __Host- cookies work), so the
 * RP id is `localhost` and the origin the public URL.
 *
 * Flow: sign in with the password (cookie session) -> add a passkey -> sign out -> sign in with
 * the passkey alone -> sign out -> password sign-in whose second step is the passkey -> removal
 * refused without a recent step-up, allowed after a passkey step-up. Then a bearer token given
 * to the page in the URL fragment.
 */
import { type Browser, type CDPSession, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { chromiumSkipReason, freePort, launchChromium } from '../support/browser.ts';
import { signUpUser, TEST_PASSWORD } from '../support/users.ts';

const skipReason = chromiumSkipReason;

type PageApi = Record<string, (...args: unknown[]) => Promise<unknown>>;

(skipReason ? describe.skip : describe)(`passkeys in Chromium with a virtual authenticator${skipReason ? `: skipped, ${skipReason}` : ''}`, () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let cdp: CDPSession;
  let authenticatorId: string;
  let origin: string;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    // In CI a missing browser is a failure, never a skip.
    const port = await freePort();
    origin = `http://localhost:${port}`;
    t = await createTestApp({ overrides: { 'rateLimit.enabled': false, 'server.publicUrl': origin, 'server.port': port } });
    await t.app.listen({ host: '127.0.0.1', port });
    browser = await launchChromium();
    const context = await browser.newContext();
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const added = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
    authenticatorId = added.authenticatorId;
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /** Calls a function of the page's script (window.gatehouse); a refusal comes back as { error: CODE }. */
  async function call(name: string, ...args: unknown[]): Promise<Record<string, unknown>> {
    return page.evaluate(
      async ([fn, params]) => {
        const api = (window as unknown as { gatehouse: PageApi }).gatehouse;
        try {
          return (await api[fn as string]?.(...(params as unknown[]))) as Record<string, unknown>;
        } catch (err) {
          return { error: (err as Error).message };
        }
      },
      [name, args] as const,
    );
  }

  async function open(fragment = ''): Promise<void> {
    // From elsewhere, so a fragment-only change is a real navigation that loads the page again.
    await page.goto('about:blank');
    const res = await page.goto(`${origin}/passkeys${fragment}`);
    expect(res?.status()).toBe(200);
    await page.waitForSelector('html[data-ready="true"]');
  }

  it('register -> passwordless sign-in -> second step of a password sign-in -> removal with step-up, on the page Gatehouse serves', async () => {
    const user = await signUpUser(t.app, t.mail, 'browser-passkey@example.com');
    await open();
    const page0 = await page.request.get(`${origin}/passkeys`);
    expect(page0.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(page0.headers()['content-security-policy']).not.toContain('unsafe-inline');

    expect(await call('signIn', user.email, TEST_PASSWORD)).toMatchObject({ signedIn: true });
    const added = await call('register', 'Chromium virtual authenticator');
    expect(added).toMatchObject({ name: 'Chromium virtual authenticator', transports: ['internal'] });
    const stored = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(stored.credentials).toHaveLength(1);
    expect(stored.credentials[0]).toMatchObject({ isResidentCredential: true, rpId: 'localhost' });
    // The user handle the authenticator keeps is random, not the email.
    expect(Buffer.from(stored.credentials[0]?.userHandle ?? '', 'base64').toString('utf8')).not.toContain(user.email);

    expect(await call('signOut')).toEqual({ signedOut: true });
    expect(await call('me')).toEqual({ error: 'UNAUTHENTICATED' });

    // Passwordless: no email typed, the authenticator offers its discoverable credential.
    expect(await call('passwordless')).toMatchObject({ signedIn: true });
    expect(await call('me')).toMatchObject({ id: user.userId, email: user.email });
    expect((await page.context().cookies()).map((c) => c.name)).toEqual(expect.arrayContaining(['__Host-gh_access', '__Host-gh_refresh', '__Host-gh_csrf']));
    expect(await call('signOut')).toEqual({ signedOut: true });

    // Password sign-in: the passkey is the second step.
    expect(await call('signIn', user.email, TEST_PASSWORD)).toEqual({ mfaRequired: true, methods: ['webauthn'] });
    expect(await call('mfaWithPasskey')).toMatchObject({ signedIn: true });
    expect(await call('me')).toMatchObject({ id: user.userId });
    const signCount = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0]?.signCount ?? 0;
    expect(signCount).toBeGreaterThanOrEqual(2);

    // Removal needs a second factor within the last 5 minutes: age this session's.
    await t.node.db.query("update sessions set mfa_at = mfa_at - interval '6 minutes' where user_id = $1", [user.userId]);
    expect(await call('removePasskey', added.id)).toEqual({ error: 'MFA_STEP_UP_REQUIRED' });
    expect(await call('listPasskeys')).toHaveLength(1);
    expect(await call('stepUp')).toEqual({ ok: true, method: 'webauthn' });
    expect(await call('removePasskey', added.id)).toEqual({ removed: added.id });
    expect(await call('listPasskeys')).toEqual([]);
    expect(t.mail.filter((m) => m.to === user.email).map((m) => m.subject)).toEqual(expect.arrayContaining(['A passkey was added', 'A passkey was removed']));

    // The authenticator still holds the credential, but Gatehouse no longer knows it.
    expect(await call('signOut')).toEqual({ signedOut: true });
    expect(await call('passwordless')).toEqual({ error: 'PASSKEY_UNKNOWN' });
    expect(consoleErrors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
  });

  it('with a bearer token given in the URL fragment, the page adds a passkey to that account', async () => {
    const user = await signUpUser(t.app, t.mail, 'browser-bearer@example.com');
    await page.context().clearCookies();
    await open(`#token=${user.access}`);
    // The fragment is dropped from the address bar once read.
    expect(page.url()).toBe(`${origin}/passkeys`);
    const added = await call('register', 'Bearer passkey');
    expect(added).toMatchObject({ name: 'Bearer passkey' });
    const list = await t.app.inject({ url: '/v1/me/passkeys', headers: user.auth });
    expect(list.json().passkeys.map((p: { id: string }) => p.id)).toEqual([added.id]);
  });
});
