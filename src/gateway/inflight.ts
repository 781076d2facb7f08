/**
 * The gateway calls a node is serving right now, for two things that must see them:
 * - shutdown (GW-2, GW-4): at the end of the grace period every call still running is stopped with
 *   NODE_SHUTTING_DOWN in the client's wire format (a terminal error event for a stream, a 503 with
 *   `Retry-After` for a JSON call not yet answered), and the node waits until each one is metered
 *   and its last bytes are written before it cuts connections and closes storage;
 * - the monthly limit's rebuild (GW-1): calls counted against a key and not yet metered are added
 *   to what the usage records say.
 */
import type { ServerResponse } from 'node:http';
import { GatewayError } from './errors.ts';

/** Seconds a client told "this node is shutting down" waits before it retries (on another node). */
export const SHUTDOWN_RETRY_SECONDS = 1;
/** Once stopped, a call's last bytes get this long to leave before the connection is cut anyway. */
const FLUSH_WAIT_MS = 2_000;

/** One registered call. */
export interface InflightCall {
  /** Aborted at shutdown; its reason is the NODE_SHUTTING_DOWN error the client gets. */
  signal: AbortSignal;
  /** Marks the call as finished (metered). */
  end(): void;
}

export interface InflightCalls {
  /** Registers a call of `keyId` counted in `month` that writes to `res`. */
  begin(keyId: string, month: string, res: ServerResponse, subject?: string | null): InflightCall;
  /** Calls of `keyId` counted in `month` and still running on this node. */
  running(keyId: string, month: string, subject?: string): number;
  /** Calls running now. */
  readonly size: number;
  /**
   * Stops every running call (and every later one) with NODE_SHUTTING_DOWN, then resolves once each
   * has ended and its response was written out (or `FLUSH_WAIT_MS` passed).
   */
  stopAll(): Promise<void>;
  /** Resolves once no call is running. */
  settled(): Promise<void>;
}

/** Resolves when `res` has handed its last byte to the socket, or closed, or `ms` passed. */
function written(res: ServerResponse, ms: number): Promise<void> {
  if (res.writableFinished || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      res.off('finish', done);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.once('finish', done);
    res.once('close', done);
  });
}

/**
 * Creates the registry of one gateway.
 * @example const inflight = createInflightCalls(); const call = inflight.begin(key.id, month, reply.raw); try { ... } finally { call.end() }
 */
export function createInflightCalls(): InflightCalls {
  const shutdown = new AbortController();
  const calls = new Map<object, { counters: string[]; res: ServerResponse }>();
  const perKey = new Map<string, number>();
  let idle: (() => void)[] = [];

  // Per key, and per key and client-token subject (GW-6).
  const counterOf = (keyId: string, month: string, subject?: string | null): string => `${keyId}\u0000${month}${subject == null ? '' : `\u0000${subject}`}`;

  function remove(token: object): void {
    const call = calls.get(token);
    if (!call) return;
    calls.delete(token);
    for (const counter of call.counters) {
      const left = (perKey.get(counter) ?? 0) - 1;
      if (left > 0) perKey.set(counter, left);
      else perKey.delete(counter);
    }
    if (calls.size === 0) {
      const waiting = idle;
      idle = [];
      for (const resolve of waiting) resolve();
    }
  }

  function settled(): Promise<void> {
    if (calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => idle.push(resolve));
  }

  return {
    begin(keyId, month, res, subject) {
      const token = {};
      const counters = subject == null ? [counterOf(keyId, month)] : [counterOf(keyId, month), counterOf(keyId, month, subject)];
      calls.set(token, { counters, res });
      for (const counter of counters) perKey.set(counter, (perKey.get(counter) ?? 0) + 1);
      return { signal: shutdown.signal, end: () => remove(token) };
    },
    running(keyId, month, subject) {
      return perKey.get(counterOf(keyId, month, subject)) ?? 0;
    },
    get size() {
      return calls.size;
    },
    async stopAll() {
      const responses = [...calls.values()].map((c) => c.res);
      if (!shutdown.signal.aborted) {
        shutdown.abort(new GatewayError('NODE_SHUTTING_DOWN', undefined, { headers: { 'retry-after': String(SHUTDOWN_RETRY_SECONDS) } }));
      }
      await settled();
      await Promise.all(responses.map((res) => written(res, FLUSH_WAIT_MS)));
    },
    settled,
  };
}
