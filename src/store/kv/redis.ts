/**
 * size-exception: createRedisKv implements the whole kv interface with its Lua scripts, mirroring
 * memory.ts operation by operation; split by concern is pending (issue 17); no measured reason to
 * keep it whole.
 */
import { createHash } from 'node:crypto';
import { Redis, ReplyError } from 'ioredis';
import { DependencyUnavailableError } from '../unavailable.ts';
import type { RedisOptions } from 'ioredis';
import { assertInteger, assertPositiveInteger, reportToConsole, type KvErrorReporter } from './args.ts';
import { checkSlidingWindowArgs, windowKeys } from './sliding-window.ts';
import { checkBackoffRules, type BackoffResult } from './backoff.ts';
import { checkBudgetArgs, type BudgetReserveResult } from './budget.ts';
import type { Kv, MessageHandler, SlidingWindowResult } from './types.ts';

export interface RedisKvOptions {
  /** Prepended to every key and channel, so several deployments can share one Redis. Default `gh:`. */
  keyPrefix?: string;
  /**
   * Clock for hitSlidingWindow when no `now` is passed. The window index comes from this
   * clock (nodes should be NTP-synced); TTLs always run on Redis's own clock.
   */
  now?: () => number;
  /**
   * Receives subscriber handler errors (default: console.error) and connection errors
   * (default: dropped, since every call made meanwhile rejects with them anyway).
   */
  onError?: KvErrorReporter;
}

const CONNECT_TIMEOUT_MS = 2_000;
const COMMAND_TIMEOUT_MS = 2_000;
const CONNECTION_CONTEXT = 'redis connection';

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

interface LuaScript {
  source: string;
  sha: string;
}

function lua(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

// INCRBY keeps an existing TTL; PTTL -1 means the key was just created (or never had one).
const INCR_SCRIPT = lua(`
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
`);

// INCRBY only on a key that exists: Lua false is a nil reply (null in ioredis).
const INCR_EXISTING_SCRIPT = lua(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
return redis.call('INCRBY', KEYS[1], ARGV[1])
`);

// Mirrors slidingWindowDecision() in sliding-window.ts line for line; keep the two in step.
// KEYS: previous window counter, current window counter.
// ARGV: limit, windowMs, ms elapsed in the current window, TTL of the current counter.
const SLIDING_WINDOW_SCRIPT = lua(`
local limit = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local elapsed = tonumber(ARGV[3])
local function floordiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function ceildiv(a, b)
  local q = floordiv(a, b)
  if q * b < a then q = q + 1 end
  return q
end
local prev = tonumber(redis.call('GET', KEYS[1]) or '0')
local curr = tonumber(redis.call('GET', KEYS[2]) or '0')
local scaled = prev * (w - elapsed) + curr * w
if scaled + w <= limit * w then
  redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return {1, floordiv(limit * w - w - scaled, w), 0, 2 * w - elapsed}
end
local retry
if curr + 1 > limit then
  retry = w - elapsed + ceildiv(w * (curr + 1 - limit), curr)
else
  retry = ceildiv(w * (prev + curr + 1 - limit), prev) - elapsed
end
local reset = 2 * w - elapsed
if curr == 0 then reset = w - elapsed end
return {0, 0, retry, reset}
`);

// Mirrors backoffDecision() in backoff.ts line for line; keep the two in step.
// KEYS: the buckets. ARGV[1]: now; then per bucket 9 values: freeAttempts, baseDelayMs,
// maxDelayMs, lockAfter, lockMs, maxAttempts, ttlMs, floorCount, floorLast. A bucket's value is
// "count:last"; one below its floor is read as the floor (withFloor in backoff.ts).
// Returns {allowed, retryAfterMs, refusedBy (0-based, -1), count per bucket...}.
const BACKOFF_RESERVE_SCRIPT = lua(`
local now = tonumber(ARGV[1])
local n = #KEYS
local counts, waits, hard = {}, {}, -1
for i = 1, n do
  local b = 1 + (i - 1) * 9
  local free, base, maxd = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local lockAfter, lockMs, maxAttempts = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
  local floorCount, floorLast = tonumber(ARGV[b + 8]), tonumber(ARGV[b + 9])
  local raw = redis.call('GET', KEYS[i])
  local count, last = 0, 0
  if raw then
    local c, l = string.match(raw, '^(%d+):(%d+)$')
    count, last = tonumber(c) or 0, tonumber(l) or 0
  end
  if count < floorCount then
    count, last = floorCount, math.max(last, floorLast)
  end
  counts[i] = count
  if maxAttempts > 0 and count >= maxAttempts then
    waits[i] = -1
    if hard < 0 then hard = i end
  else
    local delay = 0
    if lockAfter > 0 and count >= lockAfter then
      delay = lockMs
    elseif count >= free then
      delay = math.min(maxd, base * 2 ^ math.min(count - free, 40))
    end
    waits[i] = math.max(0, last + delay - now)
  end
end
if hard > 0 then
  local lockMs = tonumber(ARGV[1 + (hard - 1) * 9 + 5])
  local reply = {0, math.max(lockMs, 1000), hard - 1}
  for i = 1, n do reply[#reply + 1] = counts[i] end
  return reply
end
local refused, longest = -1, 0
for i = 1, n do
  if waits[i] > longest then longest = waits[i]; refused = i end
end
local reply = {}
if refused > 0 then
  reply = {0, longest, refused - 1}
  for i = 1, n do reply[#reply + 1] = counts[i] end
  return reply
end
reply = {1, 0, -1}
for i = 1, n do
  local ttl = tonumber(ARGV[1 + (i - 1) * 9 + 7])
  redis.call('SET', KEYS[i], (counts[i] + 1) .. ':' .. now, 'PX', ttl)
  reply[#reply + 1] = counts[i] + 1
end
return reply
`);

// Gives back one reservation of a backoff bucket, never below zero, keeping its TTL.
const BACKOFF_RELEASE_SCRIPT = lua(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local c, l = string.match(raw, '^(%d+):(%d+)$')
local count = tonumber(c) or 0
if count <= 0 then return 0 end
redis.call('SET', KEYS[1], (count - 1) .. ':' .. (l or '0'), 'KEEPTTL')
return count - 1
`);

// Gives back one hit of a sliding-window counter; DECR keeps the TTL.
const SLIDING_WINDOW_RELEASE_SCRIPT = lua(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then return redis.call('DECR', KEYS[1]) end
return 0
`);

// Mirrors budgetReserve() in budget.ts line for line; keep the two in step. A counter is a hash:
// `u` the used amount, `r:<id>` the amount of each open reservation.
// KEYS: the counters. ARGV[1]: the reservation id; then per counter: amount, limit.
// Reply: {2, missing indexes...} | {0, refused index, used...} | {1, -1, used...}.
const BUDGET_RESERVE_SCRIPT = lua(`
local id = 'r:' .. ARGV[1]
local n = #KEYS
local missing = {2}
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 0 then missing[#missing + 1] = i - 1 end
end
if #missing > 1 then return missing end
local used, held = {}, {}
local refused = -1
for i = 1, n do
  used[i] = tonumber(redis.call('HGET', KEYS[i], 'u') or '0')
  held[i] = redis.call('HGET', KEYS[i], id)
  local after = used[i] + tonumber(ARGV[2 + (i - 1) * 2])
  if held[i] then after = used[i] end
  if refused < 0 and after > tonumber(ARGV[3 + (i - 1) * 2]) then refused = i - 1 end
end
local reply
if refused >= 0 then
  reply = {0, refused}
  for i = 1, n do
    if held[i] then
      used[i] = redis.call('HINCRBY', KEYS[i], 'u', -tonumber(held[i]))
      redis.call('HDEL', KEYS[i], id)
    end
    reply[#reply + 1] = used[i]
  end
  return reply
end
reply = {1, -1}
for i = 1, n do
  if not held[i] then
    used[i] = redis.call('HINCRBY', KEYS[i], 'u', ARGV[2 + (i - 1) * 2])
    redis.call('HSET', KEYS[i], id, ARGV[2 + (i - 1) * 2])
  end
  reply[#reply + 1] = used[i]
end
return reply
`);

// Mirrors budgetSettle() in budget.ts. KEYS: the counters; ARGV[1]: the reservation id, then each actual amount.
const BUDGET_SETTLE_SCRIPT = lua(`
local id = 'r:' .. ARGV[1]
local settled = 0
for i = 1, #KEYS do
  local held = redis.call('HGET', KEYS[i], id)
  if held then
    redis.call('HINCRBY', KEYS[i], 'u', tonumber(ARGV[1 + i]) - tonumber(held))
    redis.call('HDEL', KEYS[i], id)
    settled = settled + 1
  end
end
return settled
`);

// Creates an absent counter. ARGV: ttl, used, then pairs of reservation id and amount.
const BUDGET_SEED_SCRIPT = lua(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], 'r:' .. ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`);

/** The URL without its password, for error messages and logs. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable Redis URL>';
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function quitQuietly(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    // quit needs a live connection; disconnect also stops the reconnect loop.
    client.disconnect();
  }
}

async function runScript(client: Redis, script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
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

function toIntegers(value: unknown, count: number): number[] {
  if (!Array.isArray(value) || value.length !== count || !value.every((v) => typeof v === 'number')) {
    throw new Error(`kv: unexpected reply from Redis script: ${JSON.stringify(value)}`);
  }
  return value as number[];
}

/**
 * Creates the kv on Redis, for several Gatehouse nodes sharing limits, locks and messages.
 * Rejects within about two seconds when Redis is unreachable. Every call rejects (rather
 * than waits) while the connection is down; the client reconnects in the background.
 */
export async function createRedisKv(url: string, options: RedisKvOptions = {}): Promise<Kv> {
  const prefix = options.keyPrefix ?? 'gh:';
  const clock = options.now ?? Date.now;
  const report: KvErrorReporter =
    options.onError ??
    ((error, context) => {
      if (context !== CONNECTION_CONTEXT) reportToConsole(error, context);
    });
  const where = redactUrl(url);

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

  let closed = false;
  let subscriberPromise: Promise<Redis> | undefined;
  const handlersByChannel = new Map<string, Set<MessageHandler>>();
  // Channels Redis has confirmed on the subscriber connection.
  const confirmed = new Set<string>();
  // SUBSCRIBE/UNSUBSCRIBE run one at a time so interleaved calls cannot leave Redis out of
  // step with handlersByChannel.
  let subscriptionChain: Promise<void> = Promise.resolve();
  // Whether every wanted channel is confirmed on a connected subscriber (see Kv.subscriptionsLive).
  let live = false;
  const liveListeners = new Set<(live: boolean) => void>();
  let resubscribeRetry: NodeJS.Timeout | undefined;

  function ensureOpen(): void {
    if (closed) throw new DependencyUnavailableError('kv', 'kv: Redis store is closed');
  }

  async function call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    ensureOpen();
    try {
      return await run();
    } catch (error) {
      const message = `kv: Redis ${operation} failed (${where}): ${errorMessage(error)}`;
      // A reply error is Redis answering (a bug of ours); anything else is Redis not answering.
      if (error instanceof ReplyError) throw new Error(message, { cause: error });
      throw new DependencyUnavailableError('kv', message, { cause: error });
    }
  }

  function deliver(channel: string, message: string): void {
    const handlers = handlersByChannel.get(channel);
    if (handlers === undefined) return;
    for (const handler of [...handlers]) {
      try {
        handler(message);
      } catch (error) {
        report(error, `subscriber handler on ${channel.slice(prefix.length)}`);
      }
    }
  }

  function setLive(next: boolean): void {
    if (next === live) return;
    live = next;
    for (const listener of [...liveListeners]) {
      try {
        listener(next);
      } catch (error) {
        report(error, 'subscription state listener');
      }
    }
  }

  /** Live only when the subscriber is connected and Redis confirmed every channel someone wants. */
  function updateLive(sub: Redis | undefined): void {
    const ready = !closed && sub !== undefined && sub.status === 'ready';
    setLive(ready && handlersByChannel.size > 0 && [...handlersByChannel.keys()].every((c) => confirmed.has(c)));
  }

  // After a reconnect the new connection holds no subscription: subscribe again, and only once
  // Redis has confirmed them all are the subscriptions live again.
  async function resubscribe(sub: Redis): Promise<void> {
    clearTimeout(resubscribeRetry);
    try {
      for (const channel of handlersByChannel.keys()) {
        if (confirmed.has(channel)) continue;
        await sub.subscribe(channel);
        confirmed.add(channel);
      }
    } catch (error) {
      report(error, CONNECTION_CONTEXT);
      // Still connected but refused or timed out: try again; a new connection triggers its own try.
      if (!closed && sub.status === 'ready') resubscribeRetry = setTimeout(() => void serialized(() => resubscribe(sub)).catch(() => undefined), 1_000).unref();
    }
    updateLive(sub);
  }

  function subscriber(): Promise<Redis> {
    subscriberPromise ??= (async () => {
      // A connection in subscribe mode cannot run other commands, hence a second one. Its
      // subscriptions are restored by resubscribe(), which knows when Redis confirmed them
      // (ioredis's own auto-resubscribe does not say).
      const sub = client.duplicate({ autoResubscribe: false });
      sub.on('error', (error: unknown) => report(error, CONNECTION_CONTEXT));
      sub.on('message', deliver);
      // Messages published while the connection is down are lost: not live until resubscribed.
      sub.on('close', () => {
        confirmed.clear();
        setLive(false);
      });
      sub.on('ready', () => {
        if (!closed) void serialized(() => resubscribe(sub)).catch(() => undefined);
      });
      try {
        await withTimeout(sub.connect(), CONNECT_TIMEOUT_MS + 500, 'subscriber connection timed out');
      } catch (error) {
        sub.disconnect();
        throw error;
      }
      return sub;
    })();
    // A failed attempt is forgotten so the next subscribe tries again.
    subscriberPromise.catch(() => {
      subscriberPromise = undefined;
    });
    return subscriberPromise;
  }

  function serialized(operation: () => Promise<void>): Promise<void> {
    const run = subscriptionChain.then(operation);
    subscriptionChain = run.catch(() => undefined);
    return run;
  }

  // Brings Redis in line with whether anyone still wants `channel`.
  async function reconcile(channel: string): Promise<void> {
    const wanted = (handlersByChannel.get(channel)?.size ?? 0) > 0;
    if (wanted && !confirmed.has(channel)) {
      const sub = await subscriber();
      await sub.subscribe(channel);
      confirmed.add(channel);
      updateLive(sub);
    } else if (!wanted && confirmed.has(channel)) {
      confirmed.delete(channel);
      const sub = await subscriberPromise;
      await sub?.unsubscribe(channel);
    }
  }

  function removeHandler(channel: string, handlers: Set<MessageHandler>, handler: MessageHandler): void {
    handlers.delete(handler);
    if (handlers.size === 0 && handlersByChannel.get(channel) === handlers) handlersByChannel.delete(channel);
  }

  return {
    kind: 'redis',

    async incr(key, by, ttlMs) {
      assertInteger('by', by);
      assertPositiveInteger('ttlMs', ttlMs);
      const reply = await call('incr', () => runScript(client, INCR_SCRIPT, [prefix + key], [by, ttlMs]));
      if (typeof reply !== 'number') throw new Error(`kv: unexpected INCRBY reply: ${JSON.stringify(reply)}`);
      return reply;
    },

    async incrExisting(key, by) {
      assertInteger('by', by);
      const reply = await call('incrExisting', () => runScript(client, INCR_EXISTING_SCRIPT, [prefix + key], [by]));
      if (reply === null) return null;
      if (typeof reply !== 'number') throw new Error(`kv: unexpected INCRBY reply: ${JSON.stringify(reply)}`);
      return reply;
    },

    async get(key) {
      return call('get', () => client.get(prefix + key));
    },

    async set(key, value, ttlMs) {
      assertPositiveInteger('ttlMs', ttlMs);
      await call('set', () => client.set(prefix + key, value, 'PX', ttlMs));
    },

    async setIfAbsent(key, value, ttlMs) {
      assertPositiveInteger('ttlMs', ttlMs);
      const reply = await call('setIfAbsent', () => client.set(prefix + key, value, 'PX', ttlMs, 'NX'));
      return reply === 'OK';
    },

    async del(key) {
      await call('del', () => client.del(prefix + key));
    },

    async hitSlidingWindow(key, limit, windowMs, now): Promise<SlidingWindowResult> {
      const at = checkSlidingWindowArgs(limit, windowMs, now ?? clock());
      const { prevKey, currKey, elapsed } = windowKeys(prefix + key, windowMs, at);
      const reply = await call('hitSlidingWindow', () =>
        runScript(client, SLIDING_WINDOW_SCRIPT, [prevKey, currKey], [limit, windowMs, elapsed, 2 * windowMs]),
      );
      const [allowed, remaining, retryAfterMs, resetMs] = toIntegers(reply, 4) as [number, number, number, number];
      return { allowed: allowed === 1, limit, remaining, retryAfterMs, resetMs };
    },

    async releaseSlidingWindow(key, windowMs, hitAt) {
      const at = checkSlidingWindowArgs(1, windowMs, hitAt);
      const { currKey } = windowKeys(prefix + key, windowMs, at);
      await call('releaseSlidingWindow', () => runScript(client, SLIDING_WINDOW_RELEASE_SCRIPT, [currKey], []));
    },

    async reserveBackoff(rules, now): Promise<BackoffResult> {
      checkBackoffRules(rules);
      const at = Math.floor(now ?? clock());
      const args = [at, ...rules.flatMap((r) => [r.freeAttempts, r.baseDelayMs, r.maxDelayMs, r.lockAfter, r.lockMs, r.maxAttempts, r.ttlMs, r.floorCount ?? 0, r.floorLast ?? 0])];
      const reply = await call('reserveBackoff', () => runScript(client, BACKOFF_RESERVE_SCRIPT, rules.map((r) => prefix + r.key), args));
      const [allowed, retryAfterMs, refusedBy, ...counts] = toIntegers(reply, 3 + rules.length) as [number, number, number, ...number[]];
      return { allowed: allowed === 1, retryAfterMs, refusedBy, counts };
    },

    async releaseBackoff(key) {
      await call('releaseBackoff', () => runScript(client, BACKOFF_RELEASE_SCRIPT, [prefix + key], []));
    },

    async reserveBudget(reservationId, counters): Promise<BudgetReserveResult> {
      checkBudgetArgs(reservationId, counters);
      const args = [reservationId, ...counters.flatMap((c) => [c.amount, c.limit])];
      const reply = await call('reserveBudget', () => runScript(client, BUDGET_RESERVE_SCRIPT, counters.map((c) => prefix + c.key), args));
      if (!Array.isArray(reply) || !reply.every((v) => typeof v === 'number')) throw new Error(`kv: unexpected reply from Redis script: ${JSON.stringify(reply)}`);
      const [status, second, ...rest] = reply as number[];
      if (status === 2) return { status: 'missing', indexes: [second as number, ...rest] };
      const used = toIntegers(rest, counters.length);
      return status === 1 ? { status: 'reserved', used } : { status: 'refused', index: second as number, used };
    },

    async settleBudget(reservationId, settlements) {
      checkBudgetArgs(reservationId, settlements);
      await call('settleBudget', () => runScript(client, BUDGET_SETTLE_SCRIPT, settlements.map((s) => prefix + s.key), [reservationId, ...settlements.map((s) => s.amount)]));
    },

    async seedBudget(key, used, open, ttlMs) {
      assertPositiveInteger('ttlMs', ttlMs);
      assertInteger('used', used);
      const reply = await call('seedBudget', () => runScript(client, BUDGET_SEED_SCRIPT, [prefix + key], [ttlMs, used, ...open.flatMap(([id, amount]) => [id, amount])]));
      return reply === 1;
    },

    async readBudget(key) {
      const raw = await call('readBudget', () => client.hget(prefix + key, 'u'));
      return raw === null ? null : Number(raw);
    },

    async publish(channel, message) {
      await call('publish', () => client.publish(prefix + channel, message));
    },

    async subscribe(channel, handler) {
      ensureOpen();
      const full = prefix + channel;
      // Each subscription gets its own identity, so one function subscribed twice is two subscriptions.
      const subscription: MessageHandler = (message) => handler(message);
      let handlers = handlersByChannel.get(full);
      if (handlers === undefined) {
        handlers = new Set();
        handlersByChannel.set(full, handlers);
      }
      handlers.add(subscription);
      const own = handlers;
      try {
        await call('subscribe', () => serialized(() => reconcile(full)));
      } catch (error) {
        removeHandler(full, own, subscription);
        throw error;
      }
      let active = true;
      return async () => {
        if (!active) return;
        active = false;
        // Delivery stops here, whatever happens to the UNSUBSCRIBE below.
        removeHandler(full, own, subscription);
        if (closed) return;
        try {
          await serialized(() => reconcile(full));
        } catch (error) {
          // Only a stale server-side subscription is left; its messages find no handler.
          report(error, CONNECTION_CONTEXT);
        }
      };
    },

    subscriptionsLive() {
      return live && !closed;
    },

    onSubscriptionsLive(listener) {
      liveListeners.add(listener);
      return () => void liveListeners.delete(listener);
    },

    async ping() {
      await call('ping', () => client.ping());
    },

    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(resubscribeRetry);
      live = false;
      liveListeners.clear();
      handlersByChannel.clear();
      const sub = await subscriberPromise?.catch(() => undefined);
      await Promise.all([quitQuietly(client), sub === undefined ? undefined : quitQuietly(sub)]);
    },
  };
}
