/**
 * Scheduled backups through the job scheduler and the restore drill's record (OPS-1, EDGE-7), on
 * the embedded node: the job `backup` exists once a destination is configured (schedule from
 * backup.schedule), runs from `POST /v1/cron/backup` with the cron secret and from `gatehouse jobs
 * run backup`, and prunes past backup.retentionDays; without a destination it does not exist. The
 * drill records its RPO and RTO in the drilled storage, and the trust report's OPS-1 entry turns
 * from "not verified" to active with the drill's figures and age.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup, exportKeks, listBackups } from '../../src/backup/index.ts';
import { runDrill } from '../../src/cli/backup.ts';
import { runJobsRun } from '../../src/cli/jobs.ts';
import { startNode } from '../../src/cli/runtime.ts';
import type { Config } from '../../src/config/schema.ts';
import { JOBS } from '../../src/jobs/index.ts';
import { kekSourceFromConfig } from '../../src/keyring/source.ts';
import { TRUST } from '../../src/trust/index.ts';
import { createTestApp } from '../support/app.ts';
import { ageKey, backupConfig, tempDir, type AgeKey } from './fixture.ts';

const CRON = 'cron-secret-backup-0123456789';
let key: AgeKey;
let base: string;
let cfg: Config;

beforeAll(async () => {
  base = tempDir('scheduled');
  key = await ageKey(base);
  cfg = backupConfig({ dataDir: join(base, 'data'), backupDir: join(base, 'backups'), key, overrides: { 'server.port': 0, 'cron.secret': CRON, 'backup.schedule': '7 2 * * *', 'backup.retentionDays': 30, 'rateLimit.enabled': false } });
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

const quiet = () => pino({ level: 'silent' });

async function restoreDrillCheck(): Promise<{ state: string; evidence: string[] } | undefined> {
  const node = await startNode({ config: cfg, logger: quiet() });
  try {
    const { report } = await node.use(TRUST).generate();
    return report.controls.find((c) => c.control === 'OPS-1')?.checks.find((c) => c.name === 'restore-drill');
  } finally {
    await node.close();
  }
}

describe('scheduled backups', () => {
  it('the job backup runs from POST /v1/cron/backup with the cron secret (not without), on backup.schedule, and prunes past backup.retentionDays', async () => {
    const node = await startNode({ config: cfg, logger: quiet() });
    try {
      const job = (await node.use(JOBS).list()).find((j) => j.name === 'backup');
      expect(job).toMatchObject({ name: 'backup', schedule: '7 2 * * *' });
      const old = await createBackup({ config: cfg, db: node.db, now: () => new Date(Date.now() - 40 * 86_400_000) });

      const refused = await node.app.inject({ method: 'POST', url: '/v1/cron/backup', headers: { authorization: 'Bearer wrong-secret-0123456789' } });
      expect([refused.statusCode, refused.json<{ error: { code: string } }>().error.code]).toEqual([401, 'UNAUTHENTICATED']);
      expect((await listBackups(cfg)).map((b) => b.id)).toEqual([old.outer.id]);

      const res = await node.app.inject({ method: 'POST', url: '/v1/cron/backup', headers: { authorization: `Bearer ${CRON}` } });
      expect(res.statusCode).toBe(200);
      const summary = res.json<{ outcome: string; summary: { id: string; bytes: number; pruned: number } }>();
      expect(summary).toMatchObject({ outcome: 'succeeded', summary: { pruned: 1 } });
      expect((await listBackups(cfg)).map((b) => b.id)).toEqual([summary.summary.id]);
      const history = await node.use(JOBS).history({ job: 'backup', limit: 5 });
      expect(history[0]).toMatchObject({ job: 'backup', trigger: 'endpoint', outcome: 'succeeded' });
    } finally {
      await node.close();
    }
  }, 120_000);

  it('gatehouse jobs run backup takes a backup on the stopped node\'s data directory', async () => {
    const before = (await listBackups(cfg)).length;
    const lines: string[] = [];
    const code = await runJobsRun({ config: cfg, sources: {} } as never, quiet(), 'backup', (l) => lines.push(l));
    expect(code).toBe(0);
    expect(lines.join('\n')).toMatch(/^backup: succeeded in \d+ ms .*"id":"gh-/);
    expect((await listBackups(cfg)).length).toBe(before + 1);
  }, 120_000);

  it('without a destination there is no backup job: the cron endpoint answers 404 JOB_NOT_FOUND', async () => {
    const t = await createTestApp({ overrides: { 'cron.secret': CRON, 'rateLimit.enabled': false } });
    try {
      expect((await t.node.use(JOBS).list()).map((j) => j.name)).not.toContain('backup');
      const res = await t.app.inject({ method: 'POST', url: '/v1/cron/backup', headers: { authorization: `Bearer ${CRON}` } });
      expect([res.statusCode, res.json<{ error: { code: string } }>().error.code]).toEqual([404, 'JOB_NOT_FOUND']);
    } finally {
      await t.close();
    }
  });
});

describe('the restore drill in the trust report', () => {
  it('OPS-1 restore-drill is not verified before any drill, and active with the recorded RPO, RTO and age after one', async () => {
    expect(await restoreDrillCheck()).toMatchObject({ state: 'not verified', evidence: ['no restore drill recorded'] });
    const exported = await exportKeks(kekSourceFromConfig(cfg), [key.recipient]);
    const keys = join(base, 'keks.age');
    writeFileSync(keys, exported.file, { mode: 0o600 });
    const r = await runDrill({ config: cfg, sources: {} } as never, { keys, writes: 100_000 }, () => undefined);
    const after = await restoreDrillCheck();
    expect(after?.state).toBe('active');
    expect(after?.evidence.join('\n')).toContain(`succeeded, backup ${r.backupId}, RPO ${(r.rpoMs / 1000).toFixed(3)} s (${r.writesLost} write(s) lost), RTO ${(r.rtoMs / 1000).toFixed(3)} s`);
    expect(after?.evidence.join('\n')).toMatch(/last drill \S+ \(0\.\d h ago\)/);
  }, 240_000);
});
