/** Bench knobs from the environment, shared by the benchmarks. */

/** A duration in seconds from `name`, in (0, 30]; `fallback` when unset. */
export function envSeconds(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 30) throw new Error(`${name} must be a number of seconds in (0, 30], got "${raw}"`);
  return n;
}
