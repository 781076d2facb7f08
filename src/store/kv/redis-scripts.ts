/**
 * The Lua scripts of the Redis kv: each operation that must read and write atomically runs as
 * one script. Several mirror a JavaScript decision line for line (sliding-window.ts, backoff.ts,
 * budget.ts) so both kv adapters answer identically; keep each pair in step.
 */
import { createHash } from 'node:crypto';

export interface LuaScript {
  source: string;
  sha: string;
}

function lua(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

// INCRBY keeps an existing TTL; PTTL -1 means the key was just created (or never had one).
export const INCR_SCRIPT = lua(`
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
`);

// INCRBY only on a key that exists: Lua false is a nil reply (null in ioredis).
export const INCR_EXISTING_SCRIPT = lua(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
return redis.call('INCRBY', KEYS[1], ARGV[1])
`);

// Mirrors slidingWindowDecision() in sliding-window.ts line for line; keep the two in step.
// KEYS: previous window counter, current window counter.
// ARGV: limit, windowMs, ms elapsed in the current window, TTL of the current counter.
export const SLIDING_WINDOW_SCRIPT = lua(`
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
export const BACKOFF_RESERVE_SCRIPT = lua(`
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
export const BACKOFF_RELEASE_SCRIPT = lua(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local c, l = string.match(raw, '^(%d+):(%d+)$')
local count = tonumber(c) or 0
if count <= 0 then return 0 end
redis.call('SET', KEYS[1], (count - 1) .. ':' .. (l or '0'), 'KEEPTTL')
return count - 1
`);

// Gives back one hit of a sliding-window counter; DECR keeps the TTL.
export const SLIDING_WINDOW_RELEASE_SCRIPT = lua(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then return redis.call('DECR', KEYS[1]) end
return 0
`);

// Mirrors budgetReserve() in budget.ts line for line; keep the two in step. A counter is a hash:
// `u` the used amount, `r:<id>` the amount of each open reservation.
// KEYS: the counters. ARGV[1]: the reservation id; then per counter: amount, limit.
// Reply: {2, missing indexes...} | {0, refused index, used...} | {1, -1, used...}.
export const BUDGET_RESERVE_SCRIPT = lua(`
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
export const BUDGET_SETTLE_SCRIPT = lua(`
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
export const BUDGET_SEED_SCRIPT = lua(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], 'r:' .. ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`);
