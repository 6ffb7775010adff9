/**
 * The Lua scripts of the shared rate limiter. Each runs atomically in Redis on the four keys of one
 * `provider:model` (all under one hash tag, so they live in one Cluster slot) and reads the time from Redis
 * `TIME`, so the machines' clocks never matter:
 *
 * - `KEYS[1]` state hash: `nr` next request slot, `nt` next token slot, `hold` nothing before this time,
 *   `us` / `es` decaying sums of real usage and of the estimates of the same requests, `sum` tokens charged
 *   to the ledger;
 * - `KEYS[2]` leases: sorted set of permit id → lease expiry (a dead process's permits expire);
 * - `KEYS[3]` ledger: sorted set of permit id → grant time, the grants of the last window;
 * - `KEYS[4]` ledger tokens: hash of permit id → tokens charged.
 *
 * Times are milliseconds of Redis time with microsecond fractions; numbers are written with `%.3f` so a
 * Lua double never loses precision in a Redis string.
 */

const common = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local function num(field)
  local v = redis.call('HGET', KEYS[1], field)
  if v then return tonumber(v) end
  return nil
end
local function put(field, value)
  redis.call('HSET', KEYS[1], field, string.format('%.3f', value))
end
local function touch(ttl)
  local hold = num('hold')
  if hold ~= nil and hold - now + 1000 > ttl then ttl = hold - now + 1000 end
  ttl = math.ceil(ttl)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
`;

/**
 * Try to grant one permit now.
 * ARGV: id, estimate, maxConcurrency (0: none), requestsPerWindow (0: none), tokensPerWindow (0: none),
 * windowMs, spacingMs, msPerToken, tokenCatchUpMs, leaseMs, ttlMs.
 * Returns `{1, charged, now}` for a grant, else `{0, reason, now, dueAt}` (for `concurrency`, `dueAt` is
 * the earliest lease expiry: a moment to look again at the latest).
 */
export const ACQUIRE = `${common}
local id = ARGV[1]
local estimate = tonumber(ARGV[2])
local maxConc = tonumber(ARGV[3])
local requests = tonumber(ARGV[4])
local tokens = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local spacing = tonumber(ARGV[7])
local msPerToken = tonumber(ARGV[8])
local catchUp = tonumber(ARGV[9])
local lease = tonumber(ARGV[10])
local ttl = tonumber(ARGV[11])

if maxConc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= maxConc then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, 'concurrency', tostring(now), tostring(first[2])}
  end
end

local ledger = requests > 0 or tokens > 0
local sum = num('sum') or 0
if ledger then
  local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('%.3f', now - window))
  if #old > 0 then
    for i = 1, #old do
      local v = redis.call('HGET', KEYS[4], old[i])
      if v then sum = sum - tonumber(v) end
      redis.call('HDEL', KEYS[4], old[i])
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('%.3f', now - window))
    if sum < 0 or redis.call('ZCARD', KEYS[3]) == 0 then sum = 0 end
    put('sum', sum)
  end
end

local charged = estimate
if tokens > 0 and estimate > 0 then
  local us = num('us') or 0
  local es = num('es') or 0
  local ratio = 1
  if es > 0 then ratio = math.min(20, math.max(0.05, us / es)) end
  charged = math.max(1, math.ceil(estimate * ratio))
end

local reason = false
local due = now
local hold = num('hold')
if hold ~= nil and hold > due then reason = 'hold'; due = hold end
local nr = num('nr')
if spacing > 0 and nr ~= nil and nr > due then reason = 'requests'; due = nr end
if requests > 0 then
  local count = redis.call('ZCARD', KEYS[3])
  if count >= requests then
    local e = redis.call('ZRANGE', KEYS[3], count - requests, count - requests, 'WITHSCORES')
    local at = tonumber(e[2]) + window
    if at > due then reason = 'requests'; due = at end
  end
end
local nt = num('nt')
if tokens > 0 and charged > 0 then
  local tdue = now
  if nt ~= nil and nt > now then
    tdue = nt
  else
    local need = math.min(charged, tokens)
    if sum + need > tokens then
      local inWindow = sum
      local entries = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
      for i = 1, #entries, 2 do
        inWindow = inWindow - (tonumber(redis.call('HGET', KEYS[4], entries[i]) or '0'))
        if inWindow + need <= tokens then tdue = tonumber(entries[i + 1]) + window; break end
      end
    end
  end
  if tdue > due then reason = 'tokens'; due = tdue end
end
if reason then
  touch(ttl)
  return {0, reason, tostring(now), tostring(due)}
end

if spacing > 0 then
  local from = now
  if nr ~= nil and now - nr < spacing then from = nr end
  put('nr', from + spacing)
end
if ledger then
  redis.call('ZADD', KEYS[3], string.format('%.3f', now), id)
  redis.call('HSET', KEYS[4], id, charged)
  put('sum', sum + charged)
end
if tokens > 0 and charged > 0 then
  local from = now
  if nt ~= nil and now - nt < catchUp then from = nt end
  put('nt', from + charged * msPerToken)
end
if maxConc > 0 then redis.call('ZADD', KEYS[2], string.format('%.3f', now + lease), id) end
touch(ttl)
return {1, charged, tostring(now)}
`;

/**
 * Finish a permit: free its lease, charge its real tokens instead of what it was charged (`newTokens` < 0:
 * keep the charge), learn the usage ratio (`learnEstimate` > 0), and hold everyone for `holdMs` (> 0) in
 * the same step, so no waiter slips in between.
 * ARGV: id, charged, newTokens, learnEstimate, learnActual, holdMs, tokensPerWindow (0: none), msPerToken,
 * tokenCatchUpMs, usageKeep, ttlMs.
 */
export const FINISH = `${common}
local id = ARGV[1]
local charged = tonumber(ARGV[2])
local newTokens = tonumber(ARGV[3])
local learnEstimate = tonumber(ARGV[4])
local learnActual = tonumber(ARGV[5])
local holdMs = tonumber(ARGV[6])
local tokens = tonumber(ARGV[7])
local msPerToken = tonumber(ARGV[8])
local catchUp = tonumber(ARGV[9])
local keep = tonumber(ARGV[10])
local ttl = tonumber(ARGV[11])

redis.call('ZREM', KEYS[2], id)
if tokens > 0 and newTokens >= 0 then
  local delta = newTokens - charged
  if redis.call('HEXISTS', KEYS[4], id) == 1 then
    redis.call('HSET', KEYS[4], id, newTokens)
    put('sum', math.max(0, (num('sum') or 0) + delta))
  end
  local nt = num('nt') or now
  local from = nt
  if delta > 0 and now - catchUp > from then from = now - catchUp end
  put('nt', from + delta * msPerToken)
end
if tokens > 0 and learnEstimate > 0 then
  put('us', (num('us') or 0) * keep + learnActual)
  put('es', (num('es') or 0) * keep + learnEstimate)
end
if holdMs > 0 then
  local hold = num('hold')
  if hold == nil or hold < now + holdMs then put('hold', now + holdMs) end
end
touch(ttl)
return tostring(now)
`;

/** Hold everyone for `holdMs` (extending, never shortening, a hold in force). ARGV: holdMs, ttlMs. */
export const HOLD = `${common}
local holdMs = tonumber(ARGV[1])
local hold = num('hold')
if hold == nil or hold < now + holdMs then put('hold', now + holdMs) end
touch(tonumber(ARGV[2]))
return tostring(now)
`;

/**
 * Renew the leases of the permits this process still holds (re-adding any that a Redis restart lost).
 * ARGV: leaseMs, ttlMs, id…
 */
export const RENEW = `${common}
local lease = tonumber(ARGV[1])
for i = 3, #ARGV do redis.call('ZADD', KEYS[2], string.format('%.3f', now + lease), ARGV[i]) end
touch(tonumber(ARGV[2]))
return #ARGV - 2
`;
