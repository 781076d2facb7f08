/**
 * The `gatehouse` binary as a newcomer runs it: start on embedded storage, the CLI's behaviour
 * while the server holds the data directory, a clean SIGTERM, and data found again on restart.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/gatehouse.js');
const work = mkdtempSync(join(tmpdir(), 'gh-cli-'));
const METRICS_TOKEN = 'doctor-canary-token-0123456789';

/** The environment of a fresh shell: no service URLs, so the embedded defaults apply. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('GATEHOUSE_') || k === 'DATABASE_URL' || k === 'REDIS_URL') continue;
    env[k] = v;
  }
  return { ...env, GATEHOUSE_SERVER_PORT: '0', GATEHOUSE_METRICS_TOKEN: METRICS_TOKEN, ...extra };
}

function run(args: string[], extra: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, env: cleanEnv(extra), encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

async function startServer(): Promise<Started> {
  const child = spawn(process.execPath, [BIN, 'start'], { cwd: work, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 90_000);
    const check = (): void => {
      const m = /Gatehouse listening on (http:\/\/[^;\s]+); data: PGlite in (\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  return { child, url, output: () => out, exited };
}

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null) c.kill('SIGKILL');
});

describe('gatehouse start / migrate / doctor on embedded storage', () => {
  it('serves, refuses a second storage user clearly, stops cleanly on SIGTERM and finds its data again', async () => {
    const s = await startServer();
    started.push(s.child);
    expect(s.output()).toContain(join(work, '.gatehouse'));

    const health = await fetch(`${s.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
    expect(health.headers.get('x-request-id')).toBeTruthy();
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);

    // PGlite allows one process per data directory: migrate refuses with a clear message.
    const migrate = run(['migrate']);
    expect(migrate.status).toBe(3);
    expect(migrate.stderr).toMatch(/in use by a running Gatehouse \(pid \d+, http:\/\/127\.0\.0\.1:\d+\)/);
    expect(migrate.stderr).toContain('Stop the server first');

    // A second server on the same directory is refused the same way.
    const second = run(['start']);
    expect(second.status).toBe(3);

    // doctor reaches the running server over HTTP and masks secrets.
    const doctor = run(['doctor']);
    expect(doctor.status).toBe(0);
    expect(doctor.stdout).toMatch(/ok {4}storage: PGlite in .* in use by the running server pid \d+/);
    expect(doctor.stdout).toContain('"token": "••••••"');
    expect(doctor.stdout).not.toContain(METRICS_TOKEN);
    expect(doctor.stdout).toContain('server.port <- env GATEHOUSE_SERVER_PORT');

    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(s.output()).toContain('stopped cleanly');
    expect(existsSync(join(work, '.gatehouse', 'gatehouse.lock'))).toBe(false);

    // After the stop, the directory holds the migrated database.
    const again = run(['migrate']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^0 migration\(s\) applied, [1-9]\d* already applied \(pglite: /m);
  }, 240_000);

  it('bad configuration exits 2 naming the option and the reason', () => {
    const r = run(['start'], { GATEHOUSE_SERVER_PORT: 'eighty' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('gatehouse: configuration error: server.port (GATEHOUSE_SERVER_PORT): expected a number, got "eighty"\n');
    const r2 = run(['doctor'], { GATEHOUSE_LOG_LEVEL: 'loud' });
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/^gatehouse: configuration error: log\.level: /);
  });
});
