/**
 * `gatehouse doctor` on a fresh directory warns that no AI provider is configured (GW-2: a new
 * installation answers no_provider_configured), and stops warning once GATEHOUSE_GATEWAY_PROVIDERS
 * names one. Run as a newcomer runs it: the binary, in an empty directory, without GATEHOUSE_*.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/gatehouse.js');
const work = mkdtempSync(join(tmpdir(), 'gh-doctor-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const WARNING = '  - no platform AI provider: API keys get no_provider_configured until a workspace adds its own; set GATEHOUSE_GATEWAY_PROVIDERS and GATEHOUSE_GATEWAY_PROVIDER_KEYS (README: "A first AI provider")';

function doctor(extra: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GATEHOUSE_') && k !== 'DATABASE_URL' && k !== 'REDIS_URL') env[k] = v;
  // Bounded by the child's work; the timeout only catches a hang.
  const r = spawnSync(process.execPath, [BIN, 'doctor'], { cwd: work, env: { ...env, ...extra }, encoding: 'utf8', timeout: 600_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('gatehouse doctor and the AI provider', () => {
  it('warns, under Warnings:, when no gateway provider is configured', () => {
    const r = doctor();
    // Before a first start the storage check fails (no data directory yet): the warnings still print.
    expect(r.stdout, r.stderr).toMatch(/^doctor: (all checks passed|some checks failed)$/m);
    const lines = r.stdout.split('\n');
    expect(lines).toContain('Warnings:');
    expect(lines.indexOf(WARNING)).toBeGreaterThan(lines.indexOf('Warnings:'));
  });

  it('does not warn once GATEHOUSE_GATEWAY_PROVIDERS names a provider', () => {
    const r = doctor({
      GATEHOUSE_GATEWAY_PROVIDERS: '[{"id":"main","kind":"openai-compatible","baseUrl":"https://llm.example.com","models":["gpt-4o-mini"]}]',
      GATEHOUSE_GATEWAY_PROVIDER_KEYS: '{"main":"doctor-test-vendor-key"}',
      GATEHOUSE_GATEWAY_UPSTREAM_ALLOWED_HOSTS: '["llm.example.com"]',
    });
    expect(r.stdout, r.stderr).toContain('Warnings:');
    expect(r.stdout).not.toContain('no platform AI provider');
    expect(r.stdout).not.toContain('doctor-test-vendor-key');
  });
});
