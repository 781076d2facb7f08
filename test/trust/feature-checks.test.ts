/**
 * The trust report's checks that features add through TRUST_CHECKS (ABUSE-2, ABUSE-3, EDGE-6,
 * EDGE-7, OPS-1): each is run against a real node, then its control is turned off or broken and
 * the check must change state, never staying `active`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRUST, type TrustCheck, type TrustCheckContext } from '../../src/trust/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createOrgAndWorkspace, expectStatus } from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

let t: TestApp;
let owner: SignedInUser;
let org: string;
let ws: string;

function check(name: string): TrustCheck {
  const found = t.node.use(TRUST).checks().find((c) => c.name === name);
  if (!found) throw new Error(`no trust check ${name}`);
  return found;
}
function context(overrides: Partial<TrustCheckContext> = {}): TrustCheckContext {
  const n = t.node;
  return { config: n.live.current(), db: n.db, kv: n.kv, keyring: n.keyring, signingKeys: n.signingKeys, logger: n.logger, now: () => Date.now(), app: n.app, ...overrides };
}
function withConfig(patch: (c: TrustCheckContext['config']) => TrustCheckContext['config']): TrustCheckContext {
  return context({ config: patch(structuredClone(t.node.live.current())) });
}

beforeAll(async () => {
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false } });
  owner = await signUpUser(t.app, t.mail, 'trust-checks@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Trust checks'));
});

afterAll(async () => {
  await t?.close();
});

describe('budgets check (ABUSE-2)', () => {
  it('is off without a budget, active with one, failed when the counter store does not answer', async () => {
    const c = check('budgets-configured-and-counted');
    expect((await c.run(context())).state).toBe('off');
    expectStatus(await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/budgets`, payload: { category: 'tool_calls', period: 'day', hardLimit: 10, workspaceId: ws }, headers: owner.auth }), 200);
    const active = await c.run(context());
    expect(active.state).toBe('active');
    expect(active.evidence.join(' ')).toContain('on 1 workspace(s)');
    const broken = new Proxy(t.node.kv, { get: (target, p) => (p === 'readBudget' ? () => Promise.reject(new Error('down')) : Reflect.get(target, p)) });
    expect((await c.run(context({ kv: broken }))).state).toBe('failed');
    expect((await c.run(withConfig((cfg) => ({ ...cfg, budgets: { ...cfg.budgets, onStoreError: 'open' } })))).state).toBe('misconfigured');
  });
});

describe('guard check (ABUSE-3)', () => {
  it('counts policies per workspace and is failed when a configured external classifier does not answer', async () => {
    const c = check('guard-policies-model-classifier');
    expectStatus(await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/guard-policy`, payload: { mode: 'flag' }, headers: owner.auth }), 200);
    const active = await c.run(context());
    expect(active.state).toBe('active');
    expect(active.evidence.join(' ')).toContain('flag 1');
    const unreachable = withConfig((cfg) => ({ ...cfg, guard: { ...cfg.guard, external: { ...cfg.guard.external, url: 'http://127.0.0.1:9/classify' } } }));
    expect((await c.run(unreachable)).state).toBe('failed');
  });
});

describe('webhooks check (EDGE-6)', () => {
  it('is misconfigured when an endpoint has only expired secrets', async () => {
    const c = check('webhook-secrets');
    expect((await c.run(context())).state).toBe('active');
    const endpoint = randomUUID();
    await t.node.db.asOwner(async (tx) => {
      await tx.query("insert into webhook_endpoints (id, tenant_id, name, provider, destination_secret_sealed, created_at, updated_at) values ($1, $2, 'expired', 'standard', 'x', now(), now())", [endpoint, org]);
      await tx.query("insert into webhook_secrets (id, tenant_id, endpoint_id, secret_sealed, expires_at, created_at) values ($1, $2, $3, 'x', now() - interval '1 day', now() - interval '40 days')", [randomUUID(), org, endpoint]);
    });
    const broken = await c.run(context());
    expect(broken.state).toBe('misconfigured');
    expect(broken.evidence.join(' ')).toContain('1 endpoint(s) whose every secret has expired');
  });
});

describe('jobs check (EDGE-7)', () => {
  it('is failed when a job\'s last run failed or a stale leader left a run running, off when jobs are disabled', async () => {
    const c = check('job-runs');
    // Test nodes run no timers (jobs.enabled=false): the check sees the configuration of a node that does.
    const on = (): TrustCheckContext => withConfig((cfg) => ({ ...cfg, jobs: { ...cfg.jobs, enabled: true } }));
    expect((await c.run(on())).state).toBe('active');
    expect((await c.run(withConfig((cfg) => ({ ...cfg, jobs: { ...cfg.jobs, enabled: false } })))).state).toBe('off');
    await t.node.db.query("insert into job_runs (id, job, trigger, node, started_at, finished_at, outcome) values ($1, 'test.failing', 'cli', 'n1', now(), now(), 'failed')", [randomUUID()]);
    expect((await c.run(on())).state).toBe('failed');
    await t.node.db.query("insert into job_runs (id, job, trigger, node, started_at, finished_at, outcome) values ($1, 'test.failing', 'cli', 'n1', now() + interval '1 second', now(), 'succeeded')", [randomUUID()]);
    expect((await c.run(on())).state).toBe('active');
    await t.node.db.query("insert into job_runs (id, job, trigger, node, started_at, outcome) values ($1, 'test.stale', 'cli', 'dead-node', now() - interval '1 day', 'running')", [randomUUID()]);
    const stale = await c.run(on());
    expect(stale.state).toBe('failed');
    expect(stale.evidence.join(' ')).toContain('stale leader: test.stale on dead-node');
  });
});

describe('backup checks (OPS-1)', () => {
  it('backup age is off without a destination and failed without a complete backup; the drill is not verified', async () => {
    const c = check('backup-age');
    expect((await c.run(withConfig((cfg) => ({ ...cfg, backup: { ...cfg.backup, dir: undefined, s3: { ...cfg.backup.s3, bucket: undefined } } })))).state).toBe('off');
    const dir = await mkdtemp(join(tmpdir(), 'gh-trust-backup-'));
    const empty = withConfig((cfg) => ({ ...cfg, backup: { ...cfg.backup, dir, s3: { ...cfg.backup.s3, bucket: undefined } } }));
    expect((await c.run(empty)).state).toBe('failed');
    expect((await check('restore-drill').run(context())).state).toBe('not verified');
  });
});
