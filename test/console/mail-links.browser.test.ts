/**
 * The links of the mails in Chromium: the invitation link (signed in, and signed out through the
 * sign-in page) fills the accept form and the user's click accepts it; the reset link opens the
 * new-password step with the code filled; the verification link verifies the address. Each page
 * wipes the token from the address bar once read (history.replaceState): it is neither in the URL
 * nor in the history entry going back returns to. Every step: no CSP or Trusted Types violation,
 * no serious or critical axe-core finding.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSkipReason } from '../support/browser.ts';
import { signUpUser, TEST_PASSWORD, type SignedInUser } from '../support/users.ts';
import { expectAccessible, expectNoCspViolations, signInThroughConsole, startConsoleRig, type ConsoleRig } from './harness.ts';

const skipReason = chromiumSkipReason;

(skipReason ? describe.skip : describe)(`mail links in Chromium${skipReason ? `: skipped, ${skipReason}` : ''}`, () => {
  let rig: ConsoleRig;
  let owner: SignedInUser;
  let org = '';

  async function mailTo(to: string, kind: string): Promise<string> {
    for (let i = 0; i < 100; i += 1) {
      await rig.t.node.identity.mailer.flush();
      const text = [...rig.t.mail].reverse().find((m) => m.to === to && m.kind === kind)?.text;
      if (text) return text;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${kind} mail to ${to}`);
  }

  /** The console link of the mail (on the node's origin) and its token. */
  const linkOf = (text: string): { link: string; token: string } => {
    const link = (text.match(/https?:\/\/\S+\/console\/\S+\?token=\S+/) ?? [''])[0];
    expect(link.startsWith(`${rig.origin}/console/`)).toBe(true);
    return { link, token: new URL(link).searchParams.get('token') ?? '' };
  };

  async function invite(email: string): Promise<{ link: string; token: string }> {
    const res = await rig.t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/invitations`, headers: owner.auth, payload: { email, role: 'editor' } });
    expect(res.statusCode).toBe(201);
    return linkOf(await mailTo(email, 'invitation'));
  }

  /** The address bar and the history entry hold no token. */
  async function expectTokenWiped(page: Page, token: string): Promise<void> {
    await expect.poll(() => page.url()).not.toContain('token=');
    expect(page.url()).not.toContain(token);
    expect(await page.evaluate(() => window.location.href)).not.toContain(token);
  }

  beforeAll(async () => {
    rig = await startConsoleRig();
    owner = await signUpUser(rig.t.app, rig.t.mail, 'links-owner@example.com');
    org = (await rig.t.app.inject({ method: 'POST', url: '/v1/orgs', headers: owner.auth, payload: { name: 'Linked Org' } })).json<{ id: string }>().id;
  });
  afterAll(async () => rig?.close());

  it('the invitation link, opened signed in, fills the accept form, the click accepts it, and the token is wiped from the address and the history', async () => {
    const user = await signUpUser(rig.t.app, rig.t.mail, 'links-invited@example.com');
    const { link, token } = await invite(user.email);
    const page = await (await rig.newContext()).newPage();
    await signInThroughConsole(page, rig.origin, user.email);
    await page.goto(link);
    const form = page.getByRole('form', { name: 'Accept an invitation' });
    await form.getByLabel('Invitation token').waitFor();
    expect(await form.getByLabel('Invitation token').inputValue()).toBe(token);
    await expectTokenWiped(page, token);
    expect(new URL(page.url()).pathname).toBe('/console/orgs/accept');
    await expectAccessible(page);
    await form.getByRole('button', { name: 'Accept invitation' }).click();
    await page.getByText('You joined Linked Org as editor.').waitFor();
    const orgs = await rig.t.app.inject({ url: '/v1/orgs', headers: user.auth });
    expect(orgs.json<{ orgs: Array<{ id: string; role: string }> }>().orgs).toEqual([expect.objectContaining({ id: org, role: 'editor' })]);
    // Going back and forward again never shows the token in the address.
    await page.getByRole('link', { name: 'Open Orgs & workspaces' }).click();
    await page.getByRole('heading', { level: 1, name: 'Orgs & workspaces' }).waitFor();
    await page.goBack();
    expect(page.url()).not.toContain(token);
    expectNoCspViolations(rig);
  });

  it('the invitation link, opened signed out, goes through the sign-in and comes back with the token filled, then wiped', async () => {
    const user = await signUpUser(rig.t.app, rig.t.mail, 'links-later@example.com');
    const { link, token } = await invite(user.email);
    const page = await (await rig.newContext()).newPage();
    await page.goto(link);
    await page.getByLabel('Email', { exact: true }).fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const form = page.getByRole('form', { name: 'Accept an invitation' });
    await form.getByLabel('Invitation token').waitFor();
    expect(await form.getByLabel('Invitation token').inputValue()).toBe(token);
    await expectTokenWiped(page, token);
    await form.getByRole('button', { name: 'Accept invitation' }).click();
    await page.getByText('You joined Linked Org as editor.').waitFor();
    expectNoCspViolations(rig);
  });

  it('the reset link opens the new-password step with the code filled; the new password signs in and the old one no longer does', async () => {
    const user = await signUpUser(rig.t.app, rig.t.mail, 'links-reset@example.com');
    expect((await rig.t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', payload: { email: user.email } })).statusCode).toBe(202);
    const { link, token } = linkOf(await mailTo(user.email, 'password-reset'));
    const page = await (await rig.newContext()).newPage();
    await page.goto(link);
    const form = page.getByRole('form', { name: 'Set a new password' });
    await form.getByLabel('Reset code').waitFor();
    expect(await form.getByLabel('Reset code').inputValue()).toBe(token);
    await expectTokenWiped(page, token);
    await expectAccessible(page);
    const fresh = 'a fresh passphrase set from the mail link';
    await form.getByLabel('New password').fill(fresh);
    await form.getByRole('button', { name: 'Set new password' }).click();
    await page.getByText('Password changed').waitFor();
    const login = (password: string) => rig.t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: user.email, password } });
    expect((await login(fresh)).statusCode).toBe(200);
    expect((await login(TEST_PASSWORD)).statusCode).toBe(401);
    await expectAccessible(page);
    expectNoCspViolations(rig);
  });

  it('the verification link opens the verification step with the code filled, and the click verifies the address', async () => {
    const email = 'links-verify@example.com';
    expect((await rig.t.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: TEST_PASSWORD } })).statusCode).toBe(202);
    const { link, token } = linkOf(await mailTo(email, 'verify-email'));
    const page = await (await rig.newContext()).newPage();
    await page.goto(link);
    const form = page.getByRole('form', { name: 'Verify your email' });
    await form.getByLabel('Verification code').waitFor();
    expect(await form.getByLabel('Verification code').inputValue()).toBe(token);
    await expectTokenWiped(page, token);
    await form.getByRole('button', { name: 'Verify email' }).click();
    await page.getByText('Email verified').waitFor();
    const { rows } = await rig.t.node.db.query<{ verified: boolean }>('select email_verified_at is not null as verified from users where email = $1', [email]);
    expect(rows[0]?.verified).toBe(true);
    await expectAccessible(page);
    expectNoCspViolations(rig);
  });
});
