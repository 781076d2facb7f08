/**
 * The operator picks a pending domain claim in Chromium instead of typing the org's id: the
 * operator page lists every org's pending claims (GET /v1/admin/domain-claims) with the org's
 * name and id; Choose fills the verification form, Verify verifies it (read back from the API) and
 * the claim leaves the list. No CSP or Trusted Types violation, no serious or critical axe-core
 * finding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSkipReason } from '../support/browser.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';
import { enrolTotp, expectAccessible, expectNoCspViolations, signInWithTotpThroughConsole, startConsoleRig, type ConsoleRig } from './harness.ts';

const skipReason = chromiumSkipReason;

(skipReason ? describe.skip : describe)(`operator domain claims in Chromium${skipReason ? `: skipped, ${skipReason}` : ''}`, () => {
  let rig: ConsoleRig;
  let owner: SignedInUser;
  let operator: SignedInUser;
  let org = '';

  beforeAll(async () => {
    rig = await startConsoleRig();
    owner = await signUpUser(rig.t.app, rig.t.mail, 'claims-owner@example.com');
    operator = await signUpUser(rig.t.app, rig.t.mail, 'claims-operator@example.com');
    await rig.t.node.db.query('update users set is_operator = true where id = $1', [operator.userId]);
    org = (await rig.t.app.inject({ method: 'POST', url: '/v1/orgs', headers: owner.auth, payload: { name: 'Claimant Co' } })).json<{ id: string }>().id;
    const connection = await rig.t.app.inject({
      method: 'POST',
      url: `/v1/orgs/${org}/sso/connections`,
      headers: owner.auth,
      payload: { kind: 'oidc', name: 'Claimant IdP', defaultRole: 'viewer', issuer: 'https://idp.claimant.example', clientId: 'client', clientSecret: 'client-secret-value' },
    });
    const connectionId = connection.json<{ id: string }>().id;
    for (const domain of ['claimant.example', 'claimant-two.example']) {
      expect((await rig.t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/sso/domains`, headers: owner.auth, payload: { domain, connectionId } })).statusCode).toBe(201);
    }
  });
  afterAll(async () => rig?.close());

  it("the operator chooses a pending claim from the list (org name and id shown), verifies it without typing, and it leaves the list", async () => {
    const { totp } = await enrolTotp(rig.t, operator);
    const page = await (await rig.newContext()).newPage();
    await signInWithTotpThroughConsole(page, rig.origin, operator.email, totp);
    await page.goto(`${rig.origin}/console/operator`);
    const table = page.getByRole('table', { name: 'Pending domain claims, oldest first' });
    const row = table.getByRole('row').filter({ hasText: 'claimant.example' }).filter({ hasNotText: 'claimant-two' });
    await row.getByRole('cell', { name: 'Claimant Co', exact: true }).waitFor();
    await row.getByRole('cell', { name: org, exact: true }).waitFor();
    await table.getByRole('row').filter({ hasText: 'claimant-two.example' }).waitFor();
    await expectAccessible(page);

    await row.getByRole('button', { name: 'Choose claimant.example of Claimant Co' }).click();
    const form = page.getByRole('form', { name: 'Verify domain' });
    expect(await form.getByLabel('Organisation id').inputValue()).toBe(org);
    expect(await form.getByLabel('Domain to verify').inputValue()).toBe('claimant.example');
    await form.getByRole('button', { name: 'Verify domain' }).click();
    await form.getByText('claimant.example verified.').waitFor();
    await row.waitFor({ state: 'detached' });
    await table.getByRole('row').filter({ hasText: 'claimant-two.example' }).waitFor();
    const domains = (await rig.t.app.inject({ url: `/v1/orgs/${org}/sso/domains`, headers: owner.auth })).json<{ domains: Array<{ domain: string; verified: boolean }> }>().domains;
    expect(Object.fromEntries(domains.map((d) => [d.domain, d.verified]))).toEqual({ 'claimant.example': true, 'claimant-two.example': false });
    await expectAccessible(page);
    expectNoCspViolations(rig);
  });
});
