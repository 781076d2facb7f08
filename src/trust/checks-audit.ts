/**
 * Live checks of the audit log beyond its verification (AUDIT-2, in checks-data.ts): the
 * append-only triggers asked of the database catalog (AUDIT-1), the platform log exported and
 * verified with nothing but the keys the node publishes, as an outside verifier would (AUDIT-3),
 * and the age of the oldest event against the retention (AUDIT-4).
 */
import { Readable } from 'node:stream';
import { verifyExport, type AuditLog, type TrustedKey } from '../audit/index.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import type { Queryable } from '../store/db-types.ts';
import type { TrustCheck, TrustCheckContext } from './types.ts';

const DAY_MS = 86_400_000;
/** The audit tables whose rows no one may change or remove (only retention deletes old events). */
export const APPEND_ONLY_TRIGGERS = ['audit_events_append_only', 'audit_nodes_append_only', 'audit_checkpoints_append_only'] as const;
/** Days past `audit.retentionDays` an event may remain before retention is reported not applied (the prune job runs daily). */
export const RETENTION_GRACE_DAYS = 2;

/** Most tenants a check reads row by row (each in its own tenant transaction: the tables force RLS, on the owner too). */
export const MAX_TENANTS_READ = 200;

/**
 * Runs `fn` in the context of each tenant (the platform first, then orgs at random, at most
 * MAX_TENANTS_READ) and returns how many there are in all.
 */
export async function forTenants(ctx: TrustCheckContext, fn: (tenantId: string, tx: Queryable) => Promise<void>): Promise<{ read: number; total: number }> {
  const { rows } = await ctx.db.query<{ id: string; n: number }>('select id, count(*) over ()::int as n from tenants where id <> $1 order by random() limit $2', [PLATFORM_TENANT_ID, MAX_TENANTS_READ - 1]);
  const ids = [PLATFORM_TENANT_ID, ...rows.map((r) => r.id)];
  for (const id of ids) await ctx.db.withTenant(id, (tx) => fn(id, tx));
  return { read: ids.length, total: (rows[0]?.n ?? 0) + 1 };
}

const appendOnlyCheck: TrustCheck = {
  control: 'AUDIT-1',
  name: 'audit-append-only',
  run: async (ctx) => {
    const { rows } = await ctx.db.query<{ name: string; enabled: string }>('select tgname as name, tgenabled as enabled from pg_trigger where tgname = any($1::text[]) and not tgisinternal', [[...APPEND_ONLY_TRIGGERS]]);
    const missing = APPEND_ONLY_TRIGGERS.filter((name) => !rows.some((r) => r.name === name));
    const disabled = rows.filter((r) => r.enabled === 'D').map((r) => r.name);
    const { rows: last } = await ctx.db.withTenant(PLATFORM_TENANT_ID, (tx) => tx.query<{ n: number; latest: Date | string | null }>('select count(*)::int as n, max(time) as latest from audit_events'));
    const evidence = [
      `append-only triggers on the audit tables: ${APPEND_ONLY_TRIGGERS.length - missing.length - disabled.length} of ${APPEND_ONLY_TRIGGERS.length} present and enabled (catalog)`,
      `platform log: ${last[0]?.n ?? 0} events, the latest ${last[0]?.latest ? new Date(last[0].latest).toISOString() : 'none'}`,
    ];
    if (missing.length > 0 || disabled.length > 0) return { state: 'failed', evidence, why: `audit rows can be changed: ${[...missing.map((m) => `${m} missing`), ...disabled.map((d) => `${d} disabled`)].join(', ')}` };
    if ((last[0]?.n ?? 0) === 0) return { state: 'failed', evidence, why: 'the platform log holds no event: nothing is being recorded' };
    return { state: 'active', evidence };
  },
};

/** AUDIT-3: the platform log exported and verified against the keys of /.well-known/jwks.json only. */
function offlineVerifyCheck(audit: AuditLog): TrustCheck {
  return {
    control: 'AUDIT-3',
    name: 'export-verifies-with-published-keys',
    run: async (ctx) => {
      if (!ctx.app) return { state: 'not verified', evidence: [], why: 'the server is not built in this process, so its published keys cannot be fetched' };
      const res = await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: { 'user-agent': 'gatehouse-trust-report' } });
      const keys = res.statusCode === 200 ? ((res.json() as { keys?: (TrustedKey & { use?: string })[] }).keys ?? []) : [];
      const started = ctx.now();
      const report = await verifyExport(Readable.from(audit.exportLines(PLATFORM_TENANT_ID)), { trustedKeys: keys, threads: 0 });
      const evidence = [
        `GET /.well-known/jwks.json: ${res.statusCode}, ${keys.length} keys`,
        `platform log export verified with those keys only: ${report.verdict}, ${report.events} events, signed up to ${report.coveredSize} (${ctx.now() - started} ms)`,
      ];
      if (report.verdict !== 'VERIFIED') return { state: 'failed', evidence, why: `an outside verifier could not verify the export: ${report.problem?.reason ?? report.verdict}` };
      return { state: 'active', evidence };
    },
  };
}

const retentionCheck: TrustCheck = {
  control: 'AUDIT-4',
  name: 'retention-applied',
  run: async (ctx) => {
    const days = ctx.config.audit.retentionDays;
    let oldest: Date | undefined;
    const { read, total } = await forTenants(ctx, async (_id, tx) => {
      const { rows } = await tx.query<{ oldest: Date | string | null }>('select min(time) as oldest from audit_events');
      const at = rows[0]?.oldest ? new Date(rows[0].oldest) : undefined;
      if (at && (!oldest || at < oldest)) oldest = at;
    });
    const age = oldest ? Math.floor((ctx.now() - oldest.getTime()) / DAY_MS) : 0;
    const jobs = ctx.config.jobs;
    const scheduled = jobs.enabled && !jobs.disabled.includes('audit.prune');
    const evidence = [
      `audit.retentionDays ${days}; the oldest event kept in ${read} of ${total} logs read is ${oldest ? `${age} days old` : 'none'}`,
      scheduled ? 'the audit.prune job is scheduled on this node' : 'the audit.prune job is not scheduled on this node (jobs off or audit.prune disabled): retention runs only through the cron endpoint or gatehouse audit prune',
    ];
    if (oldest && age > days + RETENTION_GRACE_DAYS) return { state: 'failed', evidence, why: `events older than audit.retentionDays (${days}) are still kept: retention is not being applied` };
    return { state: 'active', evidence };
  },
};

export function auditMoreChecks(audit: AuditLog): TrustCheck[] {
  return [appendOnlyCheck, offlineVerifyCheck(audit), retentionCheck];
}
