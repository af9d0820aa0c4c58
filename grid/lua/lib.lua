-- Grid library, prepended to every grid script when it is loaded (grid/scripts.py).
-- Per substation the scripts get 8 keys in this order (grid/keys.py):
--   1 sessions ZSET id -> end ms (Redis time: its deadline, or sooner when its energy target
--     will be reached at its current allocation)
--   2 info HASH id -> "max_w:min_w:alloc_w:start_ms:last_ms:energy_wms:target_wms:deadline_ms:vehicle"
--   3 load_w (sum of allocations)   4 capacity_w
--   5 stats HASH (counters, min_sum, max_sum, energy_wms of ended sessions, audit peak_w/over)
--   6 reserved ZSET "<rid>:<min_w>:<max_w>" -> expiry ms (balancers' in-flight picks)
--   7 ended HASH id -> "energy_wms:ended_ms:reason:max_w:vehicle"   8 ended_order ZSET id -> ms
-- Invariant every state change keeps (all of them go through begin() ... finish()):
--   sum(min_w) <= capacity_w, every alloc_w in [min_w, max_w], sum(alloc_w) == load_w
--   <= capacity_w, allocations max-min fair (allocate(), same as grid/allocation.py), and
--   energy_wms == the integral of alloc_w over Redis time up to last_ms (allocations change
--   only in a step, and a session's energy is folded in whenever its allocation changes),
--   and stats min_sum/max_sum == the sums of min_w/max_w over the charging sessions.
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

local function sum_of(list, field)
  local total = 0
  for _, s in ipairs(list) do total = total + s[field] end
  return total
end

-- Every charging session (after begin() reaped the due ones), with .ends = its ZSET score.
local function all_sessions(K)
  local page = redis.call('ZRANGE', K[1], 0, -1, 'WITHSCORES')
  local live = {}
  for i = 1, #page, 2 * PAGE do
    local ids = {}
    for j = i, math.min(i + 2 * PAGE - 1, #page), 2 do ids[#ids + 1] = page[j] end
    local infos = redis.call('HMGET', K[2], unpack(ids))
    for j, id in ipairs(ids) do
      if infos[j] then
        local s = decode(id, infos[j])
        s.ends = tonumber(page[i + 2 * (j - 1) + 1])
        live[#live + 1] = s
      end
    end
  end
  return live
end

local function remember_ended(K, s)
  local record = table.concat({itos(s.energy), itos(s.ended_at), s.reason, itos(s.max),
                               s.vehicle}, ':')
  redis.call('HSET', K[7], s.id, record)
  redis.call('ZADD', K[8], s.ended_at, s.id)
end

-- Take a session off the substation (its energy already integrated to its end).
local function drop(st, s)
  redis.call('ZREM', st.K[1], s.id)
  redis.call('HDEL', st.K[2], s.id)
  st.mins, st.maxs, st.load = st.mins - s.min, st.maxs - s.max, st.load - s.alloc
  st.ended[#st.ended + 1] = s
end

-- Start a step: read the aggregates and reap the sessions whose end (deadline or energy
-- target) is due by Redis time. Every state change is begin() ... finish().
-- Aggregates live in the stats HASH: min_sum, max_sum (of the charging sessions).
local function begin(K, now, cap)
  local agg = redis.call('HMGET', K[5], 'min_sum', 'max_sum')
  local st = {K = K, now = now, cap = cap, ended = {},
              load = tonumber(redis.call('GET', K[3]) or '0'),
              mins = tonumber(agg[1] or '0'), maxs = tonumber(agg[2] or '0')}
  st.saturated = st.maxs > cap  -- some session was held below its maximum
  local due = redis.call('ZRANGEBYSCORE', K[1], '-inf', now, 'WITHSCORES')
  for i = 1, #due, 2 do
    local info = redis.call('HGET', K[2], due[i])
    if info then
      local s = decode(due[i], info)
      s.ends = tonumber(due[i + 1])
      integrate(s, s.ends)
      s.ended_at = s.ends
      s.reason = (s.target > 0 and s.energy >= s.target) and 'charged' or 'expired'
      drop(st, s)
    else
      redis.call('ZREM', K[1], due[i])
    end
  end
  return st
end

-- A charging session by id (nil when not charging).
local function find(st, id)
  local score = redis.call('ZSCORE', st.K[1], id)
  if not score then return nil end
  local s = decode(id, redis.call('HGET', st.K[2], id))
  s.ends = tonumber(score)
  return s
end

local function store(st, s)
  s.ends = schedule(s, st.now)
  redis.call('HSET', st.K[2], s.id, encode(s))
  redis.call('ZADD', st.K[1], s.ends, s.id)
end

-- Finish a step: add `added` (a new session) if given, reallocate and write what changed.
-- While no session is (or was) held below its maximum, every allocation is its maximum and
-- nothing but the newcomer changes: O(1). Otherwise every allocation is recomputed
-- (allocate()); a session whose allocation changes gets its energy integrated up to now
-- with the old one first, and its end rescheduled.
local function finish(st, added)
  local K, now, cap = st.K, st.now, st.cap
  if not added and #st.ended == 0 then return st.load end
  if added then st.mins, st.maxs = st.mins + added.min, st.maxs + added.max end
  if st.saturated or st.maxs > cap then
    local live = all_sessions(K)
    if added then live[#live + 1] = added end
    local before = {}
    for i, s in ipairs(live) do before[i] = s.alloc end
    allocate(live, cap)
    st.load = 0
    for i, s in ipairs(live) do
      st.load = st.load + s.alloc
      if s == added or s.alloc ~= before[i] then
        local new = s.alloc
        s.alloc = before[i]
        integrate(s, now)
        s.alloc, s.last = new, now
        store(st, s)
      end
    end
  elseif added then
    added.alloc = added.max
    st.load = st.load + added.alloc
    store(st, added)
  end
  for _, s in ipairs(st.ended) do
    remember_ended(K, s)
    redis.call('HINCRBY', K[5], s.reason, 1)
    redis.call('HINCRBY', K[5], 'energy_wms', s.energy)
  end
  if #st.ended > 0 then
    local extra = redis.call('ZCARD', K[8]) - KEEP_ENDED
    if extra > 0 then
      for _, id in ipairs(redis.call('ZRANGE', K[8], 0, extra - 1)) do
        redis.call('HDEL', K[7], id)
      end
      redis.call('ZREMRANGEBYRANK', K[8], 0, extra - 1)
    end
    redis.call('PUBLISH', ROOM_CHANNEL, K[1])
  end
  redis.call('SET', K[3], st.load)
  redis.call('HSET', K[5], 'min_sum', st.mins, 'max_sum', st.maxs)
  -- Audit: the highest total this substation ever had after a step, and how many steps
  -- ended above capacity or with minimums that don't fit (must stay 0).
  local peak = tonumber(redis.call('HGET', K[5], 'peak_w') or '0')
  if st.load > peak then redis.call('HSET', K[5], 'peak_w', st.load) end
  if st.load > cap or st.mins > cap then redis.call('HINCRBY', K[5], 'over', 1) end
  return st.load
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
local function retry_after(st, need_min)
  if need_min > st.cap then return -1 end
  local over = st.mins + need_min - st.cap
  if over <= 0 then return 0 end
  local by_end = all_sessions(st.K)
  table.sort(by_end, function(a, b) return a.ends < b.ends end)
  for _, s in ipairs(by_end) do
    over = over - s.min
    if over <= 0 then return math.max(1, math.ceil((s.ends - st.now) / 1000)) end
  end
  return 1
end
