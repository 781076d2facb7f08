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
 * UV_THREADPOOL_SIZE says otherwise). At each level: a short warm-up of each target (discarded),
 * then measured runs alternating raw, module, raw, ...; each figure is the mean of its runs.
 * Every verification must return true, so the work cannot be skipped or silently wrong. Exits
 * non-zero on a wrong result or when the whole run exceeds its deadline.
 *
 * Knobs (environment): BENCH_SECONDS (one measured run, default 1.5), BENCH_ROUNDS (measured
 * pairs per level, default 2), BENCH_WARMUP_SECONDS (default 0.25), BENCH_CONCURRENCY (the upper
 * level, default os.availableParallelism()). Defaults take about 14 s.
 */
import { verify } from '@node-rs/argon2';
import { availableParallelism, cpus } from 'node:os';
import { DEFAULT_ARGON2, hashPassword, verifyPassword } from '../src/identity/passwords.ts';

function envNumber(name: string, fallback: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new Error(`${name} must be a number in (0, ${max}], got "${raw}"`);
  return n;
}

const measuredSeconds = envNumber('BENCH_SECONDS', 1.5, 30);
const warmupSeconds = envNumber('BENCH_WARMUP_SECONDS', 0.25, 30);
const rounds = Math.round(envNumber('BENCH_ROUNDS', 2, 20));
const highConcurrency = Math.round(envNumber('BENCH_CONCURRENCY', availableParallelism(), 256));
const levels = [...new Set([1, highConcurrency])];
/** The whole run is stopped (exit 2) past this. */
const deadlineMs = levels.length * (2 * warmupSeconds + 2 * rounds * measuredSeconds) * 1000 * 1.5 + 15_000;
const deadline = setTimeout(() => {
  console.error(`FAILED: the benchmark did not finish within ${(deadlineMs / 1000).toFixed(0)} s`);
  process.exit(2);
}, deadlineMs);

/** A typical passphrase with a non-ASCII character, so normalisation has real work. */
const PASSWORD = 'correct horse battery staple à la crème';

type Target = 'raw' | 'module';
const TARGETS: readonly Target[] = ['raw', 'module'];

async function run(target: Target, phc: string, concurrency: number, seconds: number): Promise<{ ops: number; seconds: number; opsPerSec: number }> {
  const op = target === 'raw' ? () => verify(phc, PASSWORD) : () => verifyPassword(phc, PASSWORD);
  const budget = BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let count = 0;
  const worker = async (): Promise<void> => {
    while (process.hrtime.bigint() - start < budget) {
      if ((await op()) !== true) throw new Error(`${target}: a verification of the right password returned false`);
      count++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return { ops: count, seconds: secs, opsPerSec: count / secs };
}

const fmt = (n: number, digits = 1): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

try {
  const started = performance.now();
  console.log(
    `password benchmark: argon2id verify, m=${DEFAULT_ARGON2.memoryKiB} KiB t=${DEFAULT_ARGON2.timeCost} p=${DEFAULT_ARGON2.parallelism}; ` +
      `concurrency ${levels.join(' and ')}; warm-up ${warmupSeconds} s, ${rounds} x ${measuredSeconds} s measured per target and level`,
  );
  console.log(
    `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}`,
  );
  const phc = await hashPassword(PASSWORD, DEFAULT_ARGON2);
  console.log(`hash: ${phc.split('$').slice(0, 4).join('$')}$...`);

  const summary: { level: number; raw: number; module: number }[] = [];
  for (const level of levels) {
    for (const target of TARGETS) await run(target, phc, level, warmupSeconds);
    const totals: Record<Target, number[]> = { raw: [], module: [] };
    console.log('');
    console.log(`concurrency ${level}`);
    console.log('run              verif/s    verifs   seconds    ms/verif');
    for (let r = 1; r <= rounds; r++) {
      for (const target of TARGETS) {
        const result = await run(target, phc, level, measuredSeconds);
        totals[target].push(result.opsPerSec);
        console.log(
          `${`${target} #${r}`.padEnd(14)} ${fmt(result.opsPerSec).padStart(9)} ${String(result.ops).padStart(9)} ${result.seconds.toFixed(2).padStart(9)} ${fmt((1000 * level) / result.opsPerSec, 2).padStart(11)}`,
        );
      }
    }
    summary.push({ level, raw: mean(totals.raw), module: mean(totals.module) });
  }

  console.log('');
  console.log(`means of ${rounds} runs each:`);
  console.log('concurrency   raw verify/s   verifyPassword/s   ratio module/raw   overhead per verification');
  for (const { level, raw, module } of summary) {
    const overheadMs = (1000 * level) / module - (1000 * level) / raw;
    console.log(
      `${String(level).padStart(11)}   ${fmt(raw).padStart(12)}   ${fmt(module).padStart(16)}   ${(module / raw).toFixed(3).padStart(16)}   ${fmt(overheadMs, 2).padStart(9)} ms`,
    );
  }
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
} catch (err) {
  console.error('FAILED:', err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
}
