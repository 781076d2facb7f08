/**
 * PostgreSQL's side of backups: `pg_dump --format=custom` (schema, data, grants, row-level
 * security policies and FORCE flags) in the snapshot the manifest's figures were read in, and
 * `pg_restore --single-transaction` into an empty database. The password goes to the tools in
 * PGPASSWORD, never on their command line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import type pg from 'pg';
import { APP_ROLE, type Queryable } from '../store/index.ts';
import { roleBypassesRls } from '../store/tenant-sweep.ts';
import { BackupError } from './errors.ts';
import { readFigures, type DatabaseFigures } from './snapshot-info.ts';

/** The dump travels as parts of this size, so no part is buffered whole beyond it. */
export const PART_BYTES = 8 * 1024 * 1024;
export const DUMP_PREFIX = 'postgres/dump.part-';

/** A pg client as the store's Queryable. */
/** node-postgres is loaded only when a PostgreSQL backup or restore runs: an embedded node never loads it. */
async function newClient(connectionString: string): Promise<pg.Client> {
  const { default: driver } = await import('pg');
  return new driver.Client({ connectionString });
}

export function asQueryable(client: pg.Client): Queryable {
  return {
    query: async <Row>(sql: string, params?: readonly unknown[]) => {
      const r = await client.query(sql, params ? [...params] : undefined);
      return { rows: r.rows as Row[], rowCount: r.rowCount ?? 0 };
    },
  };
}

/** The newest installed client's binary (Debian keeps one per major version), else the PATH's. */
export function pgTool(name: 'pg_dump' | 'pg_restore'): string {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(`${base}/${v}/bin/${name}`)) return `${base}/${v}/bin/${name}`;
  }
  return name;
}

/** The URL without its password, and the password for PGPASSWORD. */
export function splitPassword(url: string): { url: string; env: Record<string, string> } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = '';
  return { url: u.toString(), env: password ? { PGPASSWORD: password } : {} };
}

function toolEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'PGSSLMODE', 'PGSSLROOTCERT']) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...extra };
}

function collectStderr(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.on('data', (d: Buffer) => {
    text = (text + d.toString('utf8')).slice(-2000);
  });
  return () => text.trim().split('\n').slice(-3).join(' | ');
}

function exited(child: ChildProcess, tool: string, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new BackupError('BACKUP_TOOL_FAILED', `${tool} could not start (${(err as NodeJS.ErrnoException).code ?? err.message}); install postgresql-client`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new BackupError('BACKUP_TOOL_FAILED', `${tool} failed (${signal ?? `exit ${code}`}): ${stderr()}`));
    });
  });
}

/**
 * Opens a repeatable-read transaction, exports its snapshot, reads the figures in it and runs
 * pg_dump on that snapshot: the dump and the manifest agree exactly, whatever writes go on.
 */
export async function dumpPostgres(
  ownerUrl: string,
  onHeader: (figures: DatabaseFigures) => Promise<void>,
  onPart: (part: Uint8Array, index: number) => Promise<void>,
): Promise<DatabaseFigures> {
  const client = await newClient(ownerUrl);
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read read only');
    const snap = (await client.query<{ s: string }>('select pg_export_snapshot() as s')).rows[0]?.s ?? '';
    // The owner is under FORCE ROW LEVEL SECURITY like everyone: off makes a count fail rather than hide rows.
    // An owner that cannot bypass RLS is refused first, named (pg_dump would refuse it too, naming a table).
    const { role, bypasses } = await roleBypassesRls(asQueryable(client));
    if (!bypasses) throw new BackupError('BACKUP_TOOL_FAILED', `pg_dump cannot read every tenant's rows as the owner role ${role}, which is neither superuser nor BYPASSRLS (row-level security is forced on the owner too): back up with an owner that has BYPASSRLS`);
    await client.query('set local row_security = off');
    const figures = await readFigures(asQueryable(client));
    await onHeader(figures);
    const { url, env } = splitPassword(ownerUrl);
    const child = spawn(pgTool('pg_dump'), ['--format=custom', '--compress=0', `--snapshot=${snap}`, '--no-password', `--dbname=${url}`], {
      env: toolEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stderr = collectStderr(child);
    const done = exited(child, 'pg_dump', stderr);
    let pending: Buffer[] = [];
    let size = 0;
    let index = 0;
    const flush = async (): Promise<void> => {
      if (size === 0) return;
      const part = Buffer.concat(pending, size);
      pending = [];
      size = 0;
      await onPart(part, index++);
    };
    try {
      for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
        pending.push(chunk);
        size += chunk.length;
        if (size >= PART_BYTES) await flush();
      }
      await done;
      await flush();
    } catch (err) {
      child.kill('SIGKILL');
      await done.catch(() => undefined);
      throw err;
    }
    await client.query('commit');
    return figures;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Owner-side checks and setup of a restore target: empty, and the application role exists (grants name it). */
export async function prepareEmptyDatabase(ownerUrl: string): Promise<void> {
  const client = await newClient(ownerUrl);
  client.on('error', () => undefined);
  await client.connect();
  try {
    const r = await client.query<{ n: number }>(
      "select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and n.nspname not like 'pg_temp%' and n.nspname not like 'pg_toast_temp%' and c.relkind in ('r', 'p', 'v', 'm', 'S')",
    );
    const n = r.rows[0]?.n ?? 0;
    if (n > 0) throw new BackupError('BACKUP_TARGET_NOT_EMPTY', `the target database already holds ${n} relation(s); restore only into an empty database`);
    const role = await client.query('select 1 from pg_roles where rolname = $1', [APP_ROLE]);
    if (role.rowCount === 0) {
      await client.query(`create role ${APP_ROLE} nologin nosuperuser nobypassrls nocreatedb nocreaterole noreplication`).catch((err: { code?: string }) => {
        if (err.code !== '42710') throw err;
      });
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A running pg_restore reading the dump on stdin, in one transaction: killed before its end, it leaves nothing. */
export function startPgRestore(ownerUrl: string): { write: (chunk: Uint8Array) => Promise<void>; finish: () => Promise<void>; abort: () => Promise<void> } {
  const { url, env } = splitPassword(ownerUrl);
  const child = spawn(pgTool('pg_restore'), ['--single-transaction', '--exit-on-error', '--no-owner', '--no-password', `--dbname=${url}`], {
    env: toolEnv(env),
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const stderr = collectStderr(child);
  const done = exited(child, 'pg_restore', stderr);
  done.catch(() => undefined);
  const stdin = child.stdin;
  stdin?.on('error', () => undefined);
  return {
    write: async (chunk) => {
      if (!stdin) return;
      if (!stdin.write(chunk)) await Promise.race([new Promise<void>((r) => stdin.once('drain', r)), done]);
    },
    finish: async () => {
      stdin?.end();
      await done;
    },
    abort: async () => {
      child.kill('SIGKILL');
      await done.catch(() => undefined);
    },
  };
}
