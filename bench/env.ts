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
