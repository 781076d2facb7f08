/**
 * Password benchmark: Argon2id verifications per second with the default parameters, raw against
 * through `verifyPassword`, so the later HTTP login benchmark has a baseline and the module's own
 * overhead is known.
 *
 *   node bench/auth-password.ts        (npm script: bench:auth)
 *
 * One process. The stored hash is made once by `hashPassword(PASSWORD, DEFAULT_ARGON2)`
 * (argon2id, m=19456 KiB, t=2, p=1).
 *
 * - raw: `verify(phc, password)` of @node-rs/argon2 directly, with the password string as is.
 * - module: `verifyPassword(phc, password)`: type and PHC checks, the size limit, NFKC
 *   normalisation, UTF-8 encoding, then the same `verify`.
 *
 * Argon2 runs on libuv's thread pool, so throughput depends on how many verifications are in
 * flight. Two concurrency levels are measured: 1 (the latency of one sign-in) and the machine's
 * available parallelism (what a busy server gets; libuv's pool has 4 threads unless
 * UV_THREADPOOL_SIZE says otherwise). At each level every worker alternates raw and module
 * verifications one by one, timing each, so background load hits both targets alike (block runs
 * drifted by tens of percent on a shared machine). Per target: verifications/s = concurrency /
 * mean latency (Little's law), and the median latency. A short warm-up is discarded. Every
 * verification must return true, so the work cannot be skipped or silently wrong. The pure
 * non-Argon2 work of the module (NFKC + UTF-8 encoding of the password) is timed separately.
 * Exits non-zero on a wrong result or when the whole run exceeds its deadline.
 *
 * Knobs (environment): BENCH_SECONDS (measured time per level, default 6), BENCH_WARMUP_SECONDS
 * (default 0.5), BENCH_CONCURRENCY (the upper level, default os.availableParallelism()).
 * Defaults take about 14 s.
 */
import { verify } from '@node-rs/argon2';
import { availableParallelism, cpus } from 'node:os';
import { DEFAULT_ARGON2, hashPassword, normalizePassword, verifyPassword } from '../src/identity/passwords.ts';

function envNumber(name: string, fallback: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new Error(`${name} must be a number in (0, ${max}], got "${raw}"`);
  return n;
}

const measuredSeconds = envNumber('BENCH_SECONDS', 6, 60);
const warmupSeconds = envNumber('BENCH_WARMUP_SECONDS', 0.5, 30);
const highConcurrency = Math.round(envNumber('BENCH_CONCURRENCY', availableParallelism(), 256));
const levels = [...new Set([1, highConcurrency])];
/** The whole run is stopped (exit 2) past this. */
const deadlineMs = levels.length * (warmupSeconds + measuredSeconds) * 1000 * 1.5 + 15_000;
const deadline = setTimeout(() => {
  console.error(`FAILED: the benchmark did not finish within ${(deadlineMs / 1000).toFixed(0)} s`);
  process.exit(2);
}, deadlineMs);

/** A typical passphrase with a non-ASCII character, so normalisation has real work. */
const PASSWORD = 'correct horse battery staple à la crème';

type Target = 'raw' | 'module';

/** Latencies in ms of each target, with `concurrency` workers alternating raw and module for `seconds`. */
async function run(phc: string, concurrency: number, seconds: number): Promise<Record<Target, number[]>> {
  const ops: Record<Target, () => Promise<boolean>> = {
    raw: () => verify(phc, PASSWORD),
    module: () => verifyPassword(phc, PASSWORD),
  };
  const latencies: Record<Target, number[]> = { raw: [], module: [] };
  const budget = BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  const worker = async (index: number): Promise<void> => {
    // Half the workers start with raw, half with module, so both are equally often in flight together.
    let target: Target = index % 2 === 0 ? 'raw' : 'module';
    while (process.hrtime.bigint() - start < budget) {
      const t0 = process.hrtime.bigint();
      if ((await ops[target]()) !== true) throw new Error(`${target}: a verification of the right password returned false`);
      latencies[target].push(Number(process.hrtime.bigint() - t0) / 1e6);
      target = target === 'raw' ? 'module' : 'raw';
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  return latencies;
}

/** Microseconds per NFKC normalisation + UTF-8 encoding of PASSWORD: the module's own work besides cheap checks. */
function normaliseCostMicros(): number {
  const n = 200_000;
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += Buffer.from(normalizePassword(PASSWORD), 'utf8').length;
  const micros = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  if (sink !== n * Buffer.byteLength(PASSWORD.normalize('NFKC'))) throw new Error('normalisation gave a different length');
  return micros;
}

const fmt = (n: number, digits = 1): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

try {
  const started = performance.now();
  console.log(
    `password benchmark: argon2id verify, m=${DEFAULT_ARGON2.memoryKiB} KiB t=${DEFAULT_ARGON2.timeCost} p=${DEFAULT_ARGON2.parallelism}; ` +
      `concurrency ${levels.join(' and ')}; warm-up ${warmupSeconds} s, then ${measuredSeconds} s per level, raw and module alternating`,
  );
  console.log(
    `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}`,
  );
  const phc = await hashPassword(PASSWORD, DEFAULT_ARGON2);
  console.log(`hash: ${phc.split('$').slice(0, 4).join('$')}$...`);

  console.log('');
  console.log('concurrency  target    verifs   verif/s   mean ms   median ms');
  const summary: { level: number; raw: number; module: number }[] = [];
  for (const level of levels) {
    await run(phc, level, warmupSeconds);
    const latencies = await run(phc, level, measuredSeconds);
    const perSec: Record<Target, number> = { raw: 0, module: 0 };
    for (const target of ['raw', 'module'] as const) {
      const xs = latencies[target];
      if (xs.length === 0) throw new Error(`${target}: no verification finished at concurrency ${level}`);
      perSec[target] = (1000 * level) / mean(xs);
      console.log(
        `${String(level).padStart(11)}  ${target.padEnd(7)} ${String(xs.length).padStart(8)} ${fmt(perSec[target]).padStart(9)} ${fmt(mean(xs), 2).padStart(9)} ${fmt(median(xs), 2).padStart(11)}`,
      );
    }
    summary.push({ level, raw: perSec.raw, module: perSec.module });
  }

  console.log('');
  console.log('concurrency   raw verify/s   verifyPassword/s   ratio module/raw');
  for (const { level, raw, module } of summary) {
    console.log(`${String(level).padStart(11)}   ${fmt(raw).padStart(12)}   ${fmt(module).padStart(16)}   ${(module / raw).toFixed(3).padStart(16)}`);
  }
  console.log(`module's own work: NFKC + UTF-8 encoding of the password = ${fmt(normaliseCostMicros(), 2)} µs per verification`);
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
} catch (err) {
  console.error('FAILED:', err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
}
