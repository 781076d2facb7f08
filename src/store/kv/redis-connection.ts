/**
 * The Redis kv's connection: client options that fail fast, connecting with a bounded wait, the
 * error wrapping every command goes through, and running a Lua script by its hash.
 */
import { Redis, ReplyError, type RedisOptions } from 'ioredis';
import { DependencyUnavailableError } from '../unavailable.ts';
import type { KvErrorReporter } from './args.ts';
import type { LuaScript } from './redis-scripts.ts';

export const CONNECT_TIMEOUT_MS = 2_000;
const COMMAND_TIMEOUT_MS = 2_000;
/** The context connection errors are reported under (dropped by the default reporter). */
export const CONNECTION_CONTEXT = 'redis connection';

// Fail fast: a limiter or lock that waits on a dead Redis stalls every request behind it.
const CLIENT_OPTIONS: RedisOptions = {
  lazyConnect: true,
  connectTimeout: CONNECT_TIMEOUT_MS,
  // Bounds calls against a server that accepts the socket but never answers.
  commandTimeout: COMMAND_TIMEOUT_MS,
  maxRetriesPerRequest: 1,
  // Calls made while disconnected reject at once instead of queueing until reconnect.
  enableOfflineQueue: false,
  // Keep reconnecting in the background so the node recovers when Redis comes back.
  retryStrategy: (times) => Math.min(times * 200, 2_000),
};

/** Runs one Redis command for a kv operation, turning its failure into the kv's errors. */
export type RedisCall = <T>(operation: string, run: () => Promise<T>) => Promise<T>;

/** The URL without its password, for error messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable Redis URL>';
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function quitQuietly(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    // quit needs a live connection; disconnect also stops the reconnect loop.
    client.disconnect();
  }
}

export async function runScript(client: Redis, script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    // The script cache is empty after a Redis restart or failover; EVAL reloads it.
    if (errorMessage(error).startsWith('NOSCRIPT')) {
      return client.eval(script.source, keys.length, ...keys, ...args);
    }
    throw error;
  }
}

export function toIntegers(value: unknown, count: number): number[] {
  if (!Array.isArray(value) || value.length !== count || !value.every((v) => typeof v === 'number')) {
    throw new Error(`kv: unexpected reply from Redis script: ${JSON.stringify(value)}`);
  }
  return value as number[];
}

/**
 * A connected client, or a rejection within about two and a half seconds naming the (redacted)
 * address and the cause. Connection errors afterwards go to `report` under CONNECTION_CONTEXT.
 */
export async function connectRedis(url: string, where: string, report: KvErrorReporter): Promise<Redis> {
  const client = new Redis(url, CLIENT_OPTIONS);
  let lastConnectionError: unknown;
  // Without a listener ioredis's 'error' event would crash the process.
  client.on('error', (error: unknown) => {
    lastConnectionError = error;
    report(error, CONNECTION_CONTEXT);
  });

  try {
    // The race also covers a server that accepts the socket but never completes the handshake.
    await withTimeout(client.connect(), CONNECT_TIMEOUT_MS + 500, `timed out after ${CONNECT_TIMEOUT_MS + 500} ms`);
  } catch (error) {
    client.disconnect();
    // connect() only says "Connection is closed"; the 'error' event carries the cause.
    throw new Error(`kv: Redis unreachable at ${where}: ${errorMessage(lastConnectionError ?? error)}`, { cause: error });
  }
  return client;
}

/** The command wrapper of one kv: refuses once closed, and says whether Redis answered or not. */
export function createCall(where: string, ensureOpen: () => void): RedisCall {
  return async (operation, run) => {
    ensureOpen();
    try {
      return await run();
    } catch (error) {
      const message = `kv: Redis ${operation} failed (${where}): ${errorMessage(error)}`;
      // A reply error is Redis answering (a bug of ours); anything else is Redis not answering.
      if (error instanceof ReplyError) throw new Error(message, { cause: error });
      throw new DependencyUnavailableError('kv', message, { cause: error });
    }
  };
}
