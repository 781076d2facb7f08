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

/** The V8 flags every server child of the gateway benches gets by default (see serverChildFlags). */
export const DEFAULT_SERVER_CHILD_FLAGS = '--max-semi-space-size=8';

/**
 * V8 flags for every server child of the gateway benches, the baseline's and Gatehouse's alike
 * (BENCH_NODE_FLAGS replaces them; empty for none). By default V8 lets the young generation grow to
 * 64 MB (two 32 MB semi-spaces) under a high allocation rate, which is most of what the bare baseline
 * proxy grew by under load; 8 MB semi-spaces keep it at 16 MB. What Gatehouse recommends for
 * production too (NODE_OPTIONS), and applied equally, so the comparison stays fair.
 */
export function serverChildFlags(): string[] {
  const raw = process.env.BENCH_NODE_FLAGS;
  const flags = raw === undefined ? DEFAULT_SERVER_CHILD_FLAGS : raw;
  return flags.split(/\s+/).filter((f) => f.length > 0);
}
