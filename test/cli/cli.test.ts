/**
 * The `gatehouse` binary as a newcomer runs it: start on embedded storage, the CLI's behaviour
 * while the server holds the data directory, a clean SIGTERM, and data found again on restart.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
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

function run(args: string[], extra: Record<string, string> = {}, input?: string): { status: number | null; stdout: string; stderr: string } {
  // With `input`, stdin is a pipe (not a terminal), the way a script feeds `gatehouse setup`.
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, env: cleanEnv(extra), encoding: 'utf8', timeout: 600_000, ...(input === undefined ? {} : { input }) });
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
  // Bounded by the server's own work: it announces its URL or exits (no clock: a busy machine may take minutes).
  const url = await new Promise<string>((resolve, reject) => {
    const check = (): void => {
      const m = /Gatehouse listening on (http:\/\/[^;\s]+); data: PGlite in (\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
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
  it('serves; first run: the printed placeholder password and a common one are refused (400 PASSWORD_COMMON), then gatehouse setup creates the operator once; refuses a second storage user clearly, stops cleanly on SIGTERM and finds its data again', async () => {
    const s = await startServer();
    started.push(s.child);
    expect(s.output()).toContain(join(work, '.gatehouse'));

    const health = await fetch(`${s.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
    expect(health.headers.get('x-request-id')).toBeTruthy();
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);

    // First run: a one-time setup code, printed once, creates the operator account.
    const setupCode = /"token":"(ghs_[A-Za-z0-9_-]{43})"/.exec(s.output())?.[1];
    expect(setupCode).toBeDefined();
    const postSetup = (password: string): Promise<Response> =>
      fetch(`${s.url}/v1/setup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: setupCode, email: 'operator@example.com', password }),
      });
    // Attack: paste the printed curl unchanged, so the operator's password is the one in the README.
    const placeholder = /"password":"([^"]+)"/.exec(s.output())?.[1];
    expect(placeholder).toBe('<a long passphrase>');
    const pasted = await postSetup(placeholder ?? '');
    expect(pasted.status).toBe(400);
    expect(((await pasted.json()) as { error: { code: string } }).error.code).toBe('PASSWORD_COMMON');
    // Attack: a blocklisted password long enough for the length rule (the same checks as sign-up).
    const common = await postSetup('Password123456789!');
    expect(common.status).toBe(400);
    expect(((await common.json()) as { error: { code: string } }).error.code).toBe('PASSWORD_COMMON');
    // The refusals used nothing up: `gatehouse setup`, fed by a pipe, creates the operator with the same code.
    const operatorPassword = 'a long operator passphrase 2026';
    const viaCli = run(['setup', '--email', 'operator@example.com'], {}, `${setupCode}\n${operatorPassword}\n`);
    expect(viaCli.status, viaCli.stderr).toBe(0);
    expect(viaCli.stdout).toBe(`operator account operator@example.com created on ${new URL(s.url).origin}; sign in with POST ${new URL(s.url).origin}/v1/auth/login\n`);
    expect(viaCli.stdout + viaCli.stderr).not.toContain(operatorPassword);
    expect(viaCli.stdout + viaCli.stderr).not.toContain(setupCode);
    const login = await fetch(`${s.url}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'operator@example.com', password: operatorPassword }),
    });
    expect(login.status).toBe(200);
    // The code works once: a second setup is refused with the server's code (400 TOKEN_INVALID).
    // (Setup shares the sign-up limit of 5 an hour per IP with the sign-up below: 4 calls here.)
    const secondSetup = run(['setup', '--email', 'second@example.com'], {}, `${setupCode}\n${operatorPassword}\n`);
    expect(secondSetup.status).toBe(1);
    expect(secondSetup.stderr).toBe('gatehouse setup: the server refused the setup (TOKEN_INVALID): The code is invalid, expired or already used.\n');
    // A script that pipes too little gets a usage error and creates nothing.
    const short = run(['setup', '--email', 'third@example.com'], {}, `${setupCode}\n`);
    expect(short.status).toBe(2);
    // Sign-up mail goes to the outbox without SMTP, readable while the server runs.
    const signup = await fetch(`${s.url}/v1/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'newcomer@example.com', password: 'a long newcomer passphrase 2026' }),
    });
    expect(signup.status).toBe(202);
    // The mail queue writes it in the background, at once: a few bounded reads find it.
    let outbox = run(['outbox']);
    for (let i = 0; i < 20 && !outbox.stdout.includes('verify-email'); i++) {
      await new Promise((r) => setTimeout(r, 250));
      outbox = run(['outbox']);
    }
    expect(outbox.status, outbox.stderr).toBe(0);
    expect(outbox.stdout).toContain('verify-email');
    expect(outbox.stdout).toContain('newcomer@example.com');
    // The code in the mail never reaches the server log.
    const id = /^(\d{8}T\d{9}Z-[0-9a-f]{8})/m.exec(outbox.stdout)?.[1];
    expect(id).toBeDefined();
    const message = run(['outbox', id ?? '']);
    const verifyCode = /ghv_[A-Za-z0-9_-]{43}/.exec(message.stdout)?.[0];
    expect(verifyCode).toBeDefined();
    expect(s.output()).not.toContain(verifyCode);

    // PGlite allows one process per data directory: migrate refuses with a clear message.
    const migrate = run(['migrate']);
    expect(migrate.status).toBe(3);
    expect(migrate.stderr).toMatch(/in use by a running Gatehouse \(pid \d+, http:\/\/127\.0\.0\.1:\d+\)/);
    expect(migrate.stderr).toContain('Stop the server first');
    // Reading too: PGlite cannot share the directory even with a read-only command, and says so.
    const statusWhileRunning = run(['keys', 'status']);
    expect(statusWhileRunning.status).toBe(3);
    expect(statusWhileRunning.stderr).toContain('one process per data directory, so `gatehouse keys status` cannot open it while the server runs, even to read');
    expect(statusWhileRunning.stderr).toContain('run on PostgreSQL (DATABASE_URL), where every command works beside running nodes');

    // A second server on the same directory, and key commands, are refused the same way.
    const second = run(['start']);
    expect(second.status).toBe(3);
    const keysWhileRunning = run(['keys', 'rotate', 'kek']);
    expect(keysWhileRunning.status).toBe(3);
    expect(keysWhileRunning.stderr).toMatch(/in use by a running Gatehouse/);

    // doctor reaches the running server over HTTP and masks secrets.
    const doctor = run(['doctor']);
    expect(doctor.status).toBe(0);
    expect(doctor.stdout).toMatch(/ok {4}storage: PGlite in .* in use by the running server pid \d+/);
    expect(doctor.stdout).toContain('"token": "••••••"');
    expect(doctor.stdout).toMatch(/ok {4}keyring: 1 key-encryption key version\(s\) from the key file, primary v1/);
    // The mail queue is counted by the running server (PGlite allows one process).
    expect(doctor.stdout).toMatch(/ok {4}mail queue: counted by the running server pid \d+: gatehouse_mail_queue_messages on its \/metrics/);
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
  });

  it('audit: exports the platform log (the operator setup is in it) and verifies the export offline: exit 3 CONSISTENT-BUT-UNPINNED without keys, exit 1 BELOW_PINNED_SIZE under --min-size; a changed byte fails', () => {
    const exported = run(['audit', 'export', '--org', 'platform']);
    expect(exported.status, exported.stderr).toBe(0);
    expect(exported.stdout).toContain('"action":"operator.setup.completed"');
    const file = join(work, 'platform-audit.jsonl');
    writeFileSync(file, exported.stdout);
    // Without --keys the export is consistent but nothing pins its key: exit 3, not a pass.
    const ok = run(['audit', 'verify', file]);
    expect(ok.status, ok.stdout + ok.stderr).toBe(3);
    expect(ok.stdout.trimEnd().split('\n').at(-1)).toMatch(/^CONSISTENT-BUT-UNPINNED: /);
    // A size the log must have reached that this export does not: FAILED, exit 1.
    const events = exported.stdout.split('\n').filter((l) => l.startsWith('{"event":')).length;
    const short = run(['audit', 'verify', file, '--min-size', String(events + 1)]);
    expect(short.status, short.stdout + short.stderr).toBe(1);
    expect(short.stdout).toMatch(new RegExp(`FAILED: BELOW_PINNED_SIZE at index ${events}: `));
    writeFileSync(file, exported.stdout.replace('operator.setup.completed', 'operator.setup.complete!'));
    const bad = run(['audit', 'verify', file]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('FAILED');
    expect(run(['audit', 'export', '--org', 'not-a-uuid']).status).toBe(1);
    const pruned = run(['audit', 'prune']);
    expect(pruned.status, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/^platform: removed 0 events/m);
  });

  it('jobs: list shows every module\'s jobs with their schedules; run runs one under the lock and records it; an unknown job fails', () => {
    const list = run(['jobs', 'list']);
    expect(list.status).toBe(0);
    for (const name of ['audit.checkpoint', 'audit.prune', 'webhooks.redeliver', 'webhooks.prune', 'jobs.prune-history']) expect(list.stdout).toContain(name);
    const ran = run(['jobs', 'run', 'audit.checkpoint']);
    expect(ran.status).toBe(0);
    expect(ran.stdout).toMatch(/^audit\.checkpoint: succeeded in \d+ ms/);
    expect(run(['jobs', 'list']).stdout).toMatch(/audit\.checkpoint\t\* \* \* \* \*\tnext \S+\tlast succeeded at /);
    const unknown = run(['jobs', 'run', 'no.such-job']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('no job is named "no.such-job"');
  });

  it('bad configuration exits 2 naming the option and the reason', () => {
    const r = run(['start'], { GATEHOUSE_SERVER_PORT: 'eighty' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('gatehouse: configuration error: server.port (GATEHOUSE_SERVER_PORT): expected a number, got "eighty"\n');
    const r2 = run(['doctor'], { GATEHOUSE_LOG_LEVEL: 'loud' });
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/^gatehouse: configuration error: log\.level: /);
    // A malformed master key list: named, never echoed.
    const r3 = run(['start'], { GATEHOUSE_MASTER_KEYS: '1:c2hvcnQta2V5LW1hdGVyaWFs' });
    expect(r3.status).toBe(2);
    expect(r3.stderr).toMatch(/^gatehouse: keyring error \(KEYRING_INVALID\): /);
    expect(r3.stderr).not.toContain('c2hvcnQta2V5LW1hdGVyaWFs');
  });

  it('keys: status and rotations with --dry-run; an insecure key file stops the start', async () => {
    // The earlier test stopped its server; this directory is free again.
    const keyFile = join(work, '.gatehouse', 'master-keys.json');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const status = run(['keys', 'status']);
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toContain('v1 (primary)');
    expect(status.stdout).toMatch(/access-token \S+ current/);
    expect(status.stdout).not.toMatch(/"key"|[A-Za-z0-9_-]{43}=?\s*$/m);
    const dry = run(['keys', 'rotate', 'kek', '--dry-run']);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain('dry run: would add KEK v2');
    // No KEK line for v2 (a line of the KEK list starts with its version; a signing key id, random
    // base64url, may well contain the letters "v2", so the whole output is not searched).
    const afterDry = run(['keys', 'status']).stdout;
    expect(afterDry).toMatch(/^\s+v1 \(primary\)/m);
    expect(afterDry).not.toMatch(/^\s+v2\b/m);
    const kek = run(['keys', 'rotate', 'kek']);
    expect(kek.status, kek.stderr).toBe(0);
    expect(kek.stdout).toMatch(/rewrapped [1-9]\d* data key\(s\) under KEK v2/);
    const signing = run(['keys', 'rotate', 'signing', '--purpose', 'access-token']);
    expect(signing.status, signing.stderr).toBe(0);
    expect(signing.stdout).toMatch(/^rotated access-token: \S+ now signs; \S+ published as next; \S+ retired|^rotated access-token: \S+ now signs; \S+ published as next/m);
    const bad = run(['keys', 'rotate', 'signing', '--purpose', 'everything']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('--purpose must be one of access-token, audit-checkpoint');
    // Each rotation is an operator action in the platform log; dry runs are not.
    const log = run(['audit', 'export', '--org', 'platform']);
    expect(log.stdout.match(/"action":"keys.rotated"/g)?.length).toBe(2);
    expect(log.stdout).toContain('"kind":"kek"');
    expect(log.stdout).toContain('"purpose":"access-token"');

    chmodSync(keyFile, 0o644);
    const refused = run(['start']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('keyring error (KEY_FILE_INSECURE)');
    expect(refused.stderr).toContain('chmod 600');
    chmodSync(keyFile, 0o600);
  });
});
