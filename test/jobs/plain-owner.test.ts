/**
 * Jobs and commands that maintain tenant tables, on PostgreSQL whose owner role is no superuser and
 * cannot bypass RLS. Tenant tables force row-level security on their owner too, so an owner
 * statement without a tenant context sees no row: the audit checkpoint and retention jobs found no
 * log, the webhook and revocation prunes deleted nothing, and each still reported success. Each
 * test leaves work for one of them and checks it was done (rows gone, checkpoint signed), or that
 * what cannot be done fails, naming why.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpPostgres } from '../../src/backup/postgres.ts';
import { checkFigures } from '../../src/backup/verify-restored.ts';
import type { BackupManifest } from '../../src/backup/manifest.ts';
import { refuseNewKeyFileForExistingData, wrappedDataKeys } from '../../src/cli/key-check.ts';
import { runAuditPrune } from '../../src/cli/audit-log.ts';
import { JOBS } from '../../src/jobs/index.ts';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createOrgAndWorkspace } from '../support/gateway.ts';
import { createScratchDatabaseWithPlainOwner } from '../support/pg-scratch.ts';
import { postgresTarget, requireUrl } from '../support/services.ts';
import { signUpUser } from '../support/users.ts';

const pg = postgresTarget();
const DAY_MS = 86_400_000;

describe.skipIf(pg.skipReason !== undefined)(`maintenance jobs and commands with a non-superuser owner on PostgreSQL${pg.skipReason ? ` (${pg.skipReason})` : ''}`, () => {
  let database: Awaited<ReturnType<typeof createScratchDatabaseWithPlainOwner>> | undefined;
  let t: TestApp;
  let org: string;
  let ws: string;
  // The node's clock runs this far from the real one (events "recorded 400 days ago").
  let offset = 0;

  const runJob = async (name: string): Promise<Record<string, unknown>> => {
    const r = await t.node.use(JOBS).run(name, 'cli');
    if (r.status !== 'succeeded') throw new Error(`job ${name}: ${JSON.stringify(r)}`);
    return r.summary ?? {};
  };
  const head = async (log: string) =>
    (await t.node.db.withTenant(log, (tx) => tx.query<{ size: number; cp: number | null; pruned: number }>('select size::int as size, last_checkpoint_size::int as cp, pruned_upto::int as pruned from audit_heads'))).rows[0];
  const events = async (log: string): Promise<number> => (await t.node.db.withTenant(log, (tx) => tx.query<{ n: number }>('select count(*)::int as n from audit_events'))).rows[0]?.n ?? 0;
  /** A new org log with `old` events recorded 400 days ago and `recent` ones now (a checkpoint every 4). */
  const logWithOldEvents = async (old: number, recent: number): Promise<string> => {
    const log = randomUUID();
    await t.node.db.query("insert into tenants (id, kind) values ($1, 'org')", [log]);
    offset = -400 * DAY_MS;
    try {
      for (let i = 0; i < old; i += 1) await t.node.audit.record({ tenantId: log, action: 'org.updated', data: { i } });
    } finally {
      offset = 0;
    }
    for (let i = 0; i < recent; i += 1) await t.node.audit.record({ tenantId: log, action: 'org.updated', data: { i: old + i } });
    return log;
  };

  beforeAll(async () => {
    database = await createScratchDatabaseWithPlainOwner(requireUrl(pg));
    t = await createTestApp({ env: { DATABASE_URL: database.url }, now: () => Date.now() + offset, overrides: { 'rateLimit.enabled': false, 'audit.checkpointEvery': 4, 'audit.checkpointSeconds': 3600 } });
    const owner = await signUpUser(t.app, t.mail, 'plain-owner-jobs@example.com');
    ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Plain owner jobs'));
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });

  it('runs on an owner that is no superuser and cannot bypass RLS, which sees no audit log without a tenant context', async () => {
    const role = await t.node.db.asOwner((tx) => tx.query<{ rolsuper: boolean; rolbypassrls: boolean }>('select rolsuper, rolbypassrls from pg_roles where rolname = current_user'));
    expect(role.rows).toEqual([{ rolsuper: false, rolbypassrls: false }]);
    expect((await t.node.db.asOwner((tx) => tx.query<{ n: number }>('select count(*)::int as n from audit_heads'))).rows[0]?.n).toBe(0);
  });

  it('AUDIT-2: the checkpoint job signs a checkpoint of an org log whose latest events no checkpoint covers', async () => {
    const log = randomUUID();
    await t.node.db.query("insert into tenants (id, kind) values ($1, 'org')", [log]);
    // The first event is checkpointed at once, the next two are not (every 4 events or an hour).
    for (let i = 0; i < 3; i += 1) await t.node.audit.record({ tenantId: log, action: 'org.updated', data: { i } });
    expect(await head(log)).toMatchObject({ size: 3, cp: 1 });
    const summary = await runJob('audit.checkpoint');
    expect(summary.logs).toBeGreaterThanOrEqual(1);
    expect(await head(log)).toMatchObject({ size: 3, cp: 3 });
  });

  it('AUDIT-4: the retention job removes an org log\'s events past audit.retentionDays', async () => {
    const log = await logWithOldEvents(10, 4);
    expect(await events(log)).toBe(14);
    const summary = await runJob('audit.prune');
    expect(summary.removed).toBeGreaterThanOrEqual(9);
    // Checkpoints at 1, 5 and 9 (every 4), so the old events go up to the one at 9.
    expect(await head(log)).toMatchObject({ pruned: 9 });
    expect(await events(log)).toBe(5);
  });

  it('AUDIT-4: `gatehouse audit prune` removes an org log\'s events past audit.retentionDays', async () => {
    const log = await logWithOldEvents(10, 4);
    const out: string[] = [];
    await runAuditPrune({ config: t.config, sources: {}, configFile: undefined }, t.node.logger, (line) => out.push(line));
    expect(out).toContain(`${log}: removed 9 events; events before 9 are pruned`);
    expect(await events(log)).toBe(5);
  });

  it('GW-6: the revocation prune deletes expired client token revocations and keeps the others', async () => {
    const expired = `exp${randomUUID().replaceAll('-', '')}`;
    const kept = `kep${randomUUID().replaceAll('-', '')}`;
    await t.node.db.withTenant(org, async (tx) => {
      const insert = "insert into client_token_revocations (tenant_id, workspace_id, token_id, keep_until, revoked_by) values ($1, $2, $3, now() + $4::interval, 'test')";
      await tx.query(insert, [org, ws, expired, '-1 hour']);
      await tx.query(insert, [org, ws, kept, '1 hour']);
    });
    const summary = await runJob('tokens.prune-revocations');
    expect(summary.pruned).toBe(1);
    const left = await t.node.db.withTenant(org, (tx) => tx.query<{ token_id: string }>('select token_id from client_token_revocations order by token_id'));
    expect(left.rows.map((r) => r.token_id)).toEqual([kept]);
  });

  it('EDGE-6: the webhooks prune removes events past webhooks.retentionDays and expired replay records, in an org and on the platform', async () => {
    const fixture = async (tenant: string): Promise<void> => {
      const endpoint = randomUUID();
      await t.node.db.withTenant(tenant, async (tx) => {
        await tx.query("insert into webhook_endpoints (id, tenant_id, name, provider, destination_secret_sealed, created_at, updated_at) values ($1, $2, $3, 'standard', 'x', now(), now())", [endpoint, tenant, `prune-${endpoint.slice(0, 8)}`]);
        const event = "insert into webhook_events (id, tenant_id, endpoint_id, provider, event_id, payload_sealed, received_at) values ($1, $2, $3, 'standard', $4, 'x', now() - $5::interval)";
        await tx.query(event, [randomUUID(), tenant, endpoint, 'old', '400 days']);
        await tx.query(event, [randomUUID(), tenant, endpoint, 'new', '1 day']);
        const replay = 'insert into webhook_replays (tenant_id, endpoint_id, event_id, expires_at) values ($1, $2, $3, now() + $4::interval)';
        await tx.query(replay, [tenant, endpoint, 'old', '-1 day']);
        await tx.query(replay, [tenant, endpoint, 'new', '1 day']);
      });
    };
    await fixture(org);
    await fixture(PLATFORM_TENANT_ID);
    const summary = await runJob('webhooks.prune');
    expect(summary).toMatchObject({ events: 2, replays: 2 });
    for (const tenant of [org, PLATFORM_TENANT_ID]) {
      const left = await t.node.db.withTenant(tenant, async (tx) => ({
        events: (await tx.query<{ event_id: string }>('select event_id from webhook_events')).rows.map((r) => r.event_id),
        replays: (await tx.query<{ event_id: string }>('select event_id from webhook_replays')).rows.map((r) => r.event_id),
      }));
      expect(left).toEqual({ events: ['new'], replays: ['new'] });
    }
  });

  it('DATA-1: the key-file check counts the data keys the database holds, so a node without the key file refuses to create a new one (KEYRING_MISMATCH)', async () => {
    expect(await wrappedDataKeys(t.node.db)).toBeGreaterThan(0);
    const withoutKeys = { ...t.config, keyring: { ...t.config.keyring, masterKeys: undefined, keyFile: `/nonexistent-gatehouse-test-dir/${randomUUID()}.json` } };
    await expect(refuseNewKeyFileForExistingData(withoutKeys, t.node.db)).rejects.toMatchObject({ code: 'KEYRING_MISMATCH' });
  });

  it('BACKUP: verifying a restore on an owner that cannot read every row fails, naming the role (BACKUP_VERIFY_FAILED), never a count of what RLS let through', async () => {
    await expect(checkFigures(t.node.db, { migrations: [], tables: {} } as unknown as BackupManifest)).rejects.toMatchObject({
      code: 'BACKUP_VERIFY_FAILED',
      message: expect.stringContaining(`the owner role ${database?.role} of the restored database is neither superuser nor BYPASSRLS`),
    });
  });

  it('BACKUP: a backup as an owner that cannot read every row fails before pg_dump, naming the role (BACKUP_TOOL_FAILED), and writes nothing', async () => {
    const written: number[] = [];
    await expect(
      dumpPostgres(
        database?.url ?? '',
        async () => {
          written.push(0);
        },
        async (part) => {
          written.push(part.length);
        },
      ),
    ).rejects.toMatchObject({ code: 'BACKUP_TOOL_FAILED', message: expect.stringContaining(`as the owner role ${database?.role}, which is neither superuser nor BYPASSRLS`) });
    expect(written).toEqual([]);
  });
});
