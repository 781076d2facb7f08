/**
 * Live checks of the data controls: the application role and forced RLS asked of the database
 * catalog (TEN-2, TEN-3), the keyring (DATA-1, DATA-2), the access-token keys (AUTH-3) and the
 * audit logs verified up to their latest checkpoint (AUDIT-2, AUDIT-3).
 */
import { readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { AuditLog } from '../audit/index.ts';
import { verifyExport } from '../audit/index.ts';
import { keyFilePathOf } from '../keyring/source.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { APP_ROLE } from '../store/db-types.ts';
import { findRlsGaps } from '../store/migrate.ts';
import type { TrustCheck, TrustCheckContext, TrustCheckResult } from './types.ts';

/** Keys older than this are reported misconfigured: rotate them (`gatehouse keys rotate`). */
export const MAX_KEY_AGE_DAYS = 365;
const DAY_MS = 86_400_000;

const appRoleCheck: TrustCheck = {
  control: 'TEN-2',
  name: 'app-role-cannot-bypass-rls',
  run: async (ctx) => {
    const { rows } = await ctx.db.query<{ user: string; rolsuper: boolean; rolbypassrls: boolean; owned: number }>(
      'select current_user as user, r.rolsuper, r.rolbypassrls, (select count(*)::int from pg_class c where c.relowner = r.oid) as owned from pg_roles r where r.rolname = current_user',
    );
    const role = rows[0];
    if (!role) return { state: 'failed', evidence: [], why: 'the connection\'s role is not in pg_roles' };
    const evidence = [`requests run as ${role.user}: superuser ${role.rolsuper}, BYPASSRLS ${role.rolbypassrls}, owns ${role.owned} relations`];
    if (role.user !== APP_ROLE) return { state: 'failed', evidence, why: `requests do not run as ${APP_ROLE}` };
    if (role.rolsuper || role.rolbypassrls || role.owned > 0) return { state: 'failed', evidence, why: 'the application role can bypass row-level security' };
    return { state: 'active', evidence };
  },
};

const forcedRlsCheck: TrustCheck = {
  control: 'TEN-3',
  name: 'forced-rls-on-every-tenant-table',
  run: async (ctx) => {
    const gaps = await findRlsGaps(ctx.db);
    const { rows } = await ctx.db.query<{ n: number }>(
      "select count(*)::int as n from pg_class c join pg_namespace s on s.oid = c.relnamespace where s.nspname = 'public' and c.relkind in ('r', 'p') and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)",
    );
    const evidence = [`catalog scan: ${rows[0]?.n ?? 0} tenant tables, ${gaps.length} without forced row-level security`];
    if (gaps.length > 0) return { state: 'failed', evidence, why: gaps.slice(0, 5).map((g) => `${g.relation}: ${g.problem}`).join('; ') };
    return { state: 'active', evidence };
  },
};

async function keyFileFacts(ctx: TrustCheckContext): Promise<TrustCheckResult> {
  const path = keyFilePathOf(ctx.config);
  const st = await stat(path);
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  const evidence = [`key file mode ${mode}`];
  if ((st.mode & 0o077) !== 0) return { state: 'failed', evidence, why: 'the key file is readable or writable by group or others' };
  // Only versions and creation dates are read from the parsed file; the keys are not kept.
  const parsed = JSON.parse(await readFile(path, 'utf8')) as { keys?: { version?: number; createdAt?: string }[] };
  const primary = (parsed.keys ?? []).reduce<{ version?: number; createdAt?: string } | undefined>((a, k) => ((k.version ?? 0) > (a?.version ?? -1) ? k : a), undefined);
  if (!primary?.createdAt) return { state: 'not verified', evidence, why: 'the primary key-encryption key has no creation date' };
  const days = Math.floor((ctx.now() - Date.parse(primary.createdAt)) / DAY_MS);
  evidence.push(`primary key-encryption key version ${primary.version}, ${days} days old`);
  if (days > MAX_KEY_AGE_DAYS) return { state: 'misconfigured', evidence, why: `the primary key-encryption key is older than ${MAX_KEY_AGE_DAYS} days: gatehouse keys rotate kek` };
  return { state: 'active', evidence };
}

const kekCheck: TrustCheck = {
  control: 'DATA-1',
  name: 'kek-source-permissions-and-age',
  run: async (ctx) => {
    if (ctx.config.keyring.masterKeys) {
      return { state: 'not verified', evidence: [`key-encryption keys from the environment, primary version ${ctx.keyring.primaryKekVersion()}`], why: 'keys given in the environment carry no creation date, so their age cannot be checked' };
    }
    return keyFileFacts(ctx);
  },
};

const signingKeyCheck: TrustCheck = {
  control: 'DATA-1',
  name: 'signing-key-age',
  run: async (ctx) => {
    const { rows } = await ctx.db.query<{ purpose: string; state: string; activated_at: Date | string | null }>(
      "select purpose, state, activated_at from signing_keys where state in ('current', 'next') order by purpose, state",
    );
    const evidence: string[] = [];
    const problems: string[] = [];
    for (const purpose of ['access-token', 'audit-checkpoint']) {
      const current = rows.find((r) => r.purpose === purpose && r.state === 'current');
      const next = rows.find((r) => r.purpose === purpose && r.state === 'next');
      if (!current || !next) {
        problems.push(`${purpose}: ${current ? 'no next key published' : 'no current key'}`);
        continue;
      }
      const days = current.activated_at === null ? NaN : Math.floor((ctx.now() - new Date(current.activated_at).getTime()) / DAY_MS);
      evidence.push(`${purpose}: current key signing for ${days} days, next key published`);
      if (days > MAX_KEY_AGE_DAYS) problems.push(`${purpose} key older than ${MAX_KEY_AGE_DAYS} days: gatehouse keys rotate signing`);
    }
    if (problems.some((p) => p.includes('no '))) return { state: 'failed', evidence, why: problems.join('; ') };
    if (problems.length > 0) return { state: 'misconfigured', evidence, why: problems.join('; ') };
    return { state: 'active', evidence };
  },
};

const envelopeCheck: TrustCheck = {
  control: 'DATA-2',
  name: 'data-keys-unwrap',
  run: async (ctx) => {
    const n = await ctx.keyring.verifyKeks();
    return { state: 'active', evidence: [`unwrapped ${n} platform data key(s) with the configured key-encryption keys (nothing cached)`] };
  },
};

const accessTokenKeysCheck: TrustCheck = {
  control: 'AUTH-3',
  name: 'access-token-keys-published',
  run: async (ctx) => {
    const signer = await ctx.signingKeys.current('access-token');
    const { keys } = await ctx.signingKeys.jwks('access-token');
    const published = keys.some((k) => k.kid === signer.kid);
    const evidence = [`the current access-token key is ${published ? '' : 'not '}in the JWKS (${keys.length} keys published)`];
    if (!published) return { state: 'failed', evidence, why: 'tokens are signed with a key verifiers cannot find' };
    return { state: 'active', evidence };
  },
};

const reportKeyCheck: TrustCheck = {
  control: 'OPS-4',
  name: 'report-signing-key-published',
  run: async (ctx) => {
    const signer = await ctx.signingKeys.current('audit-checkpoint');
    const { keys } = await ctx.signingKeys.jwks();
    const published = keys.some((k) => k.kid === signer.kid);
    const evidence = [`this report is signed with the audit checkpoint key ${signer.kid}, ${published ? '' : 'not '}published at /.well-known/jwks.json`];
    if (!published) return { state: 'failed', evidence, why: 'a copy of this report cannot be verified' };
    return { state: 'active', evidence };
  },
};

/** How many org logs are verified besides the platform log, picked at random each run. */
export const SAMPLED_ORG_LOGS = 3;

/** AUDIT-2/3: the platform log and a sample of org logs, exported and verified up to their latest checkpoint. */
export function auditChecks(audit: AuditLog): TrustCheck[] {
  return [
    {
      control: 'AUDIT-2',
      name: 'audit-logs-verify',
      run: async (ctx) => {
        const { rows } = await ctx.db.query<{ id: string }>('select id from tenants where id <> $1 order by random() limit $2', [PLATFORM_TENANT_ID, SAMPLED_ORG_LOGS]);
        const logs = [PLATFORM_TENANT_ID, ...rows.map((r) => r.id)];
        const kids = (await ctx.signingKeys.list()).filter((k) => k.purpose === 'audit-checkpoint').map((k) => k.kid);
        const trustedKeys = await ctx.signingKeys.publicKeys(kids);
        const evidence: string[] = [];
        for (const log of logs) {
          const started = ctx.now();
          const report = await verifyExport(Readable.from(audit.exportLines(log)), { trustedKeys, threads: 0 });
          const name = log === PLATFORM_TENANT_ID ? 'platform log' : `org log ${log}`;
          evidence.push(`${name}: ${report.verdict}, ${report.events} events, ${report.checkpoints} checkpoints, signed up to ${report.coveredSize}${report.uncovered ? `, ${report.uncovered.to - report.uncovered.from + 1} newer events not yet checkpointed` : ''} (${ctx.now() - started} ms)`);
          if (report.verdict !== 'VERIFIED') return { state: 'failed', evidence, why: `${name}: ${report.problem?.reason ?? report.verdict}` };
        }
        return { state: 'active', evidence: [`${logs.length} logs verified against the published audit keys (the platform log and ${logs.length - 1} sampled org logs)`, ...evidence] };
      },
    },
  ];
}

export const DATA_CHECKS: readonly TrustCheck[] = [reportKeyCheck, appRoleCheck, forcedRlsCheck, kekCheck, signingKeyCheck, envelopeCheck, accessTokenKeysCheck];
