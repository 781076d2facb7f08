/**
 * Private PostgreSQL and Redis instances for outage tests: each on a free loopback port of its
 * own, started, stopped and restarted by the test, by PID. The shared services on 5432 and
 * 6379 are never touched. Without the server binaries a test skips locally and fails in CI.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inCi } from './services.ts';

/** A free TCP port on 127.0.0.1 (released before it is returned; used at once). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits (bounded by attempts, not by a clock reading) until `port` accepts connections. */
async function untilListening(port: number, child: ChildProcess, what: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode} before listening`);
    if (await accepts(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on ${port}`);
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}

export interface PrivateService {
  url: string;
  port: number;
  /** Stops this instance (by its PID) and waits until it has exited. */
  stop: () => Promise<void>;
  /** Starts it again on the same port (Redis: empty, nothing saved; PostgreSQL: the same data). */
  start: () => Promise<void>;
  /** Stops it for good and removes its files. */
  close: () => Promise<void>;
}

const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));

/** Why private Redis tests cannot run here (skipped locally, a failure in CI), or undefined. */
export const privateRedisSkipReason: string | undefined = REDIS_SERVER || inCi ? undefined : 'redis-server is not installed: private Redis outage tests skipped';

/** A redis-server with no persistence: a restart loses every key, as a Redis without persistence does. */
export async function startPrivateRedis(): Promise<PrivateService> {
  if (!REDIS_SERVER) throw new Error('redis-server is required for this test but is not installed');
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], { stdio: 'ignore' });
    await untilListening(port, child, 'private redis-server');
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop: () => stopChild(child, 'SIGKILL'),
    close: () => stopChild(child, 'SIGKILL'),
  };
}

function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

const PG_BIN = postgresBinDir();

/** Why private PostgreSQL tests cannot run here (skipped locally, a failure in CI), or undefined. */
export const privatePostgresSkipReason: string | undefined = PG_BIN || inCi ? undefined : 'PostgreSQL server binaries (initdb) are not installed: private PostgreSQL outage tests skipped';

/** initdb refuses to run as root: as root the cluster belongs to the `postgres` OS user. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** A listening postmaster may still be starting up (57P03): wait until a query answers. */
async function untilQueryable(url: string): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt < 100; attempt++) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  throw new Error(`private postgres never answered a query: ${String(last)}`);
}

/**
 * A PostgreSQL cluster initialised into a temporary directory, listening on a free loopback
 * port with trust authentication. `stop` is a fast shutdown (SIGINT to the postmaster): open
 * connections are terminated, as when a server is restarted under load.
 */
export async function startPrivatePostgres(): Promise<PrivateService> {
  if (!PG_BIN) throw new Error('PostgreSQL server binaries are required for this test but are not installed');
  const bin = PG_BIN;
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'gh-private-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8'], { stdio: 'ignore', ...(user ?? {}) });
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=50'];
    child = spawn(join(bin, 'postgres'), args, { stdio: 'ignore', ...(user ?? {}) });
    await untilListening(port, child, 'private postgres');
    await untilQueryable(`postgres://postgres@127.0.0.1:${port}/postgres`);
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop: () => stopChild(child, 'SIGINT'),
    close: async () => {
      await stopChild(child, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
