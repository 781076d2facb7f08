/**
 * Telling "a dependency could not answer" apart from every other failure. A request that fails
 * because PostgreSQL or Redis is down, restarting or unreachable did not learn anything about
 * its credential or its input: it is answered 503 + Retry-After (SERVICE_UNAVAILABLE), never
 * 401 and never an opaque 500 (app.ts's error handler asks `isDependencyUnavailable`).
 */

/** Which kind of store could not answer. */
export type Dependency = 'storage' | 'kv';

/**
 * A store could not answer (connection refused, dropped or timed out). Thrown by the kv
 * adapters; PostgreSQL's own connection errors are recognised as they are.
 * @example throw new DependencyUnavailableError('kv', 'kv: Redis get failed', { cause: err })
 */
export class DependencyUnavailableError extends Error {
  override name = 'DependencyUnavailableError';
  readonly dependency: Dependency;

  constructor(dependency: Dependency, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.dependency = dependency;
  }
}

/** Socket-level failures reaching a server. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

/**
 * PostgreSQL SQLSTATEs of a server that cannot serve now: class 08 (connection exception),
 * 57P01-57P05 (shut down, crashed, starting, idle timeout), 53300 (too many connections).
 */
function isUnavailableSqlState(code: string): boolean {
  return code.startsWith('08') || /^57P0[1-5]$/.test(code) || code === '53300';
}

/** Messages node-postgres gives connection failures that carry no code. */
const PG_CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Connection timed out',
];

function isUnavailableSelf(err: object): boolean {
  if (err instanceof DependencyUnavailableError) return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || isUnavailableSqlState(code))) return true;
  const message = (err as { message?: unknown }).message;
  return typeof message === 'string' && PG_CONNECTION_MESSAGES.some((m) => message.startsWith(m));
}

/**
 * True when `err` (or an error it wraps: `cause`, AggregateError's `errors`) says a store
 * could not answer.
 * @example if (isDependencyUnavailable(err)) throw new AppError('SERVICE_UNAVAILABLE')
 */
export function isDependencyUnavailable(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 5) return false;
  if (isUnavailableSelf(err)) return true;
  const errors = (err as { errors?: unknown }).errors;
  if (Array.isArray(errors) && errors.some((e) => isDependencyUnavailable(e, depth + 1))) return true;
  return isDependencyUnavailable((err as { cause?: unknown }).cause, depth + 1);
}
