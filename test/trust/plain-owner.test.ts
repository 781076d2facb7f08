/**
 * Feature trust checks on PostgreSQL whose owner role is no superuser and cannot bypass RLS. Tenant
 * tables force row-level security on their owner too, so a check that counts tenant rows through
 * the owner connection without a tenant context sees none there, and reports a configured control
 * as unconfigured. The checks read such tables per tenant (forTenants, as the built-in ones do).
 * Also DATA-3's shredding probe on PostgreSQL: its transaction is rolled back, nothing stays.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { TRUST, type TrustCheck, type TrustCheckContext } from '../../src/trust/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createOrgAndWorkspace, expectStatus } from '../support/gateway.ts';
import { createScratchDatabaseWithPlainOwner } from '../support/pg-scratch.ts';
import { postgresTarget, requireUrl } from '../support/services.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const pg = postgresTarget();

describe.skipIf(pg.skipReason !== undefined)(`feature trust checks with a non-superuser owner on PostgreSQL${pg.skipReason ? ` (${pg.skipReason})` : ''}`, () => {
  let database: Awaited<ReturnType<typeof createScratchDatabaseWithPlainOwner>> | undefined;
  let t: TestApp;
  let owner: SignedInUser;
  let org: string;
  let ws: string;

  const check = (name: string): TrustCheck => {
    const found = t.node.use(TRUST).checks().find((c) => c.name === name);
    if (!found) throw new Error(`no trust check ${name}`);
    return found;
  };
  const context = (): TrustCheckContext => {
    const n = t.node;
    return { config: n.live.current(), db: n.db, kv: n.kv, keyring: n.keyring, signingKeys: n.signingKeys, logger: n.logger, now: () => Date.now(), app: n.app };
  };

  beforeAll(async () => {
    database = await createScratchDatabaseWithPlainOwner(requireUrl(pg));
    t = await createTestApp({ env: { DATABASE_URL: database.url }, overrides: { 'rateLimit.enabled': false } });
    owner = await signUpUser(t.app, t.mail, 'plain-owner@example.com');
    ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Plain owner'));
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });

  it('runs on an owner that is no superuser and cannot bypass RLS, which sees no tenant row without a tenant context', async () => {
    const role = await t.node.db.asOwner((tx) => tx.query<{ user: string; rolsuper: boolean; rolbypassrls: boolean }>('select current_user as user, rolsuper, rolbypassrls from pg_roles where rolname = current_user'));
    expect(role.rows).toEqual([{ user: database?.role, rolsuper: false, rolbypassrls: false }]);
    const workspaces = await t.node.db.asOwner((tx) => tx.query<{ n: number }>('select count(*)::int as n from workspaces'));
    expect(workspaces.rows[0]?.n).toBe(0);
  });

  it('ABUSE-3: a workspace policy set through the API is counted (guard_policies read per tenant)', async () => {
    expectStatus(await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/guard-policy`, payload: { mode: 'flag' }, headers: owner.auth }), 200);
    const result = await check('guard-policies-model-classifier').run(context());
    expect(result.state).toBe('active');
    expect(result.evidence.join(' ')).toContain('workspaces with their own policy');
    expect(result.evidence.join(' ')).toContain('flag 1');
  });

  it('ABUSE-2: a budget set through the API is counted, not reported off (budgets read per tenant)', async () => {
    expectStatus(await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/budgets`, payload: { category: 'tool_calls', period: 'day', hardLimit: 10, workspaceId: ws }, headers: owner.auth }), 200);
    const result = await check('budgets-configured-and-counted').run(context());
    expect(result.state).toBe('active');
    expect(result.evidence.join(' ')).toContain('1 budget(s) configured');
    expect(result.evidence.join(' ')).toContain('on 1 workspace(s)');
  });

  it('EDGE-6: an endpoint whose every secret has expired is found, so the control is misconfigured (webhook tables read per tenant)', async () => {
    const endpoint = randomUUID();
    await t.node.db.withTenant(org, async (tx) => {
      await tx.query("insert into webhook_endpoints (id, tenant_id, name, provider, destination_secret_sealed, created_at, updated_at) values ($1, $2, 'expired', 'standard', 'x', now(), now())", [endpoint, org]);
      await tx.query("insert into webhook_secrets (id, tenant_id, endpoint_id, secret_sealed, expires_at, created_at) values ($1, $2, $3, 'x', now() - interval '1 day', now() - interval '40 days')", [randomUUID(), org, endpoint]);
    });
    const result = await check('webhook-secrets').run(context());
    expect(result.state).toBe('misconfigured');
    expect(result.evidence.join(' ')).toContain('1 endpoint(s) whose every secret has expired');
  });

  it('DATA-3: the shredding probe refuses its canary KEY_DESTROYED and leaves no data key behind on PostgreSQL', async () => {
    const keys = async () => (await t.node.db.withTenant(PLATFORM_TENANT_ID, (tx) => tx.query<{ n: number }>('select count(*)::int as n from data_keys'))).rows[0]?.n;
    const before = await keys();
    for (let i = 0; i < 2; i++) {
      const result = await check('crypto-shredding').run(context());
      expect(result.state).toBe('active');
      expect(result.evidence.join(' ')).toContain('its 1 key(s) destroyed, then opened: KEY_DESTROYED');
    }
    expect(await keys()).toBe(before);
  });
});
