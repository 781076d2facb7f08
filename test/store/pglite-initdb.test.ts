import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgliteDb } from '../../src/store/pglite.ts';
import { hasCluster, initialiseDataDir } from '../../src/store/pglite-initdb.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-initdb-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('embedded data directory initialisation', () => {
  it('creates a new cluster in another process, which the node then opens and migrates', async () => {
    const dir = tempDir();
    expect(hasCluster(dir)).toBe(false);
    const outcome = await initialiseDataDir(dir);
    expect(outcome.initialised).toBe(true);
    // initdb ran in a child: this process never loaded the cluster-creating code path.
    expect(outcome.pid).toEqual(expect.any(Number));
    expect(outcome.pid).not.toBe(process.pid);
    expect(hasCluster(dir)).toBe(true);

    const db = await createPgliteDb({ dataDir: dir });
    try {
      await db.migrate();
      const { rows } = await db.asOwner((tx) => tx.query<{ n: number }>('select 1 + 1 as n'));
      expect(rows).toEqual([{ n: 2 }]);
    } finally {
      await db.close();
    }
  });

  it('leaves a directory that already holds a cluster alone, so data survives a restart', async () => {
    const dir = tempDir();
    const first = await createPgliteDb({ dataDir: dir });
    await first.migrate();
    await first.asOwner(async (tx) => {
      await tx.query('create table kept (v text)');
      await tx.query("insert into kept values ('still here')");
    });
    await first.close();

    expect(await initialiseDataDir(dir)).toEqual({ initialised: false });
    const second = await createPgliteDb({ dataDir: dir });
    try {
      await second.migrate();
      const { rows } = await second.asOwner((tx) => tx.query<{ v: string }>('select v from kept'));
      expect(rows).toEqual([{ v: 'still here' }]);
    } finally {
      await second.close();
    }
  });

  it('gives the initdb process none of the node\'s environment (master keys, database URLs)', async () => {
    const dir = tempDir();
    const before = process.env.GATEHOUSE_MASTER_KEYS;
    process.env.GATEHOUSE_MASTER_KEYS = 'not-for-the-child';
    try {
      // The running child's environment, read from /proc (Linux, as the servers and CI are).
      const seen = new Promise<string>((resolve) => {
        const timer = setInterval(() => {
          for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
            try {
              const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
              if (cmdline.includes('--gatehouse-initdb') && cmdline.includes(dir)) {
                clearInterval(timer);
                resolve(readFileSync(`/proc/${pid}/environ`, 'utf8'));
                return;
              }
            } catch {
              // a process that ended meanwhile
            }
          }
        }, 5);
      });
      const done = initialiseDataDir(dir);
      const environ = await seen;
      await done;
      expect(environ).not.toContain('GATEHOUSE_MASTER_KEYS');
      expect(environ).not.toContain('not-for-the-child');
      expect(environ.split('\0').filter(Boolean).map((kv) => kv.slice(0, kv.indexOf('='))).every((name) => ['PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'TZ'].includes(name))).toBe(true);
    } finally {
      if (before === undefined) delete process.env.GATEHOUSE_MASTER_KEYS;
      else process.env.GATEHOUSE_MASTER_KEYS = before;
    }
  });

  it('kills an initdb that does not finish in time, says so, and leaves nothing half-made behind', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'gatehouse.lock'), '{}');
    await expect(initialiseDataDir(dir, { timeoutMs: 300 })).rejects.toThrow(/^initialising the embedded database in .* failed: the initdb process was killed by SIGKILL \(no answer within 300 ms\)/);
    // The staging directory is gone and no cluster file reached the data directory.
    expect(readdirSync(dir)).toEqual(['gatehouse.lock']);
    // The next start makes the cluster.
    expect((await initialiseDataDir(dir)).initialised).toBe(true);
    expect(hasCluster(dir)).toBe(true);
  });

  it('replaces the entries of an earlier attempt that never completed (no PG_VERSION), and a staging directory a killed start left behind', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'base'));
    writeFileSync(join(dir, 'base', 'left-over'), 'x');
    mkdirSync(join(dir, '.initdb-AbC123'));
    writeFileSync(join(dir, '.initdb-AbC123', 'PG_VERSION'), '17');
    expect((await initialiseDataDir(dir)).initialised).toBe(true);
    expect(existsSync(join(dir, 'base', 'left-over'))).toBe(false);
    expect(readdirSync(dir).filter((name) => name.startsWith('.initdb-'))).toEqual([]);
    const db = await createPgliteDb({ dataDir: dir });
    try {
      await db.migrate();
      expect((await db.asOwner((tx) => tx.query<{ n: number }>('select 2 as n'))).rows).toEqual([{ n: 2 }]);
    } finally {
      await db.close();
    }
  });

  it('refuses with the failure when the data directory cannot be written', async () => {
    // The data directory path is a regular file: no staging directory can be made in it.
    const parent = tempDir();
    const file = join(parent, 'not-a-directory');
    writeFileSync(file, 'x');
    await expect(initialiseDataDir(file)).rejects.toThrow(/ENOTDIR/);
    expect(hasCluster(file)).toBe(false);
  });
});
