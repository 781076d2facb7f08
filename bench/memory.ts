/**
 * Memory benchmark (`npm run bench:memory`): what an embedded node holds, and what the start
 * flags (`--liftoff-only`, from package.json's start script) cost and save. Loopback only, each
 * measurement in a child process of its own so no measurement inherits another's memory; about a
 * minute and a half. Reports, enforces nothing.
 *
 * 1. PGlite alone after `select 1`, on a new data directory (initdb in the process, as PGlite does
 *    by itself) and on the same directory once it exists.
 * 2. A node from `startNode`, on a new data directory (Gatehouse runs initdb in a child process)
 *    and restarted on an existing one, with no flags and with the start script's flags: resident memory when ready, the peak during
 *    start (sampled every 20 ms), V8's own peak allocation (`peak_malloced_memory`: compiler
 *    memory), resident memory 3 s later, and after the first request for the API reference UI
 *    (`/docs/`, loaded on first use).
 * 3. A ready node after full garbage collections, JS heap and RSS, and the same with the clients
 *    it loads on first use only (LAZY_CLIENTS) imported: what loading them at start would cost.
 * 4. The CPU per request of undici (the provider client, whose HTTP parser is WebAssembly) against
 *    a local server, with no flags and with the start script's flags.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { startScriptFlags } from './env.ts';

const ROLE_ENV = 'MEMORY_BENCH_ROLE';
const mb = (bytes: number): number => Math.round(bytes / (1024 * 1024));


type Result = Record<string, number | string>;

async function runChild(role: string, flags: string[], env: Record<string, string> = {}): Promise<Result> {
  const child = fork(fileURLToPath(import.meta.url), [], { execArgv: flags, env: { ...process.env, ...env, [ROLE_ENV]: role }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const [message] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`${role} exited with ${String(code)}`);
    }),
  ])) as [Result];
  await once(child, 'exit');
  return message;
}

// ---------- children ----------

async function pgliteAlone(): Promise<Result> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLITE_START_PARAMS } = await import('../src/store/pglite-initdb.ts');
  const dir = process.env.MEMORY_BENCH_DIR ?? '';
  const pg = await PGlite.create(dir, { startParams: [...PGLITE_START_PARAMS] });
  await pg.query('select 1');
  const rss = process.memoryUsage.rss();
  await pg.close();
  return { rssMb: mb(rss) };
}

/** A node from startNode on `dir` (logs at warn, mail discarded); resolves when it is ready. */
async function startBenchNode(dir: string) {
  const [{ startNode }, { loadConfig }, { createLogger }] = await Promise.all([import('../src/cli/runtime.ts'), import('../src/config/load.ts'), import('../src/server/logger.ts')]);
  const { config } = loadConfig({
    env: { GATEHOUSE_MASTER_KEYS: `1:${Buffer.alloc(32, 7).toString('base64')}` },
    cwd: '/nonexistent-gatehouse-bench',
    overrides: { 'storage.dataDir': dir, 'log.level': 'warn' },
  });
  const logger = createLogger({ level: 'warn', knownSecrets: () => [] });
  return startNode({ config, logger, inMemory: false, mailer: { transport: 'outbox', send: async () => undefined, close: async () => undefined } });
}

async function node(): Promise<Result> {
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  // A given directory is a restart; none, a first start on a new one.
  const given = process.env.MEMORY_BENCH_DIR;
  const dir = given ?? mkdtempSync(join(tmpdir(), 'gatehouse-memory-'));
  try {
    const started = performance.now();
    const n = await startBenchNode(dir);
    const readyMs = Math.round(performance.now() - started);
    const ready = process.memoryUsage.rss();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const settled = process.memoryUsage.rss();
    const docs = await n.app.inject({ url: '/docs/' });
    if (docs.statusCode !== 200) throw new Error(`/docs/ answered ${docs.statusCode}`);
    const afterDocs = process.memoryUsage.rss();
    clearInterval(sampler);
    const peakMalloced = v8.getHeapStatistics().peak_malloced_memory;
    await n.close();
    return { readyMs, readyMb: mb(ready), startPeakMb: mb(peak), peakMallocedMb: mb(peakMalloced), settledMb: mb(settled), afterDocsMb: mb(afterDocs) };
  } finally {
    if (given === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/** The clients a node loads on first use only (see README, "Memory"). */
const LAZY_CLIENTS = ['ioredis', 'nodemailer', '@node-saml/node-saml', '@simplewebauthn/server', 'qrcode'] as const;

/**
 * A ready node (run with --expose-gc) after full collections: JS heap and RSS, then the same once
 * the lazily loaded clients are imported, which is what a node would hold if they were loaded at start.
 */
async function lazyClients(): Promise<Result> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const n = await startBenchNode(process.env.MEMORY_BENCH_DIR ?? '');
  const measure = async (): Promise<{ heap: number; rss: number }> => {
    await new Promise((resolve) => setTimeout(resolve, 500));
    gc();
    gc();
    return { heap: mb(process.memoryUsage().heapUsed), rss: mb(process.memoryUsage.rss()) };
  };
  const before = await measure();
  await Promise.all(LAZY_CLIENTS.map((name) => import(name)));
  const after = await measure();
  await n.close();
  return { heapMb: before.heap, rssMb: before.rss, loadedHeapMb: after.heap, loadedRssMb: after.rss };
}

async function undiciLoop(): Promise<Result> {
  const { Agent, request } = await import('undici');
  const body = JSON.stringify({ id: 'x', choices: [{ message: { content: 'hello '.repeat(20) } }], usage: { prompt_tokens: 5, completion_tokens: 7 } });
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const agent = new Agent({ connections: 8 });
  const run = async (n: number): Promise<number> => {
    const before = process.cpuUsage();
    for (let i = 0; i < n; i += 8) {
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const r = await request(url, { dispatcher: agent, method: 'POST', body: '{}' });
          await r.body.text();
        }),
      );
    }
    const used = process.cpuUsage(before);
    return (used.user + used.system) / n;
  };
  await run(10_000);
  const rounds = [await run(20_000), await run(20_000), await run(20_000)].sort((a, b) => a - b);
  server.close();
  await agent.close();
  return { cpuUsPerRequest: Math.round((rounds[1] ?? 0) * 10) / 10 };
}

// ---------- main ----------

async function main(): Promise<void> {
  const flags = startScriptFlags();
  const out: string[] = [`memory bench: node ${process.version}, start script flags "${flags.join(' ')}"`, ''];

  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-memory-pglite-'));
  try {
    const fresh = await runChild('pglite', [], { MEMORY_BENCH_DIR: dir });
    const existing = await runChild('pglite', [], { MEMORY_BENCH_DIR: dir });
    out.push(`1. PGlite alone after select 1: ${fresh.rssMb} MB RSS on a new directory (initdb in the process), ${existing.rssMb} MB on the same directory once it exists`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  out.push('', '2. A node from startNode, on a new data directory (initdb in a child process) and restarted on an existing one:', '', '| data directory | flags | ready after | RSS when ready | peak RSS during start | V8 peak malloced | RSS 3 s later | after the first /docs/ |', '|---|---|---:|---:|---:|---:|---:|---:|');
  const existing = mkdtempSync(join(tmpdir(), 'gatehouse-memory-node-'));
  try {
    await runChild('node', [], { MEMORY_BENCH_DIR: existing });
    for (const [where, env] of [['new', {}], ['existing', { MEMORY_BENCH_DIR: existing }]] as const) {
      for (const [label, f] of [['none', []], [flags.join(' '), flags]] as const) {
        const r = await runChild('node', [...f], env);
        out.push(`| ${where} | ${label} | ${r.readyMs} ms | ${r.readyMb} MB | ${r.startPeakMb} MB | ${r.peakMallocedMb} MB | ${r.settledMb} MB | ${r.afterDocsMb} MB |`);
      }
    }
  } finally {
    rmSync(existing, { recursive: true, force: true });
  }

  const lazyDir = mkdtempSync(join(tmpdir(), 'gatehouse-memory-lazy-'));
  try {
    await runChild('node', [...flags], { MEMORY_BENCH_DIR: lazyDir });
    const lazy = await runChild('lazy', [...flags, '--expose-gc'], { MEMORY_BENCH_DIR: lazyDir });
    out.push(
      '',
      `3. A ready node (existing directory, start flags) after full collections: JS heap ${lazy.heapMb} MB, RSS ${lazy.rssMb} MB; with the clients loaded on first use (${LAZY_CLIENTS.join(', ')}) imported too: ${lazy.loadedHeapMb} MB and ${lazy.loadedRssMb} MB`,
    );
  } finally {
    rmSync(lazyDir, { recursive: true, force: true });
  }

  out.push('', '4. undici (the provider client) against a local server, CPU per request, median of 3 × 20,000:');
  const plain = await runChild('undici', []);
  const flagged = await runChild('undici', flags);
  out.push(`   no flags: ${plain.cpuUsPerRequest} µs; "${flags.join(' ')}": ${flagged.cpuUsPerRequest} µs (client and server in one process)`, '');
  process.stdout.write(out.join('\n'));
}

const role = process.env[ROLE_ENV];
const roles: Record<string, () => Promise<Result>> = { pglite: pgliteAlone, node, lazy: lazyClients, undici: undiciLoop };
if (role !== undefined) {
  const run = roles[role];
  if (!run) throw new Error(`unknown role ${role}`);
  run().then(
    (result) => process.send?.(result),
    (err: unknown) => {
      process.stderr.write(`${role}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
} else if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
