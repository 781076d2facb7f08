/**
 * The operators' list of pending email-domain claims (AUTH-9, GET /v1/admin/domain-claims): every
 * org's claims not yet verified, oldest first, with the org's id and name, keyset-paged; operators
 * only. The rows are read outside any tenant context through review policies that let them through
 * only while the listing transaction asks for it, and never inside an org's context.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { suiteServices } from '../support/pg-scratch.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

let t: TestApp;
let services: Awaited<ReturnType<typeof suiteServices>> | undefined;
let operator: SignedInUser;
let owner: SignedInUser;
let rival: SignedInUser;
const orgs: Record<string, string> = {};

interface Claim {
  id: string;
  orgId: string;
  orgName: string;
  domain: string;
  connectionId: string;
  createdAt: string;
}

const list = (user: SignedInUser, query = '') => t.app.inject({ method: 'GET', url: `/v1/admin/domain-claims${query}`, headers: user.auth });

async function orgWithClaims(user: SignedInUser, name: string, domains: string[]): Promise<string> {
  const org = (await t.app.inject({ method: 'POST', url: '/v1/orgs', headers: user.auth, payload: { name } })).json<{ id: string }>().id;
  const connection = await t.app.inject({
    method: 'POST',
    url: `/v1/orgs/${org}/sso/connections`,
    headers: user.auth,
    payload: { kind: 'oidc', name: `${name} IdP`, defaultRole: 'viewer', issuer: `https://idp.${name.toLowerCase()}.example`, clientId: 'client', clientSecret: 'client-secret-value' },
  });
  expect(connection.statusCode).toBe(201);
  const connectionId = connection.json<{ id: string }>().id;
  for (const domain of domains) {
    expect((await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/sso/domains`, headers: user.auth, payload: { domain, connectionId } })).statusCode).toBe(201);
  }
  return org;
}

beforeAll(async () => {
  // PostgreSQL when DATABASE_URL is set (its own scratch database), else PGlite: the policies are checked on both.
  t = await createTestApp({ env: (services = await suiteServices()).env, overrides: { 'rateLimit.enabled': false } });
  operator = await signUpUser(t.app, t.mail, 'claims-operator@platform.example');
  owner = await signUpUser(t.app, t.mail, 'claims-owner@example.com');
  rival = await signUpUser(t.app, t.mail, 'claims-rival@example.com');
  await t.node.db.asOwner((tx) => tx.query('update users set is_operator = true where id = $1', [operator.userId]));
  orgs.acme = await orgWithClaims(owner, 'Acme', ['acme.example', 'acme-two.example', 'acme-three.example']);
  orgs.rival = await orgWithClaims(rival, 'Rival', ['rival.example', 'rival-two.example']);
  // A verified claim is not pending: it is not listed.
  expect((await t.app.inject({ method: 'POST', url: '/v1/admin/sso/domains/verify', headers: operator.auth, payload: { orgId: orgs.acme, domain: 'acme-three.example' } })).statusCode).toBe(200);
});
afterAll(async () => {
  await t?.close();
  await services?.drop();
});

describe('GET /v1/admin/domain-claims', () => {
  it("lists every org's pending claims, oldest first, with the org's id and name; a verified claim is not listed", async () => {
    const res = await list(operator, '?status=pending');
    expect(res.statusCode).toBe(200);
    const body = res.json<{ claims: Claim[]; nextCursor: string | null }>();
    expect(body.claims.map((c) => [c.orgName, c.orgId, c.domain])).toEqual([
      ['Acme', orgs.acme, 'acme.example'],
      ['Acme', orgs.acme, 'acme-two.example'],
      ['Rival', orgs.rival, 'rival.example'],
      ['Rival', orgs.rival, 'rival-two.example'],
    ]);
    expect(body.nextCursor).toBeNull();
    expect(Object.keys(body.claims[0] ?? {}).sort()).toEqual(['connectionId', 'createdAt', 'domain', 'id', 'orgId', 'orgName']);
    // status defaults to pending.
    expect(JSON.stringify((await list(operator)).json())).toBe(JSON.stringify(body));
  });

  it('pages with the cursor it gave: pages of 2, 2 and none left, no claim twice; a forged cursor and an unknown status are refused with 400', async () => {
    const first = (await list(operator, '?limit=3')).json<{ claims: Claim[]; nextCursor: string | null }>();
    expect(first.claims).toHaveLength(3);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = (await list(operator, `?limit=3&cursor=${encodeURIComponent(first.nextCursor ?? '')}`)).json<{ claims: Claim[]; nextCursor: string | null }>();
    expect(second.claims.map((c) => c.domain)).toEqual(['rival-two.example']);
    expect(second.nextCursor).toBeNull();
    const two = (await list(operator, '?limit=2')).json<{ claims: Claim[]; nextCursor: string | null }>();
    const rest = (await list(operator, `?limit=2&cursor=${encodeURIComponent(two.nextCursor ?? '')}`)).json<{ claims: Claim[]; nextCursor: string | null }>();
    expect([...two.claims, ...rest.claims].map((c) => c.domain)).toEqual(['acme.example', 'acme-two.example', 'rival.example', 'rival-two.example']);
    expect(rest.nextCursor).toBeNull();
    for (const query of ['?cursor=not-a-cursor', "?cursor=1_x' or 1=1", '?status=verified', '?limit=0', '?limit=101', '?extra=1']) {
      const res = await list(operator, query);
      expect([query, res.statusCode, res.json<{ error: { code: string } }>().error.code]).toEqual([query, 400, 'VALIDATION_FAILED']);
    }
  });

  it('attack: an org owner (not an operator) lists the claims of every org -> 403 FORBIDDEN; signed out -> 401 UNAUTHENTICATED', async () => {
    const refused = await list(owner);
    expect([refused.statusCode, refused.json<{ error: { code: string } }>().error.code]).toEqual([403, 'FORBIDDEN']);
    expect(refused.body).not.toContain('rival.example');
    const anonymous = await t.app.inject({ method: 'GET', url: '/v1/admin/domain-claims' });
    expect([anonymous.statusCode, anonymous.json<{ error: { code: string } }>().error.code]).toEqual([401, 'UNAUTHENTICATED']);
  });

  it("attack: inside org A's tenant context, even with the review setting on, org B's pending claims and name stay hidden; without the setting no context shows any", async () => {
    const { db } = t.node;
    const seen = await db.withTenant(orgs.acme ?? '', async (tx) => {
      await tx.query("select set_config('gatehouse.sso_claims_review', 'on', true)");
      const domains = await tx.query<{ domain: string }>('select domain from sso_domains order by domain');
      const names = await tx.query<{ name: string }>('select name from orgs');
      return { domains: domains.rows.map((r) => r.domain), names: names.rows.map((r) => r.name) };
    });
    expect(seen).toEqual({ domains: ['acme-three.example', 'acme-two.example', 'acme.example'], names: ['Acme'] });
    const noSetting = await db.transaction((tx) => tx.query('select domain from sso_domains'));
    expect(noSetting.rowCount).toBe(0);
  });
});
