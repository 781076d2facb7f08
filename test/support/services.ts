/**
 * Which real services the adapter suites run against.
 *
 * The embedded defaults (PGlite, memory kv) always run. PostgreSQL and Redis run when
 * DATABASE_URL / REDIS_URL are set. In CI (CI=true) a missing or unreachable service is a
 * failure, never a silent skip; in a plain local run the suite is skipped with a message.
 */
export const inCi = process.env.CI === 'true' || process.env.CI === '1';

export interface ServiceTarget {
  name: string;
  url: string | undefined;
  /** Why the suite is skipped, or undefined when it runs. */
  skipReason: string | undefined;
}

function target(name: string, envName: string): ServiceTarget {
  const url = process.env[envName];
  if (url) return { name, url, skipReason: undefined };
  if (inCi) {
    // Returning no skip reason makes the suite run and fail loudly on the missing URL.
    return { name, url: undefined, skipReason: undefined };
  }
  const skipReason = `${name} suite skipped: set ${envName} to run it (CI requires it)`;
  return { name, url: undefined, skipReason };
}

export const postgresTarget = (): ServiceTarget => target('PostgreSQL', 'DATABASE_URL');
export const redisTarget = (): ServiceTarget => target('Redis', 'REDIS_URL');

/** Throws a clear error when a suite that must run has no URL (CI without the service). */
export function requireUrl(t: ServiceTarget): string {
  if (!t.url) throw new Error(`${t.name} is required in CI but its URL is not set`);
  return t.url;
}
