/**
 * `gatehouse reload` against a running `gatehouse start` (OPS-3): the CLI finds the node through
 * the data-directory lock, the node reloads a changed `<VAR>_FILE`, a bad one is refused whole
 * (exit 1, the node keeps serving with the old value); and the promised metric series appear.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/gatehouse.js');
const work = mkdtempSync(join(tmpdir(), 'gh-trust-cli-'));
const tokenFile = join(work, 'metrics-token');
const OLD = 'metrics-token-old-0123456789';
const NEW = 'metrics-token-new-0123456789';

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GATEHOUSE_') && k !== 'DATABASE_URL' && k !== 'REDIS_URL') env[k] = v;
  return { ...env, GATEHOUSE_SERVER_PORT: '0', GATEHOUSE_METRICS_TOKEN_FILE: tokenFile };
}

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null) c.kill('SIGKILL');
});

/**
 * Series the product promises in /metrics, one line each: present on a plain node from the start
 * (each is seen after its event in test/trust/metrics.test.ts and the features' own tests).
 */
const PROMISED_SERIES = [
  'gatehouse_http_requests_total',
  'gatehouse_rate_limit_hits_total',
  'gatehouse_gateway_breaker_state',
  'gatehouse_gateway_breaker_transitions_total',
  'gatehouse_config_reloads_total',
  'gatehouse_config_last_reload_success',
  'gatehouse_trust_report_controls',
  'gatehouse_budget_reservations_total',
  'gatehouse_budget_refusals_total',
  'gatehouse_budget_soft_limit_crossings_total',
  'gatehouse_budget_settled_total',
  'gatehouse_budget_open_reservations',
  'gatehouse_guard_verdicts_total',
  'gatehouse_guard_refusals_total',
  'gatehouse_webhooks_received_total',
  'gatehouse_webhooks_refused_total',
  'gatehouse_webhooks_delivered_total',
  'gatehouse_webhooks_delivery_failed_total',
  'gatehouse_job_runs_total',
];

describe('gatehouse reload', () => {
  it('reloads the running node: a changed _FILE applies (exit 0), a bad one is refused (exit 1) and the old token keeps working; every promised metric series is in /metrics', async () => {
    writeFileSync(tokenFile, OLD);
    const child = spawn(process.execPath, [BIN, 'start'], { cwd: work, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout?.on('data', () => {
        const m = /Gatehouse listening on (http:\/\/[^;\s]+);/.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
    });
    const metrics = (token: string) => fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect((await metrics(OLD)).status).toBe(200);

    writeFileSync(tokenFile, NEW);
    const ok = spawnSync(process.execPath, [BIN, 'reload'], { cwd: work, env: cleanEnv(), encoding: 'utf8', timeout: 120_000 });
    // The node also watches the file (every 2 s): whichever comes first applies it, the other finds nothing to change.
    expect(ok.stdout).toMatch(/reload applied: metrics\.token|reload: nothing to change/);
    expect(ok.status).toBe(0);
    expect((await metrics(OLD)).status).toBe(401);
    expect((await metrics(NEW)).status).toBe(200);

    writeFileSync(tokenFile, 'short');
    const bad = spawnSync(process.execPath, [BIN, 'reload'], { cwd: work, env: cleanEnv(), encoding: 'utf8', timeout: 120_000 });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('reload refused: metrics.token');
    expect(bad.stdout).not.toContain('short');
    expect((await metrics(NEW)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    const text = await (await metrics(NEW)).text();
    for (const series of PROMISED_SERIES) expect(text, series).toContain(`# TYPE ${series} `);
    expect(text).toContain('gatehouse_config_reloads_total{outcome="applied"} 1');
    expect(text).toMatch(/gatehouse_config_reloads_total\{outcome="refused"\} [12]\n/);
    expect(text).toContain('gatehouse_config_last_reload_success 0');
    expect(out).not.toContain(NEW);

    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  }, 300_000);
});
