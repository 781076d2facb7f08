/**
 * Where the gateway's CPU goes (`npm run bench:gateway-profile`), loopback only, bounded in time.
 *
 * `npm run bench:gateway` shows that Gatehouse serves fewer calls per second than the bare undici
 * passthrough and that the ratio follows the server's CPU per request. This bench says what that
 * CPU is spent on, for the baseline proxy and for Gatehouse on the embedded default, side by side:
 * each server runs in a child process under V8's sampling profiler (`--cpu-prof`) while autocannon
 * sends `POST /v1/chat/completions` at a fixed rate (BENCH_RATE, default 1,500 calls/s, 32
 * connections), JSON and then `stream: true`. The children are those of bench/gateway.ts, with the
 * same flags and the same Gatehouse setup (key auth, both rate limits, the monthly limit, routing,
 * metering and the scrubbed log line, all on).
 *
 * The samples taken during the measured BENCH_SECONDS (default 6, after a 2 s warm-up) are summed
 * by function and sorted into owners by the source they run in (see ownerOf): Node core and native
 * code, undici, WebAssembly, Fastify and its plugins, the edge (src/server and its parsers),
 * logging, the gateway (src/gateway, the kv counters, opossum), the garbage collector. Printed per
 * call, in µs: each owner for both servers and what Gatehouse adds; the total against the server
 * CPU per call measured by process.cpuUsage() (the profile sees most of it, not the kernel's part);
 * the CPU per call the ratio targets of bench:gateway allow Gatehouse (the baseline's sampled CPU
 * divided by 0.75 and by 0.85); and Gatehouse's functions with the most self time outside Node core.
 *
 * A fixed rate, not full speed: both servers do the same work per second, so their figures per call
 * compare directly. Sampled self time has the profiler's noise (about 1 sample per 1 ms per thread
 * at the default interval, i.e. thousands per run) and the machine's; repeat a run before reading a
 * difference of a few µs. Knobs: BENCH_RATE, BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_NODE_FLAGS.
 * Bounded: 4 runs of 2 + BENCH_SECONDS seconds, plus start-up (about 45 s). Exits non-zero when a
 * call failed.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envSeconds } from './env.ts';
import { packageOf } from '../test/support/package-of.ts';
import { cpuOf, load, startChild, startUpstreamWorker, stopChild, type ChildRole } from './gateway.ts';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const FASTIFY = new Set(['fastify', 'find-my-way', 'avvio', 'light-my-request', 'fast-json-stringify', 'fastify-plugin', 'fast-querystring', 'fastify-type-provider-zod', 'toad-cache', 'process-warning', 'abstract-logging', 'rfdc', 'fast-uri', 'content-type', 'ajv', 'cookie', 'proxy-addr', 'forwarded', 'ipaddr.js']);
const LOGGING = new Set(['pino', 'sonic-boom', 'pino-std-serializers', 'thread-stream', 'quick-format-unescaped', 'on-exit-leak-free', 'safe-stable-stringify', 'atomic-sleep', 'real-require']);
const EDGE = new Set(['secure-json-parse', 'zod', 'prom-client', 'tdigest', 'bintrees']);

/** Who a sampled function belongs to. */
function ownerOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'garbage collector';
  const pkg = packageOf(url)?.name ?? null;
  if (pkg !== null) {
    if (FASTIFY.has(pkg) || pkg.startsWith('@fastify/')) return 'Fastify and its plugins';
    if (LOGGING.has(pkg)) return 'logging (pino, scrubbing)';
    if (EDGE.has(pkg)) return 'edge (src/server, body parser, validation, metrics)';
    if (pkg === 'undici') return 'undici (the provider client)';
    if (pkg === 'opossum') return 'gateway (src/gateway, kv counters, breaker)';
    if (pkg === '@electric-sql/pglite') return 'embedded database (PGlite, src/store)';
    return 'other packages';
  }
  if (url.includes('/src/server/logger.ts')) return 'logging (pino, scrubbing)';
  if (url.includes('/src/server/')) return 'edge (src/server, body parser, validation, metrics)';
  if (url.includes('/src/gateway/') || url.includes('/src/store/kv/')) return 'gateway (src/gateway, kv counters, breaker)';
  if (url.includes('/src/store/')) return 'embedded database (PGlite, src/store)';
  if (url.includes('/src/')) return 'other Gatehouse code';
  if (url.includes('/bench/')) return 'the bench child itself';
  if (url.startsWith('wasm://') || functionName.startsWith('js-to-wasm') || functionName.startsWith('wasm-to-js')) return "WebAssembly (undici's HTTP parser; PGlite)";
  return 'Node core and native code (http, streams, sockets, timers)';
}

interface Profiled {
  /** Self time per owner in the window, µs. */
  owners: Map<string, number>;
  /** Self time per function (outside Node core) in the window, µs. */
  functions: Map<string, number>;
  busyUs: number;
  windowUs: number;
}

/** Sums the samples of `profile` taken in [fromUs, toUs] (CLOCK_MONOTONIC µs, as V8 stamps them). */
function summarize(profile: CpuProfile, fromUs: number, toUs: number): Profiled {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const owners = new Map<string, number>();
  const functions = new Map<string, number>();
  let busyUs = 0;
  let t = profile.startTime;
  let first = Number.NaN;
  let last = Number.NaN;
  for (let i = 0; i < profile.samples.length - 1; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) continue;
    if (Number.isNaN(first)) first = t;
    last = t;
    const frame = byId.get(profile.samples[i] ?? -1);
    if (!frame) continue;
    const owner = ownerOf(frame);
    if (owner === 'idle') continue;
    // A sample stands for the time until the next one.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    busyUs += dt;
    owners.set(owner, (owners.get(owner) ?? 0) + dt);
    if (!owner.startsWith('Node core') && owner !== 'garbage collector') {
      const where = frame.url.replace(/^.*\/node_modules\//, '').replace(/^.*?\/(src|bench)\//, '$1/');
      const name = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`;
      functions.set(name, (functions.get(name) ?? 0) + dt);
    }
  }
  return { owners, functions, busyUs, windowUs: Number.isNaN(first) ? 0 : last - first };
}

interface Run {
  role: ChildRole;
  stream: boolean;
  calls: number;
  failures: number;
  cpuUs: number;
  profile: Profiled;
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

async function profileRun(role: ChildRole, stream: boolean, upstream: string, rate: number, seconds: number, connections: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-gateway-profile-'));
  try {
    const { child, ready } = await startChild(role, { GATEWAY_BENCH_UPSTREAM: upstream }, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    let result: Awaited<ReturnType<typeof load>>;
    let cpuUs: number;
    let from: number;
    let to: number;
    try {
      await load(ready.url, ready.key, stream, 2, connections, rate); // warm-up, not counted
      const before = await cpuOf(child);
      from = monotonicUs();
      result = await load(ready.url, ready.key, stream, seconds, connections, rate);
      to = monotonicUs();
      cpuUs = (await cpuOf(child)) - before;
    } finally {
      await stopChild(child);
    }
    // The profile is written when the child exits.
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`the ${role} child wrote no CPU profile`);
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const summary = summarize(profile, from, to);
    if (summary.windowUs < 0.8 * (to - from)) {
      throw new Error(`the ${role} profile covers ${Math.round(summary.windowUs / 1000)} ms of the ${Math.round((to - from) / 1000)} ms measured: its clock does not match this process's`);
    }
    const calls = result.requests.total;
    return { role, stream, calls, failures: result.errors + result.timeouts + result.non2xx, cpuUs: cpuUs / Math.max(1, calls), profile: summary };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const us = (v: number): string => v.toFixed(1);

function report(baseline: Run, gatehouse: Run): string[] {
  const per = (run: Run, owner: string): number => (run.profile.owners.get(owner) ?? 0) / Math.max(1, run.calls);
  const owners = [...new Set([...baseline.profile.owners.keys(), ...gatehouse.profile.owners.keys()])].sort((a, b) => per(gatehouse, b) - per(gatehouse, a));
  const kind = gatehouse.stream ? 'stream' : 'JSON';
  const base = baseline.profile.busyUs / Math.max(1, baseline.calls);
  const gh = gatehouse.profile.busyUs / Math.max(1, gatehouse.calls);
  const out = [
    `### ${kind}: ${baseline.calls} calls to the baseline, ${gatehouse.calls} to Gatehouse`,
    '',
    '| owner | baseline µs/call | Gatehouse µs/call | added |',
    '|---|---:|---:|---:|',
  ];
  for (const owner of owners) out.push(`| ${owner} | ${us(per(baseline, owner))} | ${us(per(gatehouse, owner))} | ${us(per(gatehouse, owner) - per(baseline, owner))} |`);
  out.push(`| **sampled, all owners** | **${us(base)}** | **${us(gh)}** | **${us(gh - base)}** |`);
  out.push(`| server CPU per call (process.cpuUsage) | ${us(baseline.cpuUs)} | ${us(gatehouse.cpuUs)} | ${us(gatehouse.cpuUs - baseline.cpuUs)} |`, '');
  out.push(
    `CPU per call the bench:gateway targets allow Gatehouse, from the baseline's sampled ${us(base)} µs: ratio 0.75 -> ${us(base / 0.75)} µs (${us(base / 0.75 - base)} added), ratio 0.85 -> ${us(base / 0.85)} µs (${us(base / 0.85 - base)} added). Gatehouse adds ${us(gh - base)}.`,
    '',
    `Gatehouse's functions with the most self time outside Node core and the garbage collector (µs per call):`,
    '',
  );
  const top = [...gatehouse.profile.functions].sort((a, b) => b[1] - a[1]).slice(0, 15);
  for (const [name, v] of top) out.push(`- ${us(v / Math.max(1, gatehouse.calls))} ${name}`);
  out.push('');
  return out;
}

async function main(): Promise<number> {
  const seconds = envSeconds('BENCH_SECONDS', 6);
  const rawRate = process.env.BENCH_RATE;
  const rate = rawRate === undefined || rawRate === '' ? 1500 : Number(rawRate);
  if (!Number.isInteger(rate) || rate < 10 || rate > 100_000) throw new Error('BENCH_RATE must be an integer in [10, 100000]');
  const rawConnections = process.env.BENCH_CONNECTIONS;
  const connections = rawConnections === undefined || rawConnections === '' ? 32 : Number(rawConnections);
  if (!Number.isInteger(connections) || connections < 1 || connections > 1024) throw new Error('BENCH_CONNECTIONS must be an integer in [1, 1024]');

  const { worker, url } = await startUpstreamWorker();
  const out = [`gateway profile: ${rate} calls/s for ${seconds} s per run, ${connections} connections, node ${process.version}, Gatehouse on the embedded default`, ''];
  let failures = 0;
  try {
    for (const stream of [false, true]) {
      const baseline = await profileRun('baseline', stream, url, rate, seconds, connections);
      const gatehouse = await profileRun('gatehouse', stream, url, rate, seconds, connections);
      failures += baseline.failures + gatehouse.failures;
      out.push(...report(baseline, gatehouse));
    }
  } finally {
    await worker.terminate();
  }
  if (failures > 0) out.push(`FAILED: ${failures} calls failed or were not 2xx`);
  process.stdout.write(`${out.join('\n')}\n`);
  return failures > 0 ? 1 : 0;
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
