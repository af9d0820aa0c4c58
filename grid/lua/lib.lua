-- Grid library, prepended to every grid script when it is loaded (grid/scripts.py).
-- Per substation the scripts get 8 keys in this order (grid/keys.py):
--   1 sessions ZSET id -> end ms (Redis time: its deadline, or sooner when its energy target
--     will be reached at its current allocation)
--   2 info HASH id -> "max_w:min_w:alloc_w:start_ms:last_ms:energy_wms:target_wms:deadline_ms:vehicle"
--   3 load_w (sum of allocations)   4 capacity_w   5 stats HASH (counters, audit peak_w)
--   6 reserved ZSET "<rid>:<min_w>:<max_w>" -> expiry ms (balancers' in-flight picks)
--   7 ended HASH id -> "energy_wms:ended_ms:reason:max_w:vehicle"   8 ended_order ZSET id -> ms
-- Invariant every state change keeps (all of them go through commit()):
--   sum(min_w) <= capacity_w, every alloc_w in [min_w, max_w], sum(alloc_w) == load_w
--   <= capacity_w, allocations max-min fair (allocate(), same as grid/allocation.py), and
--   energy_wms == the integral of alloc_w over Redis time up to last_ms.
-- Every quantity is an integer (W, ms, W*ms < 2^53) and written with itos(): Lua's tostring
-- and cjson keep only 14 significant digits.

local PAGE = 500  -- keep unpack() far below Lua's C-stack limit
local KEEP_ENDED = 10000  -- ended sessions remembered for GET /sessions/<id>
local ROOM_CHANNEL = 'grid:room'  -- published when power frees up: wakes balancers' queues

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function itos(x) return string.format('%d', x) end

local function tie_of(id)
  local hex = string.match(id, '%.(%x%x%x%x%x%x%x%x%x%x%x%x)')
  return hex and tonumber(hex, 16) or 0
end

local function decode(id, info)
  local mx, mn, al, st, la, en, tg, dl, veh = string.match(info,
    '^(%d+):(%d+):(%d+):(%d+):(%d+):(%d+):(%d+):(%d+):(.*)$')
  return {id = id, max = tonumber(mx), min = tonumber(mn), alloc = tonumber(al),
          start = tonumber(st), last = tonumber(la), energy = tonumber(en),
          target = tonumber(tg), deadline = tonumber(dl), vehicle = veh, tie = tie_of(id)}
end

local function encode(s)
  return table.concat({itos(s.max), itos(s.min), itos(s.alloc), itos(s.start), itos(s.last),
                       itos(s.energy), itos(s.target), itos(s.deadline), s.vehicle}, ':')
end

local function clamp(level, s)
  if level < s.min then return s.min end
  if level > s.max then return s.max end
  return level
end

local function level_sum(list, level)
  local total = 0
  for _, s in ipairs(list) do total = total + clamp(level, s) end
  return total
end

-- Max-min fair water-filling in integer watts; sets s.alloc. Needs sum(min) <= cap.
-- The same rule, step for step, as grid/allocation.py allocate().
local function allocate(list, cap)
  if #list == 0 then return end
  local summax, top = 0, 0
  for _, s in ipairs(list) do
    summax = summax + s.max
    if s.max > top then top = s.max end
  end
  if summax <= cap then
    for _, s in ipairs(list) do s.alloc = s.max end
    return
  end
  local lo, hi = 0, top
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if level_sum(list, mid) <= cap then lo = mid else hi = mid - 1 end
  end
  local used, rising = 0, {}
  for _, s in ipairs(list) do
    s.alloc = clamp(lo, s)
    used = used + s.alloc
    if s.min <= lo and lo < s.max then rising[#rising + 1] = s end
  end
  table.sort(rising, function(a, b)
    if a.tie ~= b.tie then return a.tie < b.tie end
    return a.id < b.id
  end)
  for i = 1, math.min(cap - used, #rising) do rising[i].alloc = rising[i].alloc + 1 end
end

local function ceil_div(a, b)
  local q = math.floor(a / b)
  while q * b < a do q = q + 1 end
  while q > 0 and (q - 1) * b >= a do q = q - 1 end
  return q
end

-- When `s` stops at its current allocation: its deadline, or when its energy target is met.
local function schedule(s, now)
  local stop = s.deadline
  if s.target > 0 then
    local rest = s.target - s.energy
    if rest <= 0 then return now end
    local by_energy = now + ceil_div(rest, s.alloc)
    if by_energy < stop then stop = by_energy end
  end
  return stop
end

local function integrate(s, upto)
  if upto > s.last then
    s.energy = s.energy + s.alloc * (upto - s.last)
    s.last = upto
  end
end

-- Every session, energy integrated up to now (or its end): {live}, {ended} (ended ones have
-- .reason 'charged' (energy target met) or 'expired' (duration over)).
local function load_live(K, now)
  local page = redis.call('ZRANGE', K[1], 0, -1, 'WITHSCORES')
  local live, ended = {}, {}
  for i = 1, #page, 2 * PAGE do
    local ids = {}
    for j = i, math.min(i + 2 * PAGE - 1, #page), 2 do ids[#ids + 1] = page[j] end
    local infos = redis.call('HMGET', K[2], unpack(ids))
    for j, id in ipairs(ids) do
      local s = decode(id, infos[j])
      s.ends = tonumber(page[i + 2 * (j - 1) + 1])
      if s.ends <= now then
        integrate(s, s.ends)
        s.ended_at = s.ends
        s.reason = (s.target > 0 and s.energy >= s.target) and 'charged' or 'expired'
        ended[#ended + 1] = s
      else
        integrate(s, now)
        live[#live + 1] = s
      end
    end
  end
  return live, ended
end

local function sum_of(list, field)
  local total = 0
  for _, s in ipairs(list) do total = total + s[field] end
  return total
end

local function remember_ended(K, s)
  local record = table.concat({itos(s.energy), itos(s.ended_at), s.reason, itos(s.max),
                               s.vehicle}, ':')
  redis.call('HSET', K[7], s.id, record)
  redis.call('ZADD', K[8], s.ended_at, s.id)
end

-- The one step that writes: reallocate the live sessions, reschedule their ends, drop the
-- ended ones (remembered for GET /sessions), keep load_w, counters and the audit peak.
local function commit(K, now, cap, live, ended)
  allocate(live, cap)
  local load = 0
  for _, s in ipairs(live) do
    s.last = now
    s.ends = schedule(s, now)
    load = load + s.alloc
    redis.call('HSET', K[2], s.id, encode(s))
    redis.call('ZADD', K[1], s.ends, s.id)
  end
  for _, s in ipairs(ended) do
    redis.call('ZREM', K[1], s.id)
    redis.call('HDEL', K[2], s.id)
    remember_ended(K, s)
    redis.call('HINCRBY', K[5], s.reason, 1)
    redis.call('HINCRBY', K[5], 'energy_wms', s.energy)
  end
  if #ended > 0 then
    local extra = redis.call('ZCARD', K[8]) - KEEP_ENDED
    if extra > 0 then
      for _, id in ipairs(redis.call('ZRANGE', K[8], 0, extra - 1)) do
        redis.call('HDEL', K[7], id)
      end
      redis.call('ZREMRANGEBYRANK', K[8], 0, extra - 1)
    end
    redis.call('PUBLISH', ROOM_CHANNEL, K[1])
  end
  redis.call('SET', K[3], load)
  -- Audit, summed here from the allocations just written (not from load_w): the highest
  -- total this substation ever had, and how many steps were over capacity (must stay 0).
  local peak = tonumber(redis.call('HGET', K[5], 'peak_w') or '0')
  if load > peak then redis.call('HSET', K[5], 'peak_w', load) end
  if load > cap or sum_of(live, 'min') > cap then redis.call('HINCRBY', K[5], 'over', 1) end
  return load
end

-- Reservations are released here only: by the admission they were made for, or by the
-- balancer giving up on that admission (end.lua), else they expire.
local function settle_reservation(reserved_key, member)
  if member ~= '' then redis.call('ZREM', reserved_key, member) end
end

-- Pending reservations as demands {id, min, max, tie}, expired ones dropped first.
local function reservations(reserved_key, now)
  redis.call('ZREMRANGEBYSCORE', reserved_key, '-inf', now)
  local out = {}
  for _, member in ipairs(redis.call('ZRANGE', reserved_key, 0, -1)) do
    local rid, mn, mx = string.match(member, '^(%x+):(%d+):(%d+)$')
    if rid then
      out[#out + 1] = {id = '.' .. rid, min = tonumber(mn), max = tonumber(mx),
                       tie = tie_of('.' .. rid)}
    end
  end
  return out
end

-- Seconds until enough of the soonest-ending sessions end for a minimum of `need_min` to fit
-- (ceil, >= 1); 0 when it fits now, -1 when it never fits (need_min > capacity).
local function retry_after(live, cap, need_min, now)
  if need_min > cap then return -1 end
  local over = sum_of(live, 'min') + need_min - cap
  if over <= 0 then return 0 end
  local by_end = {}
  for i, s in ipairs(live) do by_end[i] = s end
  table.sort(by_end, function(a, b) return a.ends < b.ends end)
  for _, s in ipairs(by_end) do
    over = over - s.min
    if over <= 0 then return math.max(1, math.ceil((s.ends - now) / 1000)) end
  end
  return 1
end
