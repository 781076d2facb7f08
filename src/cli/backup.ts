/**
 * `gatehouse backup [list | verify <id> | prune | drill]`, `gatehouse restore <id>` and
 * `gatehouse keys export`, with progress bars on long work. On embedded PGlite these open the
 * data directory, so they refuse while a server holds it (exit 3); scheduled backups are the job
 * `backup` (src/backup/module.ts), run by the node's scheduler, `gatehouse jobs run backup` or
 * `POST /v1/cron/backup`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { SingleBar, Presets } from 'cli-progress';
import type { LoadedConfig } from '../config/load.ts';
import { createBackup, drillErrorLabel, exportKeks, listBackups, pruneBackups, recordDrill, restoreBackup, verifyBackup, targetConfig } from '../backup/index.ts';
import { kekSourceFromConfig } from '../keyring/source.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { openStorage } from './storage.ts';
import { quietLogger, type Out } from './keys.ts';
import { startNode } from './runtime.ts';

function progress(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  const bar = new SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total} bytes`, stream: process.stderr, hideCursor: true }, Presets.shades_classic);
  let started = false;
  return {
    update: (done, total) => {
      if (!started) {
        bar.start(Math.max(total, done, 1), 0);
        started = true;
      }
      if (total > bar.getTotal() || done > bar.getTotal()) bar.setTotal(Math.max(total, done));
      bar.update(done);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

const mb = (n: number): string => `${(n / 1_048_576).toFixed(1)} MiB`;

export async function runBackupNow(loaded: LoadedConfig, out: Out): Promise<void> {
  const storage = await openStorage(loaded.config);
  const bar = progress('backup');
  try {
    const r = await createBackup({ config: loaded.config, db: storage.db, onProgress: bar.update });
    bar.stop();
    out(`backup ${r.outer.id}: ${mb(r.outer.bytes)} encrypted to ${r.outer.recipients.length} recipient(s), ${Object.keys(r.manifest.tables).length} tables, at ${r.destination}`);
  } finally {
    bar.stop();
    await storage.close();
  }
}

export async function runBackupList(loaded: LoadedConfig, out: Out): Promise<void> {
  const list = await listBackups(loaded.config);
  if (list.length === 0) out('no backups');
  for (const b of list) {
    out(b.outer ? `${b.id}  ${b.outer.storage}  ${mb(b.outer.bytes)}  schema ${b.outer.migrationLevel}` : `${b.id}  INCOMPLETE (no manifest; removed by prune after a day)`);
  }
}

export async function runBackupVerify(loaded: LoadedConfig, id: string, out: Out, keysFile?: string): Promise<void> {
  const bar = progress('verify');
  try {
    const { manifest } = await verifyBackup(loaded.config, id, { onProgress: bar.update, ...(keysFile ? { keysFile } : {}) });
    bar.stop();
    out(`backup ${id}: OK (authenticated, manifest signed, ${manifest.files.length} file(s) match the manifest, ${Object.keys(manifest.tables).length} tables, schema ${manifest.migrations.at(-1) ?? 'none'})`);
  } finally {
    bar.stop();
  }
}

export async function runBackupPrune(loaded: LoadedConfig, out: Out): Promise<void> {
  const r = await pruneBackups(loaded.config);
  out(`removed ${r.removed.length} backup(s) older than ${loaded.config.backup.retentionDays} days; ${r.kept} kept`);
}

export async function runRestore(loaded: LoadedConfig, id: string, opts: { keys?: string; targetDir?: string; targetUrl?: string }, out: Out): Promise<void> {
  const bar = progress('restore');
  try {
    const target = opts.targetUrl ? { databaseUrl: opts.targetUrl } : opts.targetDir ? { dataDir: opts.targetDir } : undefined;
    const r = await restoreBackup({ config: loaded.config, id, ...(target ? { target } : {}), ...(opts.keys ? { keysFile: opts.keys } : {}), onProgress: bar.update });
    bar.stop();
    out(`restored ${id}: ${r.report.rows} rows in ${r.report.tables} tables match the manifest; ${r.report.auditLogs} audit log(s) verified; row-level security checked on ${r.report.isolationChecked.length} table(s)`);
    if (r.keyVersions) out(`installed key-encryption key version(s) ${r.keyVersions.join(', ')}`);
    out('the node can start on it: gatehouse start');
  } finally {
    bar.stop();
  }
}

export async function runKeysExport(loaded: LoadedConfig, opts: { out: string; recipient?: string[] }, out: Out): Promise<void> {
  const recipients = opts.recipient?.length ? opts.recipient : loaded.config.backup.recipients;
  const r = await exportKeks(kekSourceFromConfig(loaded.config), recipients);
  writeFileSync(opts.out, r.file, { mode: 0o600, flag: 'wx' });
  out(`exported key-encryption key version(s) ${r.versions.join(', ')} to ${opts.out}, encrypted to ${recipients.length} recipient(s); keep it apart from the data backups`);
}

export interface DrillResult {
  backupId: string;
  writesAcknowledged: number;
  writesLost: number;
  rpoMs: number;
  rtoMs: number;
}

/**
 * The drill: a node on the configured storage takes marker writes (platform audit events) while
 * a backup runs; the failure is taken to happen the moment the backup completes. The backup is
 * restored into a scratch data directory or database, verified, and a node started on it.
 * RPO: the time span of writes acknowledged before the failure but absent after the restore.
 * RTO: from the start of the restore to a node answering /readyz.
 * The outcome (RPO and RTO, or the error code of a failed drill) is recorded in the drilled
 * storage (backup_drills), where the trust report reads the last drill.
 */
export async function runDrill(loaded: LoadedConfig, opts: { scratchUrl?: string; keys?: string; writes?: number }, out: Out): Promise<DrillResult> {
  const config = loaded.config;
  if (!config.keyring.masterKeys && !opts.keys) throw new Error('the drill needs the key export (--keys) when keys come from a key file');
  const node = await startNode({ config, logger: quietLogger() });
  const startedAt = new Date();
  let backupId: string | null = null;
  try {
    const acked: { n: number; at: number }[] = [];
    let stop = false;
    let failureAt = 0;
    try {
      const load = (async () => {
        for (let n = 0; !stop && n < (opts.writes ?? 100_000); n++) {
          await node.audit.record({ tenantId: PLATFORM_TENANT_ID, action: 'backup.drill_marker', data: { n } });
          acked.push({ n, at: Date.now() });
          // Paced, so the load is a steady stream of writes that lets the backup take its snapshot.
          await delay(2);
        }
      })();
      const r = await createBackup({ config, db: node.db });
      failureAt = Date.now();
      stop = true;
      await load;
      backupId = r.outer.id;
    } finally {
      stop = true;
    }
    const result = await restoreAndMeasure(config, backupId, opts, acked, failureAt, out);
    await recordDrill(node.db, { startedAt, finishedAt: new Date(), outcome: 'succeeded', ...result });
    return result;
  } catch (err) {
    await recordDrill(node.db, { startedAt, finishedAt: new Date(), backupId, outcome: 'failed', error: drillErrorLabel(err) }).catch(() => undefined);
    throw err;
  } finally {
    await node.close();
  }
}

/** Restores the drill's backup into a scratch target, starts a node on it and measures RPO and RTO. */
async function restoreAndMeasure(config: LoadedConfig['config'], backupId: string, opts: { scratchUrl?: string; keys?: string }, acked: readonly { n: number; at: number }[], failureAt: number, out: Out): Promise<DrillResult> {
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-drill-'));
  const target = opts.scratchUrl ? { databaseUrl: opts.scratchUrl } : { dataDir: join(scratch, 'data') };
  const keyOverrides = config.keyring.masterKeys ? {} : { keysFile: opts.keys ?? '' };
  const restoreStart = Date.now();
  try {
    const restored = await restoreBackup({ config, id: backupId, target, ...keyOverrides });
    const tcfg = targetConfig(config, target);
    const serving = await startNode({ config: { ...tcfg, server: { ...tcfg.server, port: 0 } }, logger: quietLogger() });
    try {
      const ready = await serving.app.inject({ url: '/readyz' });
      const rtoMs = Date.now() - restoreStart;
      if (ready.statusCode !== 200) throw new Error(`the restored node is not ready (${ready.statusCode})`);
      // In the platform log's context: forced RLS hides every event from an owner that is no superuser.
      const present = new Set(
        (await serving.db.withTenant(PLATFORM_TENANT_ID, (tx) => tx.query<{ n: number }>("select (body::jsonb -> 'data' ->> 'n')::int as n from audit_events where action = 'backup.drill_marker'"))).rows.map((x) => x.n),
      );
      const before = acked.filter((a) => a.at <= failureAt);
      const lost = before.filter((a) => !present.has(a.n));
      const rpoMs = lost.length === 0 ? 0 : failureAt - Math.min(...lost.map((a) => a.at));
      out(`drill: backup ${backupId}; ${before.length} write(s) acknowledged before the failure, ${lost.length} absent after the restore`);
      out(`RPO ${(rpoMs / 1000).toFixed(3)} s (writes lost: ${lost.length}); RTO ${(rtoMs / 1000).toFixed(3)} s (restore, verification, node ready); ${restored.report.rows} rows verified`);
      return { backupId, writesAcknowledged: before.length, writesLost: lost.length, rpoMs, rtoMs };
    } finally {
      await serving.close();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
