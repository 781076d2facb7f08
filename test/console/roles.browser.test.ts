/**
 * Role-aware forms in Chromium: a member sees what their role allows. A viewer sees the values of
 * each settings form (model routing, budgets, API keys, the org's settings) with no submit control
 * and a note naming the role needed; the API still refuses them (it stays the authority). An admin
 * sees and uses the same forms. An org admin narrowed to viewer in one workspace sees that
 * workspace's routing read-only (the effective role the API answers) but keeps the org's budget
 * form. Every step: no CSP or Trusted Types violation, no serious or critical axe-core finding.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSkipReason } from '../support/browser.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';
import { expectAccessible, expectNoCspViolations, signInThroughConsole, startConsoleRig, type ConsoleRig } from './harness.ts';

const skipReason = chromiumSkipReason;

(skipReason ? describe.skip : describe)(`role-aware console forms in Chromium${skipReason ? `: skipped, ${skipReason}` : ''}`, () => {
  let rig: ConsoleRig;
  let owner: SignedInUser;
  let admin: SignedInUser;
  let viewer: SignedInUser;
  let org = '';
  let ws = '';

  const as = async (user: SignedInUser, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) => {
    const res = await rig.t.app.inject({ method, url, headers: user.auth, ...(payload ? { payload } : {}) });
    return { status: res.statusCode, body: res.body ? (res.json() as Record<string, unknown> & { error?: { code: string } }) : {} };
  };

  async function join(user: SignedInUser, role: 'admin' | 'viewer'): Promise<void> {
    expect((await as(owner, 'POST', `/v1/orgs/${org}/invitations`, { email: user.email, role })).status).toBe(201);
    let token: string | undefined;
    for (let i = 0; i < 100 && !token; i += 1) {
      await rig.t.node.identity.mailer.flush();
      token = /ghi_[A-Za-z0-9_-]{65}/.exec(rig.t.mail.find((m) => m.to === user.email && m.kind === 'invitation')?.text ?? '')?.[0];
      if (!token) await new Promise((r) => setTimeout(r, 50));
    }
    expect((await as(user, 'POST', '/v1/invitations/accept', { token })).status).toBe(200);
  }

  async function signedIn(user: SignedInUser): Promise<Page> {
    const page = await (await rig.newContext()).newPage();
    await signInThroughConsole(page, rig.origin, user.email);
    return page;
  }

  beforeAll(async () => {
    rig = await startConsoleRig({ overrides: { 'gateway.providers': [{ id: 'openai', kind: 'openai', baseUrl: 'https://api.openai.com/v1', models: ['mock-model'] }] } });
    owner = await signUpUser(rig.t.app, rig.t.mail, 'roles-owner@example.com');
    admin = await signUpUser(rig.t.app, rig.t.mail, 'roles-admin@example.com');
    viewer = await signUpUser(rig.t.app, rig.t.mail, 'roles-viewer@example.com');
    org = String((await as(owner, 'POST', '/v1/orgs', { name: 'Roles Inc' })).body.id);
    ws = String((await as(owner, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'Production' })).body.id);
    await join(admin, 'admin');
    await join(viewer, 'viewer');
    // Values to show: a routing, a budget and a key set by the owner.
    expect((await as(owner, 'PUT', `/v1/orgs/${org}/workspaces/${ws}/models`, { allowedModels: ['mock-model'], aliases: [{ name: 'fast', targets: [{ model: 'mock-model' }] }] })).status).toBe(200);
    expect((await as(owner, 'PUT', `/v1/orgs/${org}/budgets`, { category: 'ai_tokens', period: 'month', workspaceId: null, hardLimit: 7000 })).status).toBe(200);
    expect((await as(owner, 'POST', `/v1/orgs/${org}/workspaces/${ws}/api-keys`, { name: 'ci-key', scopes: ['ai:chat'] })).status).toBe(201);
  });
  afterAll(async () => rig?.close());

  it('a viewer sees the routing, budgets, keys and org settings with no submit control and a note naming the role needed; the API still refuses them with FORBIDDEN', async () => {
    const page = await signedIn(viewer);
    await page.goto(`${rig.origin}/console/gateway`);
    const routing = page.getByRole('form', { name: 'Model routing' });
    await routing.getByText('Changing the model routing needs the admin role or higher; your role here is viewer.').waitFor();
    expect(await routing.getByLabel(/^Allowed models/).inputValue()).toBe('mock-model');
    expect(await routing.getByLabel(/^Allowed models/).getAttribute('readonly')).not.toBeNull();
    expect(await routing.getByLabel(/^Aliases, one per line/).inputValue()).toBe('fast = mock-model');
    expect(await routing.getByRole('button').count()).toBe(0);
    await page.getByRole('region', { name: 'Provider credentials' }).getByText("Seeing or changing this workspace's own providers needs the admin role or higher; your role here is viewer.").waitFor();
    const budgets = page.getByRole('region', { name: 'Budgets' });
    await budgets.getByRole('table', { name: 'Budgets and their use' }).getByText('0 of 7,000').waitFor();
    await budgets.getByText('Setting or deleting a budget needs the admin role or higher; your role here is viewer.').waitFor();
    expect(await page.getByRole('form', { name: 'Set a budget' }).count()).toBe(0);
    expect(await budgets.getByRole('button').count()).toBe(0);
    await expectAccessible(page);

    await page.goto(`${rig.origin}/console/api-keys`);
    await page.getByRole('table', { name: 'API keys of this workspace' }).getByRole('cell', { name: 'ci-key', exact: true }).waitFor();
    await page.getByText('Creating or revoking a key needs the editor role or higher; your role here is viewer.').waitFor();
    expect(await page.getByRole('form', { name: 'Create an API key' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /^Revoke/ }).count()).toBe(0);
    await expectAccessible(page);

    await page.goto(`${rig.origin}/console/orgs`);
    const settings = page.getByRole('form', { name: 'Organisation settings' });
    await settings.getByText("Changing the organisation's settings needs the admin role or higher; your role here is viewer.").waitFor();
    expect(await settings.getByLabel('Organisation name').inputValue()).toBe('Roles Inc');
    expect(await settings.getByRole('button').count()).toBe(0);
    await page.getByText('Creating a workspace needs the admin role or higher; your role here is viewer.').waitFor();
    expect(await page.getByRole('form', { name: 'Create workspace' }).count()).toBe(0);
    await expectAccessible(page);

    // Hiding is a courtesy: the API is the authority and refuses the viewer whatever the page shows.
    const refused = await as(viewer, 'PUT', `/v1/orgs/${org}/budgets`, { category: 'ai_tokens', period: 'month', workspaceId: null, hardLimit: 1 });
    expect([refused.status, refused.body.error?.code]).toEqual([403, 'FORBIDDEN']);
    expectNoCspViolations(rig);
  });

  it('an admin sees and uses the routing and budget forms (saved, read back from the API); narrowed to viewer in the workspace, the routing turns read-only and the budget form stays', async () => {
    const page = await signedIn(admin);
    await page.goto(`${rig.origin}/console/gateway`);
    const routing = page.getByRole('form', { name: 'Model routing' });
    await routing.getByLabel(/^Allowed models/).fill('mock-model, gpt-4o-mini');
    await routing.getByRole('button', { name: 'Save routing' }).click();
    await routing.getByText('Routing saved; it applies to the next call on every node.').waitFor();
    expect((await as(owner, 'GET', `/v1/orgs/${org}/workspaces/${ws}/models`)).body).toMatchObject({ allowedModels: ['mock-model', 'gpt-4o-mini'] });

    const form = page.getByRole('form', { name: 'Set a budget' });
    await form.getByLabel('Category').selectOption('ai_cost');
    await form.getByLabel('Hard limit').fill('900');
    await form.getByRole('button', { name: 'Save budget' }).click();
    await page.getByRole('table', { name: 'Budgets and their use' }).getByText('0 of 900').waitFor();
    const budgets = (await as(owner, 'GET', `/v1/orgs/${org}/budgets`)).body.budgets;
    expect(budgets).toEqual(expect.arrayContaining([expect.objectContaining({ category: 'ai_cost', hardLimit: 900 })]));
    expect(await page.getByText(/needs the admin role or higher/).count()).toBe(0);
    await expectAccessible(page);

    // The owner narrows the admin to viewer in this workspace: the API's effective role applies.
    expect((await as(owner, 'PUT', `/v1/orgs/${org}/workspaces/${ws}/members/${admin.userId}`, { role: 'viewer' })).status).toBe(200);
    await page.reload();
    await routing.getByText('Changing the model routing needs the admin role or higher; your role here is viewer.').waitFor();
    expect(await routing.getByRole('button').count()).toBe(0);
    await page.getByRole('form', { name: 'Set a budget' }).getByRole('button', { name: 'Save budget' }).waitFor();
    await expectAccessible(page);
    expectNoCspViolations(rig);
  });
});
