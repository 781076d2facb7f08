/**
 * Edge benchmark: what the full Gatehouse edge costs per request, compared with bare Fastify.
 *
 *   npm run bench:edge
 *
 * One process, loopback only. The two servers run in a worker thread (one event loop of their
 * own); autocannon runs on the main thread, so load generation and serving do not share a thread:
 *
 * - baseline: bare Fastify 5, no plugins, logger off, `GET /healthz` -> `{ status: 'ok' }`;
 * - full: a Gatehouse node from `startNode` (in-memory PGlite, memory kv), the real JSON logger at
 *   level info writing to a sink that drops lines (formatting is paid, the terminal is not), rate
 *   limiting enabled (ops limits raised so nothing is refused), metrics, security headers, CORS,
 *   request ids, the zod response serializer. Same route, `GET /healthz`.
 *
 * Sequence: a warm-up run against each (discarded), then measured runs alternating
 * baseline, full, baseline, full; the figures are the mean of each pair. Exits non-zero when any
 * request errored, timed out or was not 2xx, or when the servers did not answer as expected.
 * The ratio target (full/baseline >= 0.6) is reported, not enforced.
 *
 * Knobs (environment): BENCH_SECONDS (measured run, default 8), BENCH_WARMUP_SECONDS (default 2),
 * BENCH_CONNECTIONS (default 10), BENCH_ROUNDS (measured pairs, default 2).
 */
import { Writable } from 'node:stream';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { startNode } from '../src/cli/runtime.ts';
import { loadConfig, secretValues } from '../src/config/load.ts';
import { createLogger } from '../src/server/logger.ts';
import { runWithStartFlags } from './env.ts';

const TARGET_RATIO = 0.6;

type Target = 'baseline' | 'full';

interface Ready {
  type: 'ready';
  urls: Record<Target, string>;
  startupMs: number;
}
interface Stats {
  type: 'stats';
  logLines: number;
  logBytes: number;
  metricsRequests: number;
}
/** CPU time of the server thread so far (µs), user + system. */
interface Cpu {
  type: 'cpu';
  micros: number;
}
interface Closed {
  type: 'closed';
  closeMs: number;
}
type FromWorker = Ready | Stats | Cpu | Closed | { type: 'error'; message: string };
type ToWorker = { type: 'stats' } | { type: 'cpu' } | { type: 'close' };

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Worker thread: the two servers

async function serve(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('serve() runs in a worker');
  const t0 = performance.now();

  const baseline = Fastify({ logger: false });
  baseline.get('/healthz', async () => ({ status: 'ok' }));
  const baselineUrl = await baseline.listen({ host: '127.0.0.1', port: 0 });

  const { config } = loadConfig({
    env: {},
    cwd: '/nonexistent',
    overrides: {
      'server.host': '127.0.0.1',
      'server.port': 0,
      'log.level': 'info',
      'rateLimit.enabled': true,
      'rateLimit.categories': {
        ops: { ip: { limit: 100_000_000, windowSeconds: 60 }, principal: { limit: 100_000_000, windowSeconds: 60 } },
      },
    },
  });
  // pino writes one line per write(); counting them proves the lines were formatted.
  let logLines = 0;
  let logBytes = 0;
  const sink = new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      logLines++;
      logBytes += chunk.length;
      callback();
    },
  });
  const logger = createLogger({ level: config.log.level, destination: sink, knownSecrets: () => secretValues(config) });
  // defaultMetrics as `gatehouse start` has it (src/cli/start.ts).
  const node = await startNode({ config, logger, inMemory: true, defaultMetrics: true });
  const fullUrl = await node.app.listen({ host: '127.0.0.1', port: 0 });

  port.postMessage({ type: 'ready', urls: { baseline: baselineUrl, full: fullUrl }, startupMs: performance.now() - t0 } satisfies Ready);

  port.on('message', (msg: ToWorker) => {
    void (async () => {
      if (msg.type === 'cpu') {
        const usage = process.threadCpuUsage();
        port.postMessage({ type: 'cpu', micros: usage.user + usage.system } satisfies Cpu);
      } else if (msg.type === 'stats') {
        const metric = await node.app.gatehouse.metrics.requests.get();
        const metricsRequests = metric.values.filter((v) => v.labels.route === '/healthz').reduce((sum, v) => sum + v.value, 0);
        port.postMessage({ type: 'stats', logLines, logBytes, metricsRequests } satisfies Stats);
      } else if (msg.type === 'close') {
        const c0 = performance.now();
        await baseline.close();
        await node.close();
        port.postMessage({ type: 'closed', closeMs: performance.now() - c0 } satisfies Closed);
        // Nothing else: the thread ends once the servers, kv and storage hold no handles.
        port.close();
      }
    })().catch((err: unknown) => {
      port.postMessage({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Main thread: load generation and the report

interface RunResult {
  target: Target;
  measured: boolean;
  requests: number;
  seconds: number;
  rps: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  mismatches: number;
  statusCodes: Record<string, number>;
  /** Exact latencies (ms) of this run, from autocannon's per-response timing. */
  latencies: Float64Array;
  bytesPerResponse: number;
  /** Server-thread CPU time per request (µs); unlike req/s, barely moved by other load on the machine. */
  cpuPerRequest: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

function concatSorted(parts: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out.sort();
}

async function load(
  target: Target,
  url: string,
  seconds: number,
  connections: number,
  measured: boolean,
  cpu: () => Promise<number>,
): Promise<RunResult> {
  const cpuBefore = await cpu();
  let samples = new Float64Array(1 << 18);
  let count = 0;
  let instance: autocannon.Instance | undefined;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon({ url: `${url}/healthz`, connections, pipelining: 1, duration: seconds, timeout: 5 }, (err, result) =>
      err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(result),
    );
  });
  instance?.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode < 200 || statusCode > 299) return;
    if (count === samples.length) {
      const bigger = new Float64Array(samples.length * 2);
      bigger.set(samples);
      samples = bigger;
    }
    samples[count++] = responseTime;
  });
  const result = await done;
  const cpuAfter = await cpu();
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stat.count ?? 0;
  const requests = result.requests.total;
  return {
    target,
    measured,
    requests,
    seconds: result.duration,
    rps: requests / result.duration,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    mismatches: result.mismatches,
    statusCodes,
    latencies: samples.slice(0, count).sort(),
    bytesPerResponse: result['2xx'] > 0 ? result.throughput.total / result['2xx'] : 0,
    cpuPerRequest: requests > 0 ? (cpuAfter - cpuBefore) / requests : Number.NaN,
  };
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtMs(n: number): string {
  return `${n.toFixed(2)} ms`;
}

async function checkResponses(urls: Record<Target, string>): Promise<string[]> {
  const problems: string[] = [];
  for (const target of ['baseline', 'full'] as const) {
    const res = await fetch(`${urls[target]}/healthz`);
    const body = await res.text();
    if (res.status !== 200 || body !== '{"status":"ok"}') problems.push(`${target}: GET /healthz answered ${res.status} ${body.slice(0, 200)}`);
    if (target === 'full') {
      // Proof the request went through the edge: request id, helmet, our headers, the limiter.
      const expected: Record<string, RegExp> = {
        'x-request-id': /^[0-9a-f-]{36}$/,
        'content-security-policy': /default-src 'none'/,
        'permissions-policy': /camera=\(\)/,
        'cache-control': /^no-store$/,
        'ratelimit-policy': /^"ip-ops";q=100000000;w=60$/,
        ratelimit: /^"ip-ops";r=\d+;t=\d+$/,
      };
      for (const [name, re] of Object.entries(expected)) {
        const value = res.headers.get(name);
        if (value === null || !re.test(value)) problems.push(`full: header ${name} is ${value === null ? 'missing' : `"${value}"`}`);
      }
    }
  }
  return problems;
}

async function main(): Promise<number> {
  const measuredSeconds = envInt('BENCH_SECONDS', 8);
  const warmupSeconds = envInt('BENCH_WARMUP_SECONDS', 2);
  const connections = envInt('BENCH_CONNECTIONS', 10);
  const rounds = envInt('BENCH_ROUNDS', 2);
  const t0 = performance.now();

  const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'server' } });
  const inbox: FromWorker[] = [];
  const waiters: ((m: FromWorker) => void)[] = [];
  let workerFailure: Error | undefined;
  worker.on('message', (m: FromWorker) => {
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  worker.once('error', (err) => {
    workerFailure = err;
  });
  const next = async <T extends FromWorker['type']>(type: T): Promise<Extract<FromWorker, { type: T }>> => {
    const m =
      inbox.shift() ??
      (await Promise.race([
        new Promise<FromWorker>((resolve) => waiters.push(resolve)),
        exited.then((code): FromWorker => ({ type: 'error', message: `server thread exited (${code}) ${workerFailure?.stack ?? ''}` })),
      ]));
    if (m.type === 'error') throw new Error(m.message);
    if (m.type !== type) throw new Error(`expected ${type} from the server thread, got ${m.type}`);
    return m as Extract<FromWorker, { type: T }>;
  };

  const ready = await next('ready');
  const cpu = async (): Promise<number> => {
    worker.postMessage({ type: 'cpu' } satisfies ToWorker);
    return (await next('cpu')).micros;
  };
  console.log(`edge benchmark: GET /healthz, ${connections} connections, pipelining 1, warm-up ${warmupSeconds} s, ${rounds} x ${measuredSeconds} s measured per target`);
  console.log(`node ${process.version}, servers started in ${fmtInt(ready.startupMs)} ms (baseline ${ready.urls.baseline}, full ${ready.urls.full})`);

  const problems = await checkResponses(ready.urls);

  const runs: RunResult[] = [];
  const plan: { target: Target; seconds: number; measured: boolean }[] = [
    { target: 'baseline', seconds: warmupSeconds, measured: false },
    { target: 'full', seconds: warmupSeconds, measured: false },
  ];
  for (let i = 0; i < rounds; i++) {
    plan.push({ target: 'baseline', seconds: measuredSeconds, measured: true }, { target: 'full', seconds: measuredSeconds, measured: true });
  }
  console.log('');
  console.log('run                  req/s     requests   p50        p99        bytes/resp  server CPU/req  errors  non-2xx');
  for (const step of plan) {
    const r = await load(step.target, ready.urls[step.target], step.seconds, connections, step.measured, cpu);
    runs.push(r);
    const label = `${step.measured ? 'measured' : 'warm-up '} ${step.target.padEnd(8)}`;
    console.log(
      `${label}  ${fmtInt(r.rps).padStart(8)}  ${fmtInt(r.requests).padStart(9)}   ${fmtMs(percentile(r.latencies, 50)).padEnd(9)}  ${fmtMs(percentile(r.latencies, 99)).padEnd(9)}  ${r.bytesPerResponse.toFixed(0).padStart(10)}  ${`${r.cpuPerRequest.toFixed(1)} µs`.padStart(14)}  ${String(r.errors + r.timeouts).padStart(6)}  ${String(r.non2xx).padStart(7)}`,
    );
  }

  worker.postMessage({ type: 'stats' } satisfies ToWorker);
  const stats = await next('stats');
  worker.postMessage({ type: 'close' } satisfies ToWorker);
  const closed = await next('closed');
  const exitCode = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(resolve, 5000, 'hung').unref())]);
  if (exitCode === 'hung') {
    problems.push('the server thread did not exit within 5 s of closing (a handle is left open)');
    await worker.terminate();
  } else if (exitCode !== 0) {
    problems.push(`the server thread exited with code ${exitCode}`);
  }

  // Every run counts, warm-ups included: an error anywhere fails the benchmark.
  for (const r of runs) {
    if (r.errors > 0 || r.timeouts > 0 || r.non2xx > 0 || r.mismatches > 0) {
      problems.push(
        `${r.measured ? 'measured' : 'warm-up'} ${r.target}: errors ${r.errors}, timeouts ${r.timeouts}, non-2xx ${r.non2xx}, mismatches ${r.mismatches}, status codes ${JSON.stringify(r.statusCodes)}`,
      );
    }
  }
  const fullRequests = runs.filter((r) => r.target === 'full').reduce((n, r) => n + r.requests, 0);
  // +1: the check request. Lines beyond requests are startup lines; fewer means requests went unlogged.
  if (stats.logLines < fullRequests + 1) problems.push(`full: only ${stats.logLines} log lines for ${fullRequests + 1} requests`);
  if (stats.metricsRequests < fullRequests + 1) problems.push(`full: metrics counted ${stats.metricsRequests} requests, sent ${fullRequests + 1}`);

  const summary = (target: Target): { rps: number; p50: number; p99: number; bytes: number; cpu: number } => {
    const measured = runs.filter((r) => r.measured && r.target === target);
    const all = concatSorted(measured.map((r) => r.latencies));
    return {
      rps: measured.reduce((s, r) => s + r.rps, 0) / measured.length,
      p50: percentile(all, 50),
      p99: percentile(all, 99),
      bytes: measured.reduce((s, r) => s + r.bytesPerResponse, 0) / measured.length,
      cpu: measured.reduce((s, r) => s + r.cpuPerRequest, 0) / measured.length,
    };
  };
  const base = summary('baseline');
  const full = summary('full');
  const ratio = full.rps / base.rps;

  console.log('');
  console.log(`baseline (bare Fastify)  ${fmtInt(base.rps).padStart(7)} req/s   p50 ${fmtMs(base.p50)}   p99 ${fmtMs(base.p99)}   (mean of ${rounds} runs, latencies pooled)`);
  console.log(`full (Gatehouse node)    ${fmtInt(full.rps).padStart(7)} req/s   p50 ${fmtMs(full.p50)}   p99 ${fmtMs(full.p99)}`);
  console.log(`ratio full/baseline      ${ratio.toFixed(2)}   target >= ${TARGET_RATIO.toFixed(2)}: ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'}`);
  console.log(
    `server-thread CPU per request: baseline ${base.cpu.toFixed(1)} µs, full ${full.cpu.toFixed(1)} µs (the edge adds ${(full.cpu - base.cpu).toFixed(1)} µs); CPU ratio baseline/full ${(base.cpu / full.cpu).toFixed(2)}`,
  );
  console.log(
    `full stack checks: ${stats.logLines} log lines (${(stats.logBytes / Math.max(1, stats.logLines)).toFixed(0)} bytes avg) and ${stats.metricsRequests} metric counts for ${fullRequests + 1} requests; closed in ${fmtInt(closed.closeMs)} ms; total ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  if (problems.length > 0) {
    console.error('');
    for (const p of problems) console.error(`FAILED: ${p}`);
    return 1;
  }
  return 0;
}

if (isMainThread) {
  // Measured as `npm start` runs a node: with its Node flags (see runWithStartFlags in env.ts).
  await runWithStartFlags();
  // The whole run is killed (exit 2) past this: 58 s with the default knobs, more if they ask for it.
  const planned = 2 * envInt('BENCH_WARMUP_SECONDS', 2) + 2 * envInt('BENCH_ROUNDS', 2) * envInt('BENCH_SECONDS', 8);
  const DEADLINE_MS = Math.max(58_000, (planned + 30) * 1000);
  const deadline = setTimeout(() => {
    console.error(`FAILED: the benchmark did not finish within ${DEADLINE_MS / 1000} s`);
    process.exit(2);
  }, DEADLINE_MS);
  deadline.unref();
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error('FAILED:', err);
      process.exitCode = 1;
      // The server thread may still be holding the process open.
      process.exit();
    },
  );
} else if ((workerData as { role?: string } | null)?.role === 'server') {
  serve().catch((err: unknown) => {
    parentPort?.postMessage({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  });
}
