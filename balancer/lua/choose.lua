-- The balancer's decision in one round trip (substations/lua/lib.lua is prepended).
-- Invariant: every substation is reaped by Redis time before it is read, so a view never
-- counts an expired session; under the reserving strategy (least-utilization) the pick and
-- its reservation are one atomic step, so concurrent decisions see each other's in-flight
-- requests: lowest (load_w + reserved_w) / capacity_w among healthy substations where the
-- request fits, ties by name. Reservations are ZSET members "<id>:<watts>" scored by expiry
-- ms, so a crashed balancer's reservations vanish on their own.
-- KEYS: strategy, health (HASH name -> 0|1), rr counter, then per substation (sorted by name)
--       sessions, info, load_w, capacity_w, stats, reserved (6 keys each)
-- ARGV: default strategy, reserving strategy, power_w, reservation id, reservation ttl ms,
--       mode ('decide', or 'peek': no reservation, rr not advanced), then the substation
--       names in the same order as their keys
-- Returns {strategy, rr, now_ms, reserved_name or '', n_ranked, ranked names...,
--          then per substation: name, healthy, load_w, reserved_w, capacity_w, active,
--          retry_after_s}
local strategy = redis.call('GET', KEYS[1]) or ARGV[1]
local decide = ARGV[6] == 'decide'
local rr = tonumber(redis.call('GET', KEYS[3]) or '0')
if decide then rr = redis.call('INCR', KEYS[3]) end
local power, rid, ttl = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local now = now_ms()
local subs, fit = {}, {}
for i = 7, #ARGV do
  local k = 3 + (i - 7) * 6
  local name = ARGV[i]
  local load = reap(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 5], now)
  local cap = tonumber(redis.call('GET', KEYS[k + 4]) or '0')
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 6], '-inf', now)
  local reserved = 0
  for _, member in ipairs(redis.call('ZRANGE', KEYS[k + 6], 0, -1)) do
    reserved = reserved + (tonumber(string.match(member, ':(%d+)$')) or 0)
  end
  local healthy = (redis.call('HGET', KEYS[2], name) or '1') == '1' and 1 or 0
  local ra = retry_after(KEYS[k + 1], KEYS[k + 2], load, cap, power, now)
  local s = {name = name, healthy = healthy, load = load, reserved = reserved, cap = cap,
             active = redis.call('ZCARD', KEYS[k + 1]), ra = ra, key = KEYS[k + 6]}
  subs[#subs + 1] = s
  if healthy == 1 and cap > 0 and load + power <= cap then fit[#fit + 1] = s end
end
-- Those that fit even counting reservations come first; utilisation compared exactly by
-- cross-multiplying integers.
local function before(a, b)
  local a_ok = a.load + a.reserved + power <= a.cap
  local b_ok = b.load + b.reserved + power <= b.cap
  if a_ok ~= b_ok then return a_ok end
  local lhs, rhs = (a.load + a.reserved) * b.cap, (b.load + b.reserved) * a.cap
  if lhs ~= rhs then return lhs < rhs end
  return a.name < b.name
end
table.sort(fit, before)
local reserved_on = ''
if decide and strategy == ARGV[2] and #fit > 0 then
  redis.call('ZADD', fit[1].key, now + ttl, rid .. ':' .. power)
  reserved_on = fit[1].name
end
local out = {strategy, rr, now, reserved_on, #fit}
for _, s in ipairs(fit) do out[#out + 1] = s.name end
for _, s in ipairs(subs) do
  for _, v in ipairs({s.name, s.healthy, s.load, s.reserved, s.cap, s.active, s.ra}) do
    out[#out + 1] = v
  end
end
return out
