/**
 * A new embedded data directory is created (initdb) in a short-lived child process, not in the
 * node's own process.
 *
 * PGlite runs initdb inside the process that opens the directory. WebAssembly memory only grows:
 * the pages initdb touches, and the code V8 compiles for it, stay resident for the life of the
 * process. Measured on this tree, a node started on a new directory held about 400 MB more than
 * the same node started on that directory once it existed (630 MB against 229 MB for PGlite alone
 * after `select 1`). The child does initdb and exits, giving all of it back; the node then opens a
 * directory that already exists. A directory that already holds a cluster (PG_VERSION) is left
 * alone, so this costs nothing after the first start.
 *
 * The cluster is made in a staging directory inside the data directory and moved into place
 * entry by entry, PG_VERSION last: an initdb that fails or is killed leaves no cluster that looks
 * complete, and the next start makes it again.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';

/**
 * PGlite's own defaults plus a smaller buffer pool. Its default (about 160 MB of shared buffers,
 * held in the process's WebAssembly memory) cost a Gatehouse node about 120 MB of resident memory
 * more than 16 MB does; the embedded database of one node is small and the operating system's page
 * cache still holds its files.
 */
export const PGLITE_START_PARAMS: readonly string[] = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB', '-c', 'wal_buffers=1MB'];

/** How long initdb may take in the child before it is killed (it takes a few seconds). */
const INITDB_TIMEOUT_MS = 120_000;
/** What the child prints on success, followed by its pid. */
const DONE_MARK = 'gatehouse-initdb-done';
/** The child's first argument: this file runs initdb only when started for it. */
const CHILD_MARK = '--gatehouse-initdb';
/** The staging directory's name inside the data directory (mkdtemp adds six characters). */
const STAGING_PREFIX = '.initdb-';
/** The only environment the child gets: nothing of the node's configuration or secrets. */
const CHILD_ENV_NAMES = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'TZ'];

export interface InitdbOutcome {
  /** False when the directory already held a cluster and nothing ran. */
  initialised: boolean;
  /** The pid of the process that ran initdb (never this process's). */
  pid?: number;
}

/** True when `dataDir` already holds a PostgreSQL cluster. */
export function hasCluster(dataDir: string): boolean {
  return existsSync(join(dataDir, 'PG_VERSION'));
}

/**
 * Creates the cluster in `dataDir` in a child process when there is none yet. Rejects with the
 * child's exit status and the end of its error output when initdb fails.
 * @example await initialiseDataDir('/var/lib/gatehouse') // then PGlite.create('/var/lib/gatehouse')
 */
export async function initialiseDataDir(dataDir: string, options: { timeoutMs?: number } = {}): Promise<InitdbOutcome> {
  if (hasCluster(dataDir)) return { initialised: false };
  // A staging directory left by a start that was killed mid-way is ours and of no use now. The
  // data directory's lock (data-dir.ts) means no other process is initialising it.
  for (const name of readdirSync(dataDir)) {
    if (name.startsWith(STAGING_PREFIX)) rmSync(join(dataDir, name), { recursive: true, force: true });
  }
  const staging = mkdtempSync(join(dataDir, STAGING_PREFIX));
  try {
    const pid = await runInitdbChild(staging, options.timeoutMs ?? INITDB_TIMEOUT_MS, dataDir);
    moveCluster(staging, dataDir);
    return { initialised: true, pid };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Moves the cluster's entries from `staging` into `dataDir`, PG_VERSION last. Entries of the same
 * name left by an earlier attempt that never completed (there is no PG_VERSION) are replaced.
 */
function moveCluster(staging: string, dataDir: string): void {
  const names = readdirSync(staging).filter((name) => name !== 'PG_VERSION');
  for (const name of [...names, 'PG_VERSION']) {
    const target = join(dataDir, name);
    rmSync(target, { recursive: true, force: true });
    renameSync(join(staging, name), target);
  }
}

/** Runs initdb on `dir` in a child process; resolves with the child's pid. */
async function runInitdbChild(dir: string, timeoutMs: number, dataDir: string): Promise<number> {
  const script = fileURLToPath(import.meta.url);
  // No execArgv: the parent's flags (a profiler, an inspector port) are not the child's business;
  // nor is its environment (master keys, database URLs).
  const env = Object.fromEntries(CHILD_ENV_NAMES.flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name]]])));
  const child = spawn(process.execPath, [script, CHILD_MARK, dir], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout = (stdout + chunk).slice(-4096);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  const status = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, error });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  const done = new RegExp(`^${DONE_MARK} (\\d+)$`, 'm').exec(stdout);
  if (status.code === 0 && done && hasCluster(dir)) return Number(done[1]);
  const how = status.error ? `could not start (${status.error.message})` : status.signal ? `was killed by ${status.signal}${status.signal === 'SIGKILL' ? ` (no answer within ${timeoutMs} ms)` : ''}` : `exited with status ${status.code}`;
  const detail = stderr.trim().split('\n').slice(-5).join('\n');
  throw new Error(`initialising the embedded database in ${dataDir} failed: the initdb process ${how}${detail ? `:\n${detail}` : ''}`);
}

/** The child: create the cluster, close it cleanly, say so. */
async function runChild(dataDir: string): Promise<void> {
  const pg = await PGlite.create(dataDir, { startParams: [...PGLITE_START_PARAMS] });
  await pg.query('select 1');
  await pg.close();
  process.stdout.write(`${DONE_MARK} ${process.pid}\n`);
}

// Started as the child (not import.meta.main, which Node 22 lacks): this file and the mark.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === CHILD_MARK) {
  const dataDir = process.argv[3];
  if (dataDir === undefined || dataDir === '') {
    process.stderr.write(`usage: pglite-initdb.ts ${CHILD_MARK} <data directory>\n`);
    process.exit(2);
  }
  runChild(dataDir).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
