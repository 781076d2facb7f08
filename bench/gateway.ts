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
 * Runs, each target after a 1 s warm-up that is discarded, for BENCH_SECONDS (default 5) in
 * BENCH_ROUNDS (default 3) slices taken in turn with the other targets (the first one moving each
 * round), so the shared machine's slow and fast moments fall on every target alike; req/s, p50 and
 * p99 are the medians of the slices, CPU per request is over all of them:
 * 1. peak: every target, JSON (`POST /v1/chat/completions`) and stream (the same with
 *    `stream: true`, 9 SSE events); Gatehouse/baseline ratios of req/s;
 * 2. latency at half of the baseline's peak rate (autocannon's overallRate), baseline and each
 *    Gatehouse: the p99 Gatehouse adds. autocannon's latencies have 1 ms resolution.
 * Every server child, the baseline's and Gatehouse's alike, runs with exactly the flags `npm start`
 * gives a node (read from package.json's start script: `--liftoff-only --max-semi-space-size=8`), so
 * Gatehouse is measured as users run it and the comparison stays fair; BENCH_NODE_FLAGS adds flags
 * to every child for an experiment (see serverChildFlags in env.ts).
 * Each child reports its peak RSS over its life (start-up included) and from ready on. The load
 * average is printed at the start and the end.
 * Targets (reported, not enforced): ratio >= 0.75 JSON and >= 0.85 stream; added p99 < 2 ms at half
 * the baseline's peak rate; Gatehouse peak RSS < 250 MB. Exits non-zero when a request failed.
 * GATEWAY_BENCH_GUARD=off turns the input guard off for the bench's workspace (its share of a call).
 * Bounded: about 14 x (1 + BENCH_SECONDS) seconds with PostgreSQL + Redis, 10 x without, plus setup.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';
import { createScratchPostgresDatabase } from '../test/support/pg-scratch.ts';
import { envSeconds, serverChildFlags, startScriptFlags } from './env.ts';
import { startBaselineProxy } from './gateway-baseline.ts';
import { startMockVendor } from './mock-upstream.ts';

/** The mock's key: a bench needs no secret, but the mock does check the header. */
const BENCH_KEY = 'bench-upstream-key';
const WORKER_ROLE = 'gateway-bench-upstream';
const ROLE_ENV = 'GATEWAY_BENCH_ROLE';
const RSS_LIMIT_MB = 250;

export type ChildRole = 'baseline' | 'gatehouse';

export interface Ready {
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

/** The mock upstream in a worker thread of this process; resolves with its URL once it listens. */
export async function startUpstreamWorker(): Promise<{ worker: Worker; url: string }> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { role: WORKER_ROLE } });
  const [url] = (await once(worker, 'message')) as [string];
  return { worker, url };
}

export async function load(url: string, key: string, stream: boolean, seconds: number, connections: number, rate?: number): Promise<autocannon.Result> {
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

/**
 * Starts this file as a child in `role` (`extraFlags` go after the usual ones: bench/gateway-profile.ts
 * adds the CPU profiler); resolves when it listens.
 */
export async function startChild(role: ChildRole, env: Record<string, string>, extraFlags: readonly string[] = []): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, ...env, [ROLE_ENV]: role },
    execArgv: [...process.execArgv, ...serverChildFlags(), ...extraFlags],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const [message] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`${role} child exited with ${String(code)} before it was ready`);
    }),
  ])) as [Ready];
  return { child, ready: message };
}

/** The child's CPU time so far (user + system, µs). */
export async function cpuOf(child: ChildProcess): Promise<number> {
  child.send('cpu');
  const [message] = (await once(child, 'message')) as [{ cpuUs: number }];
  return message.cpuUs;
}

/** Asks a child for its peak RSS (MB) over its life and under load, then stops it. */
export async function stopChild(child: ChildProcess): Promise<{ maxRssMb: number; loadRssMb: number }> {
  child.send('stop');
  const [message] = (await once(child, 'message')) as [{ maxRssMb: number; loadRssMb: number }];
  await once(child, 'exit');
  return message;
}

const mb = (bytes: number): number => Math.round(bytes / (1024 * 1024));

/** The peak RSS over the whole life of a child, and since it was ready (i.e. under load only). */
interface PeakRss {
  total(): number;
  sinceReady(): number;
  /** Called once the child is ready: starts the second peak. */
  markReady(): void;
}

/**
 * Samples this process's RSS. Not getrusage's maxRSS: Linux carries a parent's peak across fork and
 * exec, so a child would report the bench's own peak.
 */
function trackPeakRss(): PeakRss {
  let peak = process.memoryUsage.rss();
  let sinceReady = 0;
  let ready = false;
  const sample = (): void => {
    const rss = process.memoryUsage.rss();
    peak = Math.max(peak, rss);
    if (ready) sinceReady = Math.max(sinceReady, rss);
  };
  const timer = setInterval(sample, 50);
  timer.unref();
  return {
    total: () => {
      sample();
      return peak;
    },
    sinceReady: () => {
      sample();
      return sinceReady;
    },
    markReady: () => {
      ready = true;
      sample();
    },
  };
}

function onStop(close: () => Promise<void>, peakRss: PeakRss): void {
  process.on('message', (message) => {
    if (message === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send?.({ cpuUs: user + system });
      return;
    }
    if (message !== 'stop') return;
    const maxRssMb = mb(peakRss.total());
    const loadRssMb = mb(peakRss.sinceReady());
    void close().finally(() => {
      process.send?.({ maxRssMb, loadRssMb }, () => process.exit(0));
    });
  });
}

async function runBaselineChild(): Promise<void> {
  const peakRss = trackPeakRss();
  const proxy = await startBaselineProxy(process.env.GATEWAY_BENCH_UPSTREAM ?? '');
  onStop(() => proxy.close(), peakRss);
  peakRss.markReady();
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
      'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
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
  if (process.env.GATEWAY_BENCH_GUARD === 'off') {
    // The input guard's share: the bench's workspace with the guard off (as an admin can set it).
    const { GUARD, DEFAULT_POLICY } = await import('../src/guard/index.ts');
    await node.use(GUARD).store.savePolicy(org, ws, userId, { ...DEFAULT_POLICY, mode: 'off' });
  }
  if (process.env.GATEWAY_BENCH_BUDGETS === '1') {
    // bench/budget.ts: budgets that apply to every call (org month tokens and cost, workspace and
    // key day tokens: four counters per reservation), never reached.
    const { BUDGETS } = await import('../src/budgets/index.ts');
    const { definitions } = node.use(BUDGETS);
    const keyId = key.slice(key.length - 16);
    const none = { apiKeyId: null, softLimit: null, hardLimit: 1e15 };
    await definitions.set(org, userId, { ...none, workspaceId: null, category: 'ai_tokens', period: 'month' });
    await definitions.set(org, userId, { ...none, workspaceId: null, category: 'ai_cost', period: 'month' });
    await definitions.set(org, userId, { ...none, workspaceId: ws, category: 'ai_tokens', period: 'day' });
    await definitions.set(org, userId, { ...none, workspaceId: ws, apiKeyId: (await node.gateway.keys.list(org, ws))[0]?.id ?? keyId, category: 'ai_tokens', period: 'day' });
  }
  const address = node.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no listening address');
  onStop(async () => {
    await node.gateway.meter.flush();
    const usage = await readUsageReport(node.db, org, monthOf(Date.now()));
    process.stderr.write(`  (${databaseUrl ? 'PostgreSQL + Redis' : 'embedded'}: ${usage.org.requests} calls metered)\n`);
    await node.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, peakRss);
  peakRss.markReady();
  process.send?.({ ready: true, url: `http://127.0.0.1:${address.port}`, key, readyRssMb: mb(process.memoryUsage.rss()) } satisfies Ready);
}

// ---------------------------------------------------------------------------------------------
// Main

const ms = (v: number): string => `${v} ms`;
const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};
const rps = (v: number): string => Math.round(v).toLocaleString('en-US');

async function main(): Promise<number> {
  const seconds = envSeconds('BENCH_SECONDS', 5);
  const raw = process.env.BENCH_CONNECTIONS;
  const connections = raw === undefined || raw === '' ? 32 : Number(raw);
  if (!Number.isInteger(connections) || connections < 1 || connections > 1024) throw new Error('BENCH_CONNECTIONS must be an integer in [1, 1024]');
  const withServices = Boolean(process.env.DATABASE_URL && process.env.REDIS_URL);
  const rawRounds = process.env.BENCH_ROUNDS;
  const rounds = rawRounds === undefined || rawRounds === '' ? 3 : Number(rawRounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) throw new Error('BENCH_ROUNDS must be an integer in [1, 10]');
  const loadAtStart = loadavg();

  const { worker, url: upstream } = await startUpstreamWorker();
  const scratch = withServices ? await createScratchPostgresDatabase(process.env.DATABASE_URL ?? '') : undefined;
  const targets: { name: string; child: ChildProcess; ready: Ready; rss?: { maxRssMb: number; loadRssMb: number } }[] = [];
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
    type Target = { name: string; url: string; key: string; child?: ChildProcess };
    const all: Target[] = [{ name: 'upstream direct', url: upstream, key: BENCH_KEY }, ...targets.map((t) => ({ name: t.name, url: t.ready.url, key: t.ready.key, child: t.child }))];
    const servers = all.slice(1);
    // Each target's time is cut in `rounds` slices run in turn (the first one moving each round),
    // so that the machine's slower and faster moments fall on every target alike.
    const measureAll = async (list: Target[], stream: boolean, rate?: number): Promise<Row[]> => {
      const kind = stream ? 'stream' : 'JSON';
      for (const t of list) await load(t.url, t.key, stream, 1, connections, rate); // warm-up, discarded
      const acc = list.map(() => ({ rps: [] as number[], p50: [] as number[], p99: [] as number[], requests: 0, failures: 0, cpuUs: 0 }));
      for (let round = 0; round < rounds; round++) {
        for (let j = 0; j < list.length; j++) {
          const i = (j + round) % list.length;
          const t = list[i] as Target;
          const a = acc[i] as (typeof acc)[number];
          const before = t.child ? await cpuOf(t.child) : 0;
          const r = await load(t.url, t.key, stream, seconds / rounds, connections, rate);
          if (t.child) a.cpuUs += (await cpuOf(t.child)) - before;
          a.rps.push(r.requests.total / r.duration);
          a.p50.push(r.latency.p50);
          a.p99.push(r.latency.p99);
          a.requests += r.requests.total;
          a.failures += r.errors + r.timeouts + r.non2xx;
        }
      }
      return list.map((t, i) => {
        const a = acc[i] as (typeof acc)[number];
        return {
          name: `${t.name}, ${kind}${rate ? ` @ ${rps(rate)}/s` : ''}`,
          rps: median(a.rps),
          p50: median(a.p50),
          p99: median(a.p99),
          requests: a.requests,
          failures: a.failures,
          cpuUs: t.child ? a.cpuUs / Math.max(1, a.requests) : null,
        };
      });
    };
    for (const stream of [false, true]) rows.push(...(await measureAll(all, stream)));
    for (const stream of [false, true]) {
      const kind = stream ? 'stream' : 'JSON';
      const peak = rows.find((r) => r.name === `baseline proxy, ${kind}`)?.rps ?? 0;
      halfRows.push(...(await measureAll(servers, stream, Math.max(1, Math.floor(peak / 2)))));
    }
  } finally {
    for (const t of targets) t.rss = await stopChild(t.child).catch(() => ({ maxRssMb: Number.NaN, loadRssMb: Number.NaN }));
    await worker.terminate();
    await scratch?.drop();
  }

  const out: string[] = [];
  const loads = (l: number[]): string => l.map((v) => v.toFixed(2)).join(' ');
  out.push(
    `gateway bench: ${connections} connections, ${seconds} s per target and run in ${rounds} interleaved rounds (medians shown), node ${process.version}, ` +
      `server flags "${serverChildFlags().join(' ')}" (npm start's: "${startScriptFlags().join(' ')}"), ${withServices ? 'with' : 'without'} PostgreSQL + Redis; load average ${loads(loadAtStart)} at the start, ${loads(loadavg())} at the end`,
    '',
  );
  if (loadAtStart[0] !== undefined && loadAtStart[0] > cpus().length) {
    out.push(`WARNING: the load average (${loads(loadAtStart)}) was above the ${cpus().length} CPUs when the bench started: other work shared the machine, and req/s, latencies and their ratios are unreliable. CPU per request is the steadier figure.`, '');
  }
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
          `added p99 at half the baseline's peak ${added} ms (target < 2 ms: ${
            !keptUp
              ? 'NOT met, Gatehouse did not keep up with the rate'
              : added < 0
                ? "not shown: below the baseline's own p99, which is the machine's jitter"
                : added < 2
                  ? 'met'
                  : 'NOT met'
          })`,
      );
    }
    out.push(
      `${t.name}: peak RSS ${t.rss?.maxRssMb} MB over its life (start-up included), ${t.rss?.loadRssMb} MB from ready on (under load), ${t.ready.readyRssMb} MB when ready ` +
        `(target < ${RSS_LIMIT_MB} MB, on the peak over its life: ${(t.rss?.maxRssMb ?? Infinity) < RSS_LIMIT_MB ? 'met' : 'NOT met'}; under load: ${(t.rss?.loadRssMb ?? Infinity) < RSS_LIMIT_MB ? 'met' : 'NOT met'})`,
    );
  }
  const baseline = targets.find((x) => x.name === 'baseline proxy');
  out.push(`baseline proxy: peak RSS ${baseline?.rss?.maxRssMb} MB over its life, ${baseline?.rss?.loadRssMb} MB from ready on, ${baseline?.ready.readyRssMb} MB when ready`, '');
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
