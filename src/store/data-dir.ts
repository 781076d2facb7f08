/**
 * The embedded data directory: created private (0700), and held by one process at a time,
 * because PGlite allows a single process per directory. The lock file names the holder so CLI
 * commands can refuse with a clear message, or talk to the running server instead.
 */
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';

export interface LockHolder {
  pid: number;
  url?: string;
  startedAt: string;
}

/** Left in a data directory while a restore into it runs (src/backup): no node starts on it. */
export const RESTORE_MARKER = '.restore-incomplete';

/** Refuses a data directory a restore has not finished with. */
export function assertNoUnfinishedRestore(dir: string): void {
  if (existsSync(join(dir, RESTORE_MARKER))) {
    throw new Error(`the data directory ${dir} holds an unfinished restore (${RESTORE_MARKER}); run \`gatehouse restore\` again into it, or empty it`);
  }
}

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
  readonly holder: LockHolder;
  constructor(dir: string, holder: LockHolder) {
    super(`the data directory ${dir} is in use by a running Gatehouse (pid ${holder.pid}${holder.url ? `, ${holder.url}` : ''})`);
    this.holder = holder;
  }
}

/** Creates the directory with owner-only permissions when missing. */
export function ensureDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory`);
}

function lockPath(dir: string): string {
  return join(dir, 'gatehouse.lock');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live process holding the directory, or undefined (a stale lock is ignored). */
export function readLock(dir: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(lockPath(dir), 'utf8')) as LockHolder;
    if (typeof holder.pid === 'number' && holder.pid !== process.pid && isAlive(holder.pid)) return holder;
    return undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the directory for this process; throws DataDirLockedError when another live process
 * holds it. Returns an update function (to record the URL once listening) and a release function.
 */
export function lockDataDir(dir: string): { update: (url: string) => void; release: () => void } {
  const path = lockPath(dir);
  const holder: LockHolder = { pid: process.pid, startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, JSON.stringify(holder));
      closeSync(fd);
      return {
        update: (url: string) => {
          holder.url = url;
          const fd2 = openSync(path, 'w', 0o600);
          writeSync(fd2, JSON.stringify(holder));
          closeSync(fd2);
        },
        release: () => {
          const current = readLockRaw(path);
          if (current?.pid === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const other = readLock(dir);
      if (other) throw new DataDirLockedError(dir, other);
      // Stale lock from a process that died: remove it and try once more.
      rmSync(path, { force: true });
    }
  }
  throw new Error(`cannot lock the data directory ${dir}`);
}

function readLockRaw(path: string): LockHolder | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}
