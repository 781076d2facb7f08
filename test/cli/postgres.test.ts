/**
 * The `gatehouse` binary on PostgreSQL, as an operator adding a node runs it: commands beside a
 * running node, a node started with a new data directory (hence no key file, or another
 * database's key file) against a database that holds sealed data, and doctor's several-nodes
 * warning about the token issuer. Runs on a scratch database when DATABASE_URL is set.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScratchPostgresDatabase } from '../support/pg-scratch.ts';
import { postgresTarget, requireUrl } from '../support/services.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/gatehouse.js');
const work = mkdtempSync(join(tmpdir(), 'gh-cli-pg-'));
const pgTarget = postgresTarget();

let databaseUrl = '';
let drop = async (): Promise<void> => undefined;

/** A fresh shell's environment on the scratch database, with a data directory of `dir`'s own. */
function envFor(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('GATEHOUSE_') || k === 'DATABASE_URL' || k === 'REDIS_URL') continue;
    env[k] = v;
  }
  return { ...env, DATABASE_URL: databaseUrl, GATEHOUSE_STORAGE_DATA_DIR: join(work, dir), GATEHOUSE_SERVER_PORT: '0', ...extra };
}

function run(dir: string, args: string[], extra: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, env: envFor(dir, extra), encoding: 'utf8', timeout: 600_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `gatehouse start`, until it listens (then it keeps running: `stop` ends it) or exits. Bounded
 * by the node's own work, not by a clock.
 */
async function start(dir: string): Promise<{ listening: boolean; code: number | null; output: string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'start'], { cwd: work, env: envFor(dir), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<boolean>((resolve) => {
    const onData = (d: Buffer): void => {
      output += d.toString();
      if (/Gatehouse listening on http:\/\/\S+; data: PostgreSQL/.test(output)) resolve(true);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(() => resolve(false));
  });
  const up = await listening;
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null) child.kill('SIGTERM');
    return exited;
  };
  return { listening: up, code: up ? null : await exited, output, stop };
}

describe.skipIf(pgTarget.skipReason !== undefined)('gatehouse on PostgreSQL', () => {
  beforeAll(async () => {
    const scratch = await createScratchPostgresDatabase(requireUrl(pgTarget));
    databaseUrl = scratch.url;
    drop = scratch.drop;
  });
  afterAll(async () => drop());

  it('commands work beside a running node; a new data directory never gets a key of its own for sealed data (KEYRING_MISMATCH, no key file written), nor starts with another database\'s key file (KEYRING_MISMATCH)', async () => {
    const first = await start('node-a');
    expect(first.listening, first.output).toBe(true);
    try {
      // Read-only and key commands work while the node runs: on PostgreSQL nothing holds a data directory.
      const status = run('node-a', ['keys', 'status']);
      expect(status.status, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/^\s+v1 \(primary\): wraps [1-9]\d* data key\(s\)/m);
      expect(status.stdout).toMatch(/access-token \S+ current/);
    } finally {
      expect(await first.stop()).toBe(0);
    }

    // Attack on availability by misconfiguration: a second node with a new data directory. It used
    // to write a new key file and stop at the first sealed value with DECRYPT_FAILED.
    const second = await start('node-b');
    expect(second.listening).toBe(false);
    expect(second.code).toBe(2);
    const newKeyFile = join(work, 'node-b', 'master-keys.json');
    expect(second.output).toContain('keyring error (KEYRING_MISMATCH): the database ');
    expect(second.output).toContain(`but there is no key file at ${newKeyFile}. A new key could not open them, so none was created.`);
    expect(second.output).not.toContain('DECRYPT_FAILED');
    expect(existsSync(newKeyFile)).toBe(false);

    // The same node given another database's key file: named as such, not DECRYPT_FAILED alone.
    mkdirSync(join(work, 'node-b'), { recursive: true, mode: 0o700 });
    writeFileSync(newKeyFile, JSON.stringify({ format: 1, keys: [{ version: 1, key: randomBytes(32).toString('base64url') }] }), { mode: 0o600 });
    const wrongKeys = await start('node-b');
    expect(wrongKeys.listening).toBe(false);
    expect(wrongKeys.code).toBe(2);
    expect(wrongKeys.output).toContain(`keyring error (KEYRING_MISMATCH): the key-encryption keys from the key file ${newKeyFile} do not open the data keys in the database `);
    expect(wrongKeys.output).toContain('(DECRYPT_FAILED): they belong to another database.');
  });

  it('doctor warns when several nodes share storage but not a public URL (the token issuer)', () => {
    const warning = /DATABASE_URL set \(several nodes\) but server\.publicUrl is not: each node signs access tokens with its own listener address as issuer/;
    const without = run('node-a', ['doctor']);
    expect(without.stdout).toMatch(warning);
    const withUrl = run('node-a', ['doctor'], { GATEHOUSE_SERVER_PUBLIC_URL: 'https://auth.example.com' });
    expect(withUrl.stdout).toContain('Warnings:');
    expect(withUrl.stdout).not.toMatch(warning);
    const withIssuer = run('node-a', ['doctor'], { GATEHOUSE_AUTH_ISSUER: 'https://auth.example.com' });
    expect(withIssuer.stdout).not.toMatch(warning);
  });
});
