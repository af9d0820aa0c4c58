-- The balancer's decision in one round trip (lib.lua is prepended).
-- Invariant: every substation is reaped by Redis time before it is read (so a view never
-- counts a session that is over), and under the reserving strategy (least-utilization) the
-- ranking and the reservation of the pick are one atomic step, so concurrent decisions see
-- each other's in-flight requests. Rank among healthy substations where the minimum fits:
-- first those where it fits even counting reservations, then the most power the car would
-- get there (lib.lua allocate() with the reservations and the newcomer added), then the
-- lowest utilisation (load_w + reserved minimums) / capacity_w, exactly by cross-multiplying,
-- then the name. Reservations are "<rid>:<min_w>:<max_w>" scored by expiry ms, so a crashed
-- balancer's reservations vanish on their own.
-- KEYS: strategy, health (HASH name -> 0|1), rr counter, queue (LIST), then per substation
--       (sorted by name) its 8 keys (lib.lua)
-- ARGV: default strategy, reserving strategy, min_w, max_w, reservation id (hex),
--       reservation ttl ms, mode ('decide', or 'peek': no reservation, rr not advanced),
--       wait ('1': the car will join the queue if others wait, so reserve nothing then),
--       then the substation names in the same order as their keys
-- Returns {strategy, rr, now_ms, reserved_name or '', queue length, n_ranked, ranked...,
--          then per substation: name, healthy, load_w, reserved_min_w, capacity_w, active,
--          retry_after_s, share_w (what the car would get there), min_sum_w}
local strategy = redis.call('GET', KEYS[1]) or ARGV[1]
local decide = ARGV[7] == 'decide'
local rr = tonumber(redis.call('GET', KEYS[3]) or '0')
if decide then rr = redis.call('INCR', KEYS[3]) end
local min_w, max_w, rid, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local now = now_ms()
local newcomer = {id = '.' .. rid, min = min_w, max = max_w, tie = tie_of('.' .. rid)}
local subs, fit = {}, {}
for i = 9, #ARGV do
  local base = 4 + (i - 9) * 8
  local K = {}
  for j = 1, 8 do K[j] = KEYS[base + j] end
  local cap = tonumber(redis.call('GET', K[4]) or '0')
  local s = {name = ARGV[i], cap = cap, load = 0, reserved = 0, active = 0, mins = 0,
             share = 0, ra = -1, roomy = false, key = K[6]}
  s.healthy = (redis.call('HGET', KEYS[2], s.name) or '1') == '1' and 1 or 0
  if cap > 0 then  -- 0: the substation never published its capacity
    local st = begin(K, now, cap)
    finish(st)
    local pending = reservations(K[6], now)
    s.load, s.mins, s.active = st.load, st.mins, redis.call('ZCARD', K[1])
    s.reserved = sum_of(pending, 'min')
    s.ra = retry_after(st, min_w)
    s.roomy = st.mins + s.reserved + min_w <= cap
    if max_w > 0 and st.mins + min_w <= cap then
      local extra_max = s.roomy and sum_of(pending, 'max') or 0
      if st.maxs + extra_max + max_w <= cap then
        s.share = max_w  -- everyone gets all they ask: no need to read the sessions
      else
        local demands = {newcomer}
        for _, d in ipairs(all_sessions(K)) do demands[#demands + 1] = d end
        if s.roomy then
          for _, d in ipairs(pending) do demands[#demands + 1] = d end
        end
        allocate(demands, cap)
        s.share = newcomer.alloc
      end
    end
    if s.healthy == 1 and st.mins + min_w <= cap then fit[#fit + 1] = s end
  end
  subs[#subs + 1] = s
end
table.sort(fit, function(a, b)
  if a.roomy ~= b.roomy then return a.roomy end
  if a.share ~= b.share then return a.share > b.share end
  local lhs, rhs = (a.load + a.reserved) * b.cap, (b.load + b.reserved) * a.cap
  if lhs ~= rhs then return lhs < rhs end
  return a.name < b.name
end)
local queue_len = redis.call('LLEN', KEYS[4])
local reserved_on = ''
if decide and strategy == ARGV[2] and #fit > 0 and not (ARGV[8] == '1' and queue_len > 0) then
  redis.call('ZADD', fit[1].key, now + ttl, rid .. ':' .. itos(min_w) .. ':' .. itos(max_w))
  reserved_on = fit[1].name
end
local out = {strategy, rr, now, reserved_on, queue_len, #fit}
for _, s in ipairs(fit) do out[#out + 1] = s.name end
for _, s in ipairs(subs) do
  for _, v in ipairs({s.name, s.healthy, s.load, s.reserved, s.cap, s.active, s.ra, s.share,
                      s.mins}) do
    out[#out + 1] = v
  end
end
return out
