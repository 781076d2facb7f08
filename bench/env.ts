/** Bench knobs from the environment, shared by the benchmarks. */
import { readFileSync } from 'node:fs';

/** A duration in seconds from `name`, in (0, 30]; `fallback` when unset. */
export function envSeconds(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 30) throw new Error(`${name} must be a number of seconds in (0, 30], got "${raw}"`);
  return n;
}

/**
 * The Node flags `npm start` runs a Gatehouse node with: the `--` words between `node` and the
 * script in package.json's start script, so benchmarks measure a node as it runs.
 */
export function startScriptFlags(): string[] {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
  const [command, ...rest] = pkg.scripts.start.split(/\s+/);
  if (command !== 'node') throw new Error(`package.json's start script does not start with node: ${pkg.scripts.start}`);
  const flags: string[] = [];
  for (const word of rest) {
    if (!word.startsWith('--')) break;
    flags.push(word);
  }
  return flags;
}

/**
 * The Node flags of every server child of the gateway benches, the baseline's and Gatehouse's
 * alike: exactly those of `npm start` (`startScriptFlags`, so there is one source), then
 * BENCH_NODE_FLAGS, an experiment's extra flags (default none; a later flag wins in V8).
 */
export function serverChildFlags(): string[] {
  const extra = (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter((f) => f.length > 0);
  return [...startScriptFlags(), ...extra];
}

/**
 * For the benches that run a node in their own process: re-runs this process with the flags of
 * `npm start` when it lacks them (the npm scripts run `node bench/<x>.ts` bare), so it measures a
 * node as `npm start` runs it. Resolves when the flags are in place; otherwise the child's exit
 * code becomes this process's. BENCH_WITHOUT_START_FLAGS=1 runs without them, for comparisons.
 */
export async function runWithStartFlags(): Promise<void> {
  const flags = startScriptFlags();
  if (process.env.BENCH_WITHOUT_START_FLAGS === '1' || flags.every((f) => process.execArgv.includes(f))) return;
  const { spawnSync } = await import('node:child_process');
  const script = process.argv[1];
  if (script === undefined) throw new Error('runWithStartFlags: no script path in process.argv');
  const r = spawnSync(process.execPath, [...process.execArgv, ...flags, script, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
