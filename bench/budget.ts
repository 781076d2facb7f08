/**
 * Budget benchmark (`npm run bench:budget`), loopback only, bounded in time: what reserve + settle
 * (ABUSE-2) cost a gateway call. The same Gatehouse child as `bench:gateway` (bench/gateway.ts)
 * runs twice per storage: without budgets (the budgets step finds none and returns), and with four
 * budgets that apply to every call and are never reached (org month tokens and cost, workspace and
 * key day tokens: a ledger row written and closed, one atomic kv step to reserve, one to settle).
 * On the embedded default (PGlite, memory kv) and, when DATABASE_URL and REDIS_URL are set, on
 * PostgreSQL + Redis. JSON chat calls, BENCH_CONNECTIONS (default 32), BENCH_SECONDS (default 5) per
 * target in BENCH_ROUNDS (default 3) interleaved slices after a 1 s warm-up; req/s are medians of
 * the slices. Reports the with/without ratio per storage (target: overhead under 5 %) and the
 * server CPU per call. Exits non-zero when a request failed.
 */
import type { ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { createScratchPostgresDatabase } from '../test/support/pg-scratch.ts';
import { envSeconds } from './env.ts';
import { cpuOf, load, startChild, startUpstreamWorker, stopChild } from './gateway.ts';

interface Target {
  name: string;
  child: ChildProcess;
  url: string;
  key: string;
  rps: number[];
  cpuUs: number;
  requests: number;
  failures: number;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

async function main(): Promise<number> {
  const seconds = envSeconds('BENCH_SECONDS', 5);
  const connections = Number(process.env.BENCH_CONNECTIONS || 32);
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const withServices = Boolean(process.env.DATABASE_URL && process.env.REDIS_URL);
  const loadAtStart = loadavg();
  const { worker, url: upstream } = await startUpstreamWorker();
  const scratches = withServices ? [await createScratchPostgresDatabase(process.env.DATABASE_URL ?? ''), await createScratchPostgresDatabase(process.env.DATABASE_URL ?? '')] : [];
  const targets: Target[] = [];
  try {
    const add = async (name: string, env: Record<string, string>): Promise<void> => {
      const { child, ready } = await startChild('gatehouse', { GATEWAY_BENCH_UPSTREAM: upstream, ...env });
      targets.push({ name, child, url: ready.url, key: ready.key, rps: [], cpuUs: 0, requests: 0, failures: 0 });
    };
    await add('embedded, without budgets', {});
    await add('embedded, with budgets', { GATEWAY_BENCH_BUDGETS: '1' });
    if (withServices) {
      const services = (i: number) => ({ GATEWAY_BENCH_DATABASE_URL: scratches[i]?.url ?? '', GATEWAY_BENCH_REDIS_URL: process.env.REDIS_URL ?? '' });
      await add('PostgreSQL + Redis, without budgets', services(0));
      await add('PostgreSQL + Redis, with budgets', { ...services(1), GATEWAY_BENCH_BUDGETS: '1' });
    }
    for (const t of targets) await load(t.url, t.key, false, 1, connections); // warm-up, discarded
    for (let round = 0; round < rounds; round++) {
      for (let j = 0; j < targets.length; j++) {
        const t = targets[(j + round) % targets.length] as Target;
        const before = await cpuOf(t.child);
        const r = await load(t.url, t.key, false, seconds / rounds, connections);
        t.cpuUs += (await cpuOf(t.child)) - before;
        t.rps.push(r.requests.total / r.duration);
        t.requests += r.requests.total;
        t.failures += r.errors + r.timeouts + r.non2xx;
      }
    }
  } finally {
    for (const t of targets) await stopChild(t.child).catch(() => undefined);
    await worker.terminate();
    for (const s of scratches) await s.drop();
  }
  const loads = (l: number[]): string => l.map((v) => v.toFixed(2)).join(' ');
  const out = [
    `budget bench: ${connections} connections, ${seconds} s per target in ${rounds} interleaved rounds (median req/s), node ${process.version}; load average ${loads(loadAtStart)} at the start, ${loads(loadavg())} at the end`,
    '',
    '| run | req/s | server CPU/req | requests | failures |',
    '|---|---:|---:|---:|---:|',
    ...targets.map((t) => `| ${t.name} | ${Math.round(median(t.rps))} | ${Math.round(t.cpuUs / Math.max(1, t.requests))} µs | ${t.requests} | ${t.failures} |`),
    '',
  ];
  for (const storage of ['embedded', 'PostgreSQL + Redis']) {
    const without = targets.find((t) => t.name === `${storage}, without budgets`);
    const withB = targets.find((t) => t.name === `${storage}, with budgets`);
    if (!without || !withB) continue;
    const ratio = median(withB.rps) / median(without.rps);
    const cpu = withB.cpuUs / Math.max(1, withB.requests) - without.cpuUs / Math.max(1, without.requests);
    out.push(`${storage}: with/without budgets ${ratio.toFixed(3)} (overhead ${((1 - ratio) * 100).toFixed(1)} %, target < 5 %: ${ratio > 0.95 ? 'met' : 'NOT met'}); budgets add ${Math.round(cpu)} µs of server CPU per call`);
  }
  process.stdout.write(out.join('\n') + '\n');
  return targets.some((t) => t.failures > 0) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
