/**
 * Gateway benchmark (`npm run bench:gateway`), loopback only, bounded in time.
 *
 * What runs where, so that no two servers under load share an event loop:
 * - the main thread: autocannon (BENCH_CONNECTIONS, default 32);
 * - a worker thread: the mock upstream (test/support/mock-vendor.ts);
 * - a child process each: the baseline (the bare undici passthrough of bench/gateway-baseline.ts),
 *   Gatehouse on the embedded default (PGlite in a temporary data directory, memory kv), and, when
 *   DATABASE_URL and REDIS_URL are set, Gatehouse on PostgreSQL (a scratch database, dropped at the
 *   end) + Redis (a key prefix of its own). Each child reports its own peak RSS.
 *
 * Gatehouse runs as in production, with everything on: API-key auth (the verified-key cache), the
 * per-IP and the key's own rate limit (sliding windows in kv, a limit never reached but checked on
 * every call), the key's monthly limit (a kv counter), model routing, metering (usage records
 * buffered and written every second, with cost from a price table) and request logging at info,
 * scrubbed, written synchronously to standard output as in production (the child's is /dev/null).
 * The child loads the application only when it is a Gatehouse, so the baseline stays a bare proxy.
 *
 * Runs, each after a 1 s warm-up that is discarded, for BENCH_SECONDS (default 5):
 * 1. peak: every target, JSON (`POST /v1/chat/completions`) and stream (the same with
 *    `stream: true`, 9 SSE events); Gatehouse/baseline ratios of req/s;
 * 2. latency at half of the baseline's peak rate (autocannon's overallRate), baseline and each
 *    Gatehouse: the p99 Gatehouse adds. autocannon's latencies have 1 ms resolution.
 * Targets (reported, not enforced): ratio >= 0.75 JSON and >= 0.85 stream; added p99 < 2 ms at half
 * the baseline's peak rate; Gatehouse peak RSS < 250 MB. Exits non-zero when a request failed.
 * Bounded: about 14 x (1 + BENCH_SECONDS) seconds with PostgreSQL + Redis, 10 x without, plus setup.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';
import { createScratchPostgresDatabase } from '../test/support/pg-scratch.ts';
import { envSeconds } from './env.ts';
import { startBaselineProxy } from './gateway-baseline.ts';
import { startMockVendor } from './mock-upstream.ts';

/** The mock's key: a bench needs no secret, but the mock does check the header. */
const BENCH_KEY = 'bench-upstream-key';
const WORKER_ROLE = 'gateway-bench-upstream';
const ROLE_ENV = 'GATEWAY_BENCH_ROLE';
const RSS_LIMIT_MB = 250;

type ChildRole = 'baseline' | 'gatehouse';

interface Ready {
  ready: true;
  url: string;
  /** RSS once listening, before any load (MB). */
  readyRssMb: number;
  /** The client's key: the mock's for the baseline, a Gatehouse API key for Gatehouse. */
  key: string;
}

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  failures: number;
  /** The serving process's CPU time per request (µs); null for the mock upstream. */
  cpuUs: number | null;
}

const body = (stream: boolean): string =>
  JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'Say hello.' }], ...(stream ? { stream: true } : {}) });

async function load(url: string, key: string, stream: boolean, seconds: number, connections: number, rate?: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${url}/v1/chat/completions`,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: body(stream),
        connections,
        pipelining: 1,
        duration: seconds,
        timeout: 10,
        ...(rate ? { overallRate: rate } : {}),
      },
      (err, result) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(result)),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Children

/** Starts this file as a child in `role`; resolves when it listens. */
async function startChild(role: ChildRole, env: Record<string, string>): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, ...env, [ROLE_ENV]: role }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const [message] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`${role} child exited with ${String(code)} before it was ready`);
    }),
  ])) as [Ready];
  return { child, ready: message };
}

/** The child's CPU time so far (user + system, µs). */
async function cpuOf(child: ChildProcess): Promise<number> {
  child.send('cpu');
  const [message] = (await once(child, 'message')) as [{ cpuUs: number }];
  return message.cpuUs;
}

/** Asks a child for its peak RSS (MB), then stops it. */
async function stopChild(child: ChildProcess): Promise<number> {
  child.send('stop');
  const [message] = (await once(child, 'message')) as [{ maxRssMb: number }];
  await once(child, 'exit');
  return message.maxRssMb;
}

const mb = (bytes: number): number => Math.round(bytes / (1024 * 1024));

/**
 * Samples this process's RSS. Not getrusage's maxRSS: Linux carries a parent's peak across fork and
 * exec, so a child would report the bench's own peak.
 */
function trackPeakRss(): () => number {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 50);
  timer.unref();
  return () => Math.max(peak, process.memoryUsage.rss());
}

function onStop(close: () => Promise<void>, peakRss: () => number): void {
  process.on('message', (message) => {
    if (message === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send?.({ cpuUs: user + system });
      return;
    }
    if (message !== 'stop') return;
    const maxRssMb = mb(peakRss());
    void close().finally(() => {
      process.send?.({ maxRssMb }, () => process.exit(0));
    });
  });
}

async function runBaselineChild(): Promise<void> {
  const peakRss = trackPeakRss();
  const proxy = await startBaselineProxy(process.env.GATEWAY_BENCH_UPSTREAM ?? '');
  onStop(() => proxy.close(), peakRss);
  process.send?.({ ready: true, url: proxy.url, key: BENCH_KEY, readyRssMb: mb(process.memoryUsage.rss()) } satisfies Ready);
}

async function runGatehouseChild(): Promise<void> {
  const peakRss = trackPeakRss();
  const [{ startNode }, { loadConfig, secretValues }, { monthOf, readUsageReport }, { createLogger }] = await Promise.all([
    import('../src/cli/runtime.ts'),
    import('../src/config/load.ts'),
    import('../src/gateway/metering.ts'),
    import('../src/server/logger.ts'),
  ]);
  const upstream = process.env.GATEWAY_BENCH_UPSTREAM ?? '';
  const databaseUrl = process.env.GATEWAY_BENCH_DATABASE_URL;
  const redisUrl = process.env.GATEWAY_BENCH_REDIS_URL;
  const dataDir = databaseUrl ? undefined : mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  // A child that fails before it is ready leaves no data directory behind.
  process.once('exit', () => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  const unlimited = { limit: 1_000_000_000, windowSeconds: 60 };
  // GATEHOUSE_* variables of the bench's environment apply here: a way to switch single pieces off.
  const passed = Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('GATEHOUSE_')));
  const { config } = loadConfig({
    env: {
      ...passed,
      GATEHOUSE_MASTER_KEYS: `1:${randomBytes(32).toString('base64')}`,
      GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ mock: BENCH_KEY }),
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      ...(redisUrl ? { REDIS_URL: redisUrl, GATEHOUSE_KV_KEY_PREFIX: `b${randomBytes(6).toString('hex')}:` } : {}),
    },
    cwd: '/nonexistent-gatehouse-bench',
    overrides: {
      ...(dataDir ? { 'storage.dataDir': dataDir } : {}),
      'log.level': 'info',
      // Limits stay on and are counted on every call; loopback load from one IP must not hit them.
      'rateLimit.categories': { ai: { ip: unlimited, principal: unlimited } },
      'gateway.upstream.allowedHosts': ['127.0.0.1'],
      'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
      'gateway.upstream.allowInsecureHttp': true,
      'gateway.providers': [{ id: 'mock', kind: 'openai', baseUrl: upstream, models: ['mock-model'] }],
      'gateway.prices': [{ model: 'mock-model', inputPerMillion: '0.15', outputPerMillion: '0.6' }],
    },
  });
  const logger = createLogger({ level: config.log.level, knownSecrets: () => secretValues(config) });
  const node = await startNode({ config, logger, inMemory: false, mailer: { transport: 'outbox', send: async () => undefined, close: async () => undefined } });
  await node.app.listen({ port: 0, host: '127.0.0.1' });
  // The account through the API; org, workspace and key through the domain functions the routes
  // call (the bench measures the gateway, not sign-in).
  const email = 'gateway-bench@example.com';
  const signup = await node.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: 'gateway bench passphrase 2026 ok' } });
  if (signup.statusCode !== 202) throw new Error(`sign-up answered ${signup.statusCode}`);
  const userId = (await node.db.asOwner((tx) => tx.query<{ id: string }>('select id from users where email = $1', [email]))).rows[0]?.id;
  if (!userId) throw new Error('the bench account was not created');
  const org = (await node.tenancy.orgs.create(userId, 'Bench')).id;
  const ws = (await node.tenancy.workspaces.create(org, 'Bench')).id;
  // A rate limit and a monthly limit the bench never reaches, but that are checked on every call.
  const { key } = await node.gateway.keys.create(org, ws, userId, { name: 'bench', scopes: ['ai:chat'], expiresAt: null, monthlyLimit: 1_000_000_000, rateLimitPerMinute: 1_000_000 });
  const address = node.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no listening address');
  onStop(async () => {
    await node.gateway.meter.flush();
    const usage = await readUsageReport(node.db, org, monthOf(Date.now()));
    process.stderr.write(`  (${databaseUrl ? 'PostgreSQL + Redis' : 'embedded'}: ${usage.org.requests} calls metered)\n`);
    await node.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, peakRss);
  process.send?.({ ready: true, url: `http://127.0.0.1:${address.port}`, key, readyRssMb: mb(process.memoryUsage.rss()) } satisfies Ready);
}

// ---------------------------------------------------------------------------------------------
// Main

const ms = (v: number): string => `${v} ms`;
const rps = (v: number): string => Math.round(v).toLocaleString('en-US');

async function main(): Promise<number> {
  const seconds = envSeconds('BENCH_SECONDS', 5);
  const raw = process.env.BENCH_CONNECTIONS;
  const connections = raw === undefined || raw === '' ? 32 : Number(raw);
  if (!Number.isInteger(connections) || connections < 1 || connections > 1024) throw new Error('BENCH_CONNECTIONS must be an integer in [1, 1024]');
  const withServices = Boolean(process.env.DATABASE_URL && process.env.REDIS_URL);

  const worker = new Worker(new URL(import.meta.url), { workerData: { role: WORKER_ROLE } });
  const [upstream] = (await once(worker, 'message')) as [string];
  const scratch = withServices ? await createScratchPostgresDatabase(process.env.DATABASE_URL ?? '') : undefined;
  const targets: { name: string; child: ChildProcess; ready: Ready; rssMb?: number }[] = [];
  const rows: Row[] = [];
  const halfRows: Row[] = [];
  try {
    const base = { GATEWAY_BENCH_UPSTREAM: upstream };
    targets.push({ name: 'baseline proxy', ...(await startChild('baseline', base)) });
    targets.push({ name: 'Gatehouse, embedded', ...(await startChild('gatehouse', base)) });
    if (scratch) {
      targets.push({
        name: 'Gatehouse, PostgreSQL + Redis',
        ...(await startChild('gatehouse', { ...base, GATEWAY_BENCH_DATABASE_URL: scratch.url, GATEWAY_BENCH_REDIS_URL: process.env.REDIS_URL ?? '' })),
      });
    }
    const measure = async (name: string, url: string, key: string, stream: boolean, child?: ChildProcess, rate?: number): Promise<Row> => {
      await load(url, key, stream, 1, connections, rate); // warm-up, discarded
      const before = child ? await cpuOf(child) : 0;
      const r = await load(url, key, stream, seconds, connections, rate);
      const cpuUs = child ? ((await cpuOf(child)) - before) / Math.max(1, r.requests.total) : null;
      return { name, rps: r.requests.total / r.duration, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total, failures: r.errors + r.timeouts + r.non2xx, cpuUs };
    };
    for (const stream of [false, true]) {
      const kind = stream ? 'stream' : 'JSON';
      rows.push(await measure(`upstream direct, ${kind}`, upstream, BENCH_KEY, stream));
      for (const t of targets) rows.push(await measure(`${t.name}, ${kind}`, t.ready.url, t.ready.key, stream, t.child));
    }
    for (const stream of [false, true]) {
      const kind = stream ? 'stream' : 'JSON';
      const peak = rows.find((r) => r.name === `baseline proxy, ${kind}`)?.rps ?? 0;
      const rate = Math.max(1, Math.floor(peak / 2));
      for (const t of targets) halfRows.push(await measure(`${t.name}, ${kind} @ ${rps(rate)}/s`, t.ready.url, t.ready.key, stream, t.child, rate));
    }
  } finally {
    for (const t of targets) t.rssMb = await stopChild(t.child).catch(() => Number.NaN);
    await worker.terminate();
    await scratch?.drop();
  }

  const out: string[] = [];
  out.push(`gateway bench: ${connections} connections, ${seconds} s per run, node ${process.version}, ${withServices ? 'with' : 'without'} PostgreSQL + Redis`, '');
  out.push('| run | req/s | p50 | p99 | server CPU/req | requests | failures |', '|---|---:|---:|---:|---:|---:|---:|');
  for (const r of [...rows, ...halfRows]) {
    out.push(`| ${r.name} | ${rps(r.rps)} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.cpuUs === null ? '—' : `${Math.round(r.cpuUs)} µs`} | ${r.requests} | ${r.failures} |`);
  }
  out.push('');
  const find = (list: Row[], name: string): Row | undefined => list.find((r) => r.name.startsWith(name));
  for (const t of targets.filter((x) => x.name !== 'baseline proxy')) {
    for (const [kind, target] of [
      ['JSON', 0.75],
      ['stream', 0.85],
    ] as const) {
      const gh = find(rows, `${t.name}, ${kind}`);
      const bl = find(rows, `baseline proxy, ${kind}`);
      const ratio = gh && bl ? gh.rps / bl.rps : Number.NaN;
      const ghHalf = find(halfRows, `${t.name}, ${kind} @`);
      const blHalf = find(halfRows, `baseline proxy, ${kind} @`);
      const added = ghHalf && blHalf ? ghHalf.p99 - blHalf.p99 : Number.NaN;
      // When Gatehouse cannot keep up with the fixed rate, its p99 is a queue, not an added latency.
      const keptUp = ghHalf && blHalf ? ghHalf.rps >= 0.98 * blHalf.rps : false;
      const cpuRatio = gh?.cpuUs && bl?.cpuUs ? bl.cpuUs / gh.cpuUs : Number.NaN;
      out.push(
        `${t.name}, ${kind}: ratio ${ratio.toFixed(2)} (target >= ${target}: ${ratio >= target ? 'met' : 'NOT met'}; server CPU per request baseline/Gatehouse ${cpuRatio.toFixed(2)}); ` +
          `added p99 at half the baseline's peak ${added} ms (target < 2 ms: ${!keptUp ? 'NOT met, Gatehouse did not keep up with the rate' : added < 2 ? 'met' : 'NOT met'})`,
      );
    }
    out.push(
      `${t.name}: peak RSS ${t.rssMb} MB, ${t.ready.readyRssMb} MB when ready before any load (target < ${RSS_LIMIT_MB} MB: ${(t.rssMb ?? Infinity) < RSS_LIMIT_MB ? 'met' : 'NOT met'})`,
    );
  }
  const baseline = targets.find((x) => x.name === 'baseline proxy');
  out.push(`baseline proxy: peak RSS ${baseline?.rssMb} MB, ${baseline?.ready.readyRssMb} MB when ready`, '');
  process.stdout.write(out.join('\n'));
  return [...rows, ...halfRows].some((r) => r.failures > 0) ? 1 : 0;
}

const role = process.env[ROLE_ENV];
if ((workerData as { role?: string } | null)?.role === WORKER_ROLE) {
  const vendor = await startMockVendor({ openaiKey: BENCH_KEY });
  // The mock keeps every request for tests' assertions; a bench would grow it without bound.
  setInterval(() => vendor.reset(), 1_000).unref();
  parentPort?.postMessage(vendor.url);
} else if (role === 'baseline' || role === 'gatehouse') {
  (role === 'baseline' ? runBaselineChild() : runGatehouseChild()).catch((err: unknown) => {
    process.stderr.write(`${role}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
} else if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
