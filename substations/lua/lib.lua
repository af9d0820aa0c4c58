-- Grid library, prepended to every grid script when it is loaded (substations/scripts.py).
-- Per substation the scripts get 6 keys in this order: sessions (ZSET id -> end_ms),
-- info (HASH id -> "power_w:start_ms:vehicle_id"), load_w, capacity_w, stats (HASH counters),
-- reserved (ZSET of balancers' in-flight reservations "<id>:<watts>" -> expiry ms).
-- Invariant every script keeps: load_w == sum(power_w of the sessions in the ZSET), and after
-- reap() every session in the ZSET has end_ms > now (Redis server time), so an expired session
-- never counts towards load.

local PAGE = 500  -- keep unpack() far below Lua's C-stack limit

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function power_of(info)
  if not info then return 0 end
  return tonumber(string.match(info, '^(%d+):')) or 0
end

-- Sum of power_w of `ids` (a list of session ids).
local function powers(info_key, ids)
  local total = 0
  for i = 1, #ids, PAGE do
    local chunk = {}
    for j = i, math.min(i + PAGE - 1, #ids) do chunk[#chunk + 1] = ids[j] end
    for _, info in ipairs(redis.call('HMGET', info_key, unpack(chunk))) do
      total = total + power_of(info)
    end
  end
  return total
end

-- Drop sessions whose end_ms <= now; returns the load in watts after reaping.
local function reap(sessions_key, info_key, load_key, stats_key, now)
  local load = tonumber(redis.call('GET', load_key) or '0')
  local expired = redis.call('ZRANGEBYSCORE', sessions_key, '-inf', now)
  if #expired == 0 then return load end
  load = load - powers(info_key, expired)
  redis.call('ZREMRANGEBYSCORE', sessions_key, '-inf', now)
  for i = 1, #expired, PAGE do
    redis.call('HDEL', info_key, unpack(expired, i, math.min(i + PAGE - 1, #expired)))
  end
  redis.call('SET', load_key, load)
  redis.call('HINCRBY', stats_key, 'expired', #expired)
  return load
end

-- Seconds until enough of the soonest-ending sessions end for `power` to fit (ceil, >= 1);
-- 0 when it fits now, -1 when it can never fit (power > capacity).
local function retry_after(sessions_key, info_key, load, capacity, power, now)
  if power > capacity then return -1 end
  local need = load + power - capacity
  if need <= 0 then return 0 end
  -- Usually one or two sessions suffice: start with a small page, grow it.
  local freed, offset, size = 0, 0, 8
  while true do
    local page = redis.call('ZRANGE', sessions_key, offset, offset + size - 1, 'WITHSCORES')
    if #page == 0 then return 1 end
    for i = 1, #page, 2 do
      freed = freed + power_of(redis.call('HGET', info_key, page[i]))
      if freed >= need then
        return math.max(1, math.ceil((tonumber(page[i + 1]) - now) / 1000))
      end
    end
    offset, size = offset + size, math.min(size * 4, PAGE)
  end
end

