/**
 * A gateway node on embedded storage in a data directory of its own (PGlite + memory kv, the
 * default deployment), for tests that restart or kill a node and expect its data back: run
 * in-process (`startEmbeddedNode`) or as the real `gatehouse start` in a child process
 * (`spawnEmbeddedNode`), both from the same config file and environment, one after the other.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNode, type Node } from '../../src/cli/runtime.ts';
import { capturedLogger, deliverMailAfterInject } from './app.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { createDb } from '../../src/store/index.ts';
import { mockProviders, VENDOR_KEYS } from './gateway.ts';

const BIN = fileURLToPath(new URL('../../bin/gatehouse.js', import.meta.url));

/** A data directory, its config file and the environment every start of it uses. */
export interface EmbeddedSetup {
  dir: string;
  dataDir: string;
  env: Record<string, string>;
  /** Removes the directory. */
  remove: () => void;
}

/** `{ 'a.b': 1 }` as `{ a: { b: 1 } }`. */
function nested(dotted: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [path, value] of Object.entries(dotted)) {
    const parts = path.split('.');
    let at = out;
    for (const part of parts.slice(0, -1)) at = (at[part] ??= {}) as Record<string, unknown>;
    at[parts[parts.length - 1] as string] = value;
  }
  return out;
}

/**
 * A fresh directory whose config points the gateway at `vendorUrl` (loopback allowed), with one
 * master key for every start. `settings` are dotted config paths written to the config file.
 * @example const setup = embeddedSetup(vendor.url, { 'gateway.usageFlushMs': 200 })
 */
export function embeddedSetup(vendorUrl: string, settings: Record<string, unknown> = {}): EmbeddedSetup {
  const dir = mkdtempSync(join(tmpdir(), 'gh-gw-embedded-'));
  const dataDir = join(dir, 'data');
  const config = nested({
    'storage.dataDir': dataDir,
    'server.host': '127.0.0.1',
    'server.port': 0,
    'log.level': 'info',
    'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
    'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
    'gateway.upstream.allowInsecureHttp': true,
    // An Anthropic provider for the slow and hanging models, which the stock list routes to OpenAI only.
    'gateway.providers': [...mockProviders(vendorUrl), { id: 'anthropic-slow', kind: 'anthropic', baseUrl: vendorUrl, models: ['mock-slow', 'mock-hang-first-byte'] }],
    ...settings,
  });
  writeFileSync(join(dir, 'gatehouse.config.json'), JSON.stringify(config, null, 2));
  const env = {
    GATEHOUSE_MASTER_KEYS: `1:${randomBytes(32).toString('base64')}`,
    GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ openai: VENDOR_KEYS.openai, faulty: VENDOR_KEYS.openai, anthropic: VENDOR_KEYS.anthropic, 'anthropic-faulty': VENDOR_KEYS.anthropic, 'anthropic-slow': VENDOR_KEYS.anthropic }),
  };
  return { dir, dataDir, env, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface EmbeddedNode {
  node: Node;
  url: string;
  mail: MailMessage[];
  logText: () => string;
  close: () => Promise<void>;
}

/** Starts the node of `setup` in this process, listening on 127.0.0.1. */
export async function startEmbeddedNode(setup: EmbeddedSetup, mail: MailMessage[] = []): Promise<EmbeddedNode> {
  const { config } = loadConfig({ env: setup.env, cwd: setup.dir });
  const { logger, logText } = capturedLogger(config);
  const mailer = { transport: 'outbox' as const, send: async (m: MailMessage) => void mail.push(m), close: async () => undefined };
  const node = await startNode({ config, logger, mailer });
  // Mail leaves the request path through the queue: deliver it after each injected request, so
  // tests read verification codes right after signing up.
  deliverMailAfterInject(node.app, [node]);
  try {
    await node.app.listen({ port: 0, host: '127.0.0.1' });
  } catch (err) {
    await node.close();
    throw err;
  }
  const url = `http://127.0.0.1:${(node.app.server.address() as AddressInfo).port}`;
  return { node, url, mail, logText, close: () => node.close() };
}

export interface SpawnedNode {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Runs `gatehouse start` on `setup` in a child process; resolves once it listens. */
export async function spawnEmbeddedNode(setup: EmbeddedSetup): Promise<SpawnedNode> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GATEHOUSE_') && k !== 'DATABASE_URL' && k !== 'REDIS_URL') env[k] = v;
  const child = spawn(process.execPath, [BIN, 'start'], { cwd: setup.dir, env: { ...env, ...setup.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start:\n${out}`)), 90_000);
    const check = (): void => {
      const m = /Gatehouse listening on (http:\/\/[^;\s]+);/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code}:\n${out}`));
    });
  });
  return { child, url, output: () => out, exited };
}

/** Calls of `keyId` in the usage records of `setup`'s data directory (the node must be stopped). */
export async function recordedCalls(setup: EmbeddedSetup, orgId: string, keyId: string): Promise<{ requests: number; rows: { status: number; error_code: string | null; output_tokens: string; requests: number }[] }> {
  const db = await createDb({ dataDir: setup.dataDir });
  try {
    // Applies nothing (the node migrated): it only opens the application role's side.
    await db.migrate();
    const { rows } = await db.withTenant(orgId, (tx) =>
      tx.query<{ status: number; error_code: string | null; output_tokens: string; requests: number }>(
        'select status, error_code, output_tokens::text as output_tokens, requests from usage_records where api_key_id = $1 order by created_at',
        [keyId],
      ),
    );
    return { requests: rows.reduce((n, r) => n + r.requests, 0), rows };
  } finally {
    await db.close();
  }
}
