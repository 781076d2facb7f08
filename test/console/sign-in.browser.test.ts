/**
 * Signing in through the console in Chromium (UI-2, UI-3, issue 25): sign-up with the code mailed
 * to the address, password reset with the mailed code, an authenticator app enrolled from its QR
 * code and then used with a real TOTP generator (otpauth) and a recovery code, a passkey added
 * through a CDP virtual authenticator and used without a password and as the second step, and an
 * SSO sign-in by email domain against a real OIDC provider that lands back in the console. Every
 * step runs under the console's CSP with no violation reported, and axe-core finds no serious or
 * critical issue on the screens visited.
 */
import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import type { BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSkipReason } from '../support/browser.ts';
import { startTestIdp, type TestIdp } from '../support/oidc-idp.ts';
import { signUpUser, TEST_PASSWORD } from '../support/users.ts';
import { expectAccessible, expectNoCspViolations, shoot, signInThroughConsole, startConsoleRig, type ConsoleRig } from './harness.ts';

const skipReason = chromiumSkipReason;
const NEW_PASSWORD = 'another quite long passphrase 77';

(skipReason ? describe.skip : describe)(`console sign-in in Chromium${skipReason ? `: skipped, ${skipReason}` : ''}`, () => {
  let rig: ConsoleRig;
  let context: BrowserContext;
  let page: Page;
  let socialIdp: TestIdp;
  const socialSecret = `social-${randomBytes(16).toString('hex')}`;

  beforeAll(async () => {
    // A real OpenID provider as the social provider "acme" (its issuer is known before the node starts).
    socialIdp = await startTestIdp();
    rig = await startConsoleRig({
      overrides: {
        'sso.allowInsecureRequests': true,
        'social.allowInsecureRequests': true,
        'social.clientSecrets': { acme: socialSecret },
        'social.providers': [{ id: 'acme', kind: 'oidc', issuer: socialIdp.issuer, clientId: 'console-social' }],
      },
    });
    await socialIdp.configure({ clientId: 'console-social', clientSecret: socialSecret, redirectUris: [`${rig.origin}/v1/auth/social/acme/callback`] });
    context = await rig.newContext();
    page = await context.newPage();
  });
  afterAll(async () => {
    await rig?.close();
    await socialIdp?.close();
  });

  /** The newest mail of `kind` to `to`, once the node's queue delivered it. */
  async function mailed(to: string, kind: string, pattern: RegExp): Promise<string> {
    for (let i = 0; i < 100; i += 1) {
      await rig.t.node.identity.mailer.flush();
      const text = [...rig.t.mail].reverse().find((m) => m.to === to && m.kind === kind)?.text ?? '';
      const code = pattern.exec(text)?.[0];
      if (code) return code;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${kind} mail to ${to}`);
  }

  async function signOut(): Promise<void> {
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
  }

  it('sign-up verifies the email with the code from the outbox, then the password signs in; a weak password is refused with its code', async () => {
    const email = 'console-signup@example.com';
    await page.goto(`${rig.origin}/console/sign-in`);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Create an account' }).waitFor();
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill('password');
    await page.getByRole('button', { name: 'Create account' }).click();
    const refused = page.getByRole('alert').filter({ hasText: 'Sign-up refused' });
    await refused.waitFor();
    expect(await refused.locator('.error-code').textContent()).toMatch(/^PASSWORD_(TOO_SHORT|COMMON)$/);
    await expectAccessible(page);

    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByLabel('Verification code').waitFor();
    const code = await mailed(email, 'verify-email', /ghv_[A-Za-z0-9_-]{43}/);
    await page.getByLabel('Verification code').fill(code);
    await page.getByRole('button', { name: 'Verify email' }).click();
    await page.getByText('Email verified').waitFor();
    await shoot(page, 'sign-up');
    await signInThroughConsole(page, rig.origin, email);
    await page.getByRole('main').getByText(email).first().waitFor();
    await signOut();
    expectNoCspViolations(rig);
  });

  it('password reset: the mailed code sets a new password, the old one is refused with INVALID_CREDENTIALS', async () => {
    const user = await signUpUser(rig.t.app, rig.t.mail, 'console-reset@example.com');
    await page.goto(`${rig.origin}/console/sign-in`);
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByLabel('Email', { exact: true }).fill(user.email);
    await page.getByRole('button', { name: 'Email me a code' }).click();
    await page.getByLabel('Reset code').waitFor();
    const code = await mailed(user.email, 'password-reset', /ghp_[A-Za-z0-9_-]{43}/);
    await page.getByLabel('Reset code').fill(code);
    await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByText('Password changed').waitFor();
    await expectAccessible(page);

    await page.goto(`${rig.origin}/console/sign-in`);
    await page.getByLabel('Email', { exact: true }).fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'INVALID_CREDENTIALS' }).waitFor();
    await signInThroughConsole(page, rig.origin, user.email, NEW_PASSWORD);
    await signOut();
    expectNoCspViolations(rig);
  });

  it('TOTP: enrolled from the QR code on the Me page, then asked at sign-in: a wrong code is refused with MFA_CODE_INVALID, a real TOTP code and a recovery code sign in', async () => {
    const user = await signUpUser(rig.t.app, rig.t.mail, 'console-totp@example.com');
    await signInThroughConsole(page, rig.origin, user.email);
    await page.getByLabel('Current password', { exact: true }).first().waitFor();
    const totpForm = page.getByRole('form', { name: 'Set up an authenticator app' });
    await totpForm.getByLabel('Current password').fill(TEST_PASSWORD);
    await totpForm.getByRole('button', { name: 'Set up an authenticator app' }).click();
    const qr = page.getByRole('img', { name: 'QR code to scan with your authenticator app' });
    await qr.waitFor();
    expect(await qr.getAttribute('src')).toMatch(/^data:image\/png;base64,/);
    const secret = (await page.locator('code.secret').textContent()) ?? '';
    expect(secret).toMatch(/^[A-Z2-7]{32,}$/);
    await expectAccessible(page);
    await shoot(page, 'me-totp');
    const totp = new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
    await page.getByLabel('Code from the app').fill(totp.generate());
    await page.getByRole('button', { name: 'Confirm and turn on' }).click();
    await page.getByText('Authenticator app added').waitFor();

    await page.getByRole('button', { name: 'Generate new recovery codes' }).click();
    const codes = await page.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem').allTextContents();
    expect(codes.length).toBeGreaterThanOrEqual(8);
    await signOut();

    await page.getByLabel('Email', { exact: true }).fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Second step' }).waitFor();
    await expectAccessible(page);
    await page.getByLabel('Six-digit code').fill('000000');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('alert').filter({ hasText: 'MFA_CODE_INVALID' }).waitFor();
    // The next time step: the enrolment used this one, and a used step is never accepted twice.
    await page.getByLabel('Six-digit code').fill(totp.generate({ timestamp: Date.now() + 30_000 }));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
    await signOut();

    await page.getByLabel('Email', { exact: true }).fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Use a recovery code' }).click();
    await page.getByRole('textbox', { name: 'Recovery code' }).fill(codes[0] ?? '');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
    await page.getByText(`${codes.length - 1} unused recovery codes`).waitFor();
    await signOut();
    expectNoCspViolations(rig);
  });

  it('passkey: added on the Me page through a virtual authenticator, then signs in without a password and as the second step of a password sign-in', async () => {
    const cdp: CDPSession = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
    const user = await signUpUser(rig.t.app, rig.t.mail, 'console-passkey@example.com');
    await signInThroughConsole(page, rig.origin, user.email);
    const addForm = page.getByRole('form', { name: 'Add a passkey' });
    await addForm.getByLabel('Passkey name').fill('Laptop');
    await addForm.getByLabel('Current password').fill(TEST_PASSWORD);
    await addForm.getByRole('button', { name: 'Add a passkey' }).click();
    await page.getByText('Passkey "Laptop" added.').waitFor();
    await page.getByRole('table', { name: 'Your passkeys' }).getByRole('cell', { name: 'Laptop', exact: true }).waitFor();
    expect((await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials).toHaveLength(1);
    await signOut();

    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
    await page.getByRole('main').getByText(user.email).first().waitFor();
    await signOut();

    await page.getByLabel('Email', { exact: true }).fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Second step' }).waitFor();
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
    const signCount = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0]?.signCount ?? 0;
    expect(signCount).toBeGreaterThanOrEqual(2);
    await signOut();
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
    await cdp.detach();
    expectNoCspViolations(rig);
  });

  it("social provider: its button signs a new user in and lands back on the console's account page", async () => {
    socialIdp.accounts.set('sub-frank', { email: 'frank@social-console.example', email_verified: true });
    socialIdp.nextSubject = 'sub-frank';
    await page.goto(`${rig.origin}/console/sign-in`);
    await page.getByRole('link', { name: 'Continue with acme' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/console/me');
    await page.getByRole('main').getByText('frank@social-console.example').first().waitFor();
    await signOut();
    expectNoCspViolations(rig);
  });

  describe('SSO by email domain', () => {
    let idp: TestIdp;
    afterAll(async () => idp?.close());

    it('an SSO sign-in started from the email domain lands back in the console signed in, never on a JSON body', async () => {
      idp = await startTestIdp();
      const { app, mail, node } = rig.t;
      const owner = await signUpUser(app, mail, 'owner@sso-console.example');
      const operator = await signUpUser(app, mail, 'operator@platform-console.example');
      await node.db.asOwner((tx) => tx.query('update users set is_operator = true where id = $1', [operator.userId]));
      const orgId = (await app.inject({ method: 'POST', url: '/v1/orgs', headers: owner.auth, payload: { name: 'SSO Co' } })).json<{ id: string }>().id;
      const secret = `sso-${randomBytes(16).toString('hex')}`;
      const connection = await app.inject({
        method: 'POST',
        url: `/v1/orgs/${orgId}/sso/connections`,
        headers: owner.auth,
        payload: { kind: 'oidc', name: 'SSO Co IdP', defaultRole: 'viewer', issuer: idp.issuer, clientId: 'console-sso', clientSecret: secret, scopes: ['openid', 'email'] },
      });
      const connectionId = connection.json<{ id: string }>().id;
      await idp.configure({ clientId: 'console-sso', clientSecret: secret, redirectUris: [`${rig.origin}/v1/auth/sso/oidc/${connectionId}/callback`] });
      await app.inject({ method: 'POST', url: `/v1/orgs/${orgId}/sso/domains`, headers: owner.auth, payload: { domain: 'sso-console.example', connectionId } });
      await app.inject({ method: 'POST', url: '/v1/admin/sso/domains/verify', headers: operator.auth, payload: { orgId, domain: 'sso-console.example' } });
      idp.accounts.set('sub-erin', { email: 'erin@sso-console.example', email_verified: true });
      idp.nextSubject = 'sub-erin';

      const documents: string[] = [];
      page.on('response', (r) => {
        // Gatehouse's documents (the IdP's own steps are its business).
        if (r.request().isNavigationRequest() && r.url().startsWith(rig.origin)) documents.push(`${r.status()} ${r.headers()['content-type'] ?? ''} ${new URL(r.url()).pathname}`);
      });
      await page.goto(`${rig.origin}/console/sign-in`);
      await page.getByLabel('Work email').fill('erin@sso-console.example');
      await page.getByRole('button', { name: 'Continue with SSO' }).click();
      await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
      expect(new URL(page.url()).pathname).toBe('/console/me');
      await page.getByRole('main').getByText('erin@sso-console.example').first().waitFor();
      // The callback answered with a redirect; no page the browser showed was a JSON document.
      expect(documents.some((d) => /^303 .*\/v1\/auth\/sso\/oidc\/.+\/callback$/.test(d))).toBe(true);
      expect(documents.filter((d) => d.startsWith('2') && d.includes('application/json'))).toEqual([]);
      expect(documents.at(-1)).toMatch(/^200 text\/html.* \/console\/me$/);
      await signOut();
      expectNoCspViolations(rig);
    });
  });
});
