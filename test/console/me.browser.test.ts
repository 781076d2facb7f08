/**
 * The console's "Me" page in Chromium (UI-4, issue 25): sessions and devices (a second browser's
 * session listed and revoked from the first, refused by the API at once; sign out everywhere),
 * email change confirmed with the mailed code, password change (a wrong current password refused
 * with its code), the data export download, and account deletion that asks for a step-up with a
 * real TOTP code when the last second factor is older than five minutes, and removing the
 * authenticator app (by the factor id GET /v1/me gives) behind the same step-up. No CSP violation; no
 * serious or critical axe-core finding.
 */
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSkipReason } from '../support/browser.ts';
import { signUpUser, TEST_PASSWORD } from '../support/users.ts';
import { enrolTotp, expectAccessible, expectNoCspViolations, shoot, signInThroughConsole, signInWithTotpThroughConsole, startConsoleRig, type ConsoleRig } from './harness.ts';

const skipReason = chromiumSkipReason;

(skipReason ? describe.skip : describe)(`console Me page in Chromium${skipReason ? `: skipped, ${skipReason}` : ''}`, () => {
  let rig: ConsoleRig;
  let page: Page;

  beforeAll(async () => {
    rig = await startConsoleRig();
    page = await (await rig.newContext()).newPage();
  });
  afterAll(async () => rig?.close());

  async function mailed(to: string, kind: string, pattern: RegExp): Promise<string> {
    for (let i = 0; i < 100; i += 1) {
      await rig.t.node.identity.mailer.flush();
      const code = pattern.exec([...rig.t.mail].reverse().find((m) => m.to === to && m.kind === kind)?.text ?? '')?.[0];
      if (code) return code;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${kind} mail to ${to}`);
  }

  /** A user with a confirmed authenticator app (enrolled through the API), signed in through the console with its code. */
  async function signedInWithTotp(email: string) {
    const user = await signUpUser(rig.t.app, rig.t.mail, email);
    const { factorId, totp } = await enrolTotp(rig.t, user);
    await signInWithTotpThroughConsole(page, rig.origin, user.email, totp);
    return { user, factorId, totp };
  }

  it('sessions: another browser\'s session is listed, revoked from here and refused by the API at once; sign out everywhere ends this one too', async () => {
    const user = await signUpUser(rig.t.app, rig.t.mail, 'console-sessions@example.com');
    const other = await (await rig.newContext()).newPage();
    await signInThroughConsole(other, rig.origin, user.email);
    expect((await other.request.get(`${rig.origin}/v1/me`)).status()).toBe(200);

    await signInThroughConsole(page, rig.origin, user.email);
    const table = page.getByRole('table', { name: 'Where you are signed in' });
    await table.getByText('This session', { exact: false }).waitFor();
    // The API-made session of signUpUser, the other browser's and this one.
    await expect.poll(async () => table.locator('tbody tr').count()).toBe(3);
    await page.getByRole('table', { name: 'Devices that signed in' }).locator('tbody tr').first().waitFor();
    await expectAccessible(page);
    await shoot(page, 'me');

    const signOutButtons = table.getByRole('button', { name: /^Sign out session from/ });
    expect(await signOutButtons.count()).toBe(2);
    // Revoke the other sessions one by one until only this one is left.
    for (const left of [2, 1]) {
      await signOutButtons.first().click();
      await expect.poll(async () => table.locator('tbody tr').count()).toBe(left);
    }
    await page.getByText('Session signed out.').waitFor();
    await expect.poll(async () => table.locator('tbody tr').count()).toBe(1);
    const refused = await other.request.get(`${rig.origin}/v1/me`);
    expect(refused.status()).toBe(401);
    expect((await refused.json()).error.code).toBe('UNAUTHENTICATED');

    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    const dialog = page.getByRole('dialog', { name: 'Sign out everywhere?' });
    await dialog.waitFor();
    await expectAccessible(page);
    await dialog.getByRole('button', { name: 'Sign out all sessions' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    expect((await page.request.get(`${rig.origin}/v1/me`)).status()).toBe(401);
    expectNoCspViolations(rig);
  });

  it('email change is confirmed with the code mailed to the new address; a wrong current password on password change is refused with INVALID_CREDENTIALS; the new password works', async () => {
    const user = await signUpUser(rig.t.app, rig.t.mail, 'console-profile@example.com');
    await signInThroughConsole(page, rig.origin, user.email);
    const change = page.getByRole('form', { name: 'Change your email' });
    await change.getByLabel('New email').fill('console-profile-new@example.com');
    await change.getByLabel('Current password').fill(TEST_PASSWORD);
    await change.getByRole('button', { name: 'Send confirmation code' }).click();
    const code = await mailed('console-profile-new@example.com', 'email-change', /ghe_[A-Za-z0-9_-]{43}/);
    await page.getByLabel('Confirmation code').fill(code);
    await page.getByRole('button', { name: 'Confirm new email' }).click();
    await page.getByText('Your email address was changed.').waitFor();
    await page.getByRole('region', { name: 'Profile' }).getByText('console-profile-new@example.com', { exact: true }).waitFor();

    const password = page.getByRole('form', { name: 'Change your password' });
    await password.getByLabel('Current password').fill('not my password at all');
    await password.getByLabel('New password').fill('a brand new long passphrase 9');
    await password.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('alert').filter({ hasText: 'Password not changed' }).locator('.error-code').filter({ hasText: 'INVALID_CREDENTIALS' }).waitFor();
    await password.getByLabel('Current password').fill(TEST_PASSWORD);
    await password.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Password changed. Your other sessions were signed out.').waitFor();
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await signInThroughConsole(page, rig.origin, 'console-profile-new@example.com', 'a brand new long passphrase 9');
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    expectNoCspViolations(rig);
  });

  it('data export downloads the account as JSON; deletion asks for a step-up (TOTP) when the second factor is stale, refuses a wrong password, and then the account is gone', async () => {
    const { user, totp } = await signedInWithTotp('console-delete@example.com');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download my data' }).click()]);
    const exported = JSON.parse(readFileSync((await download.path()) ?? '', 'utf8')) as { user: { email: string }; mfa: { totp: boolean } };
    expect(exported.user.email).toBe(user.email);
    expect(exported.mfa.totp).toBe(true);

    // The second factor was given more than five minutes ago.
    await rig.t.node.db.query("update sessions set mfa_at = mfa_at - interval '6 minutes' where user_id = $1", [user.userId]);
    const form = page.getByRole('form', { name: 'Delete your account' });
    await form.getByLabel('Password to confirm').fill('not the password of this account');
    await form.getByRole('button', { name: 'Delete my account' }).click();
    const dialog = page.getByRole('dialog', { name: "Confirm it's you" });
    await dialog.waitFor();
    await expectAccessible(page);
    await dialog.getByLabel('Authenticator or recovery code').fill('000000');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'MFA_CODE_INVALID' }).waitFor();
    await dialog.getByLabel('Authenticator or recovery code').fill(totp.generate({ timestamp: Date.now() + 30_000 }));
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    // Stepped up, the deletion is tried again: the password is checked too.
    await page.getByRole('alert').filter({ hasText: 'Account not deleted' }).locator('.error-code').filter({ hasText: 'INVALID_CREDENTIALS' }).waitFor();
    expect((await rig.t.app.inject({ url: '/v1/me', headers: user.auth })).statusCode).toBe(200);
    await form.getByLabel('Password to confirm').fill(TEST_PASSWORD);
    await form.getByRole('button', { name: 'Delete my account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    const gone = await rig.t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: user.email, password: TEST_PASSWORD } });
    expect(gone.json<{ error: { code: string } }>().error.code).toBe('INVALID_CREDENTIALS');
    expectNoCspViolations(rig);
  });

  it('removes the authenticator app by the factor id GET /v1/me gives: a stale second factor asks for a step-up, a wrong code is refused with MFA_CODE_INVALID, then the app is gone and the password alone signs in', async () => {
    const { user, factorId, totp } = await signedInWithTotp('console-totp-remove@example.com');
    const me = await page.request.get(`${rig.origin}/v1/me`);
    expect((await me.json()).mfa).toMatchObject({ totp: true, totpFactorId: factorId });
    // The second factor was given more than five minutes ago.
    await rig.t.node.db.query("update sessions set mfa_at = mfa_at - interval '6 minutes' where user_id = $1", [user.userId]);
    const section = page.getByRole('region', { name: 'Authenticator app and recovery codes' });
    await section.getByRole('button', { name: 'Remove the authenticator app' }).click();
    const confirm = page.getByRole('dialog', { name: 'Remove the authenticator app?' });
    await confirm.getByRole('button', { name: 'Remove app' }).click();
    const stepUp = page.getByRole('dialog', { name: "Confirm it's you" });
    await stepUp.waitFor();
    await stepUp.getByLabel('Authenticator or recovery code').fill('000000');
    await stepUp.getByRole('button', { name: 'Confirm' }).click();
    await stepUp.getByRole('alert').filter({ hasText: 'MFA_CODE_INVALID' }).waitFor();
    await expectAccessible(page);
    // Refused: the factor is still there.
    expect((await (await page.request.get(`${rig.origin}/v1/me`)).json()).mfa.totp).toBe(true);
    await stepUp.getByLabel('Authenticator or recovery code').fill(totp.generate({ timestamp: Date.now() + 30_000 }));
    await stepUp.getByRole('button', { name: 'Confirm' }).click();
    await section.getByText('Authenticator app removed: sign-ins no longer ask for its code.').waitFor();
    await section.getByRole('form', { name: 'Set up an authenticator app' }).waitFor();
    expect((await (await page.request.get(`${rig.origin}/v1/me`)).json()).mfa).toMatchObject({ totp: false, totpFactorId: null });
    const login = await rig.t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: user.email, password: TEST_PASSWORD } });
    expect(login.json<{ accessToken?: string; mfaRequired?: boolean }>()).toMatchObject({ accessToken: expect.any(String) });
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    expectNoCspViolations(rig);
  });
});
