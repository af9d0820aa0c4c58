-- Reap (sessions past their end are ended and the rest reallocated: invariant in lib.lua),
-- then report one substation, so the report never includes a session that is over.
-- KEYS: the 8 substation keys (lib.lua)
-- ARGV: capacity_w, max sessions to list (0: none)
-- Returns {now_ms, load_w, capacity_w, active, min_sum_w, max_sum_w, energy_wms delivered
--          (ended + charging), peak_w, over, then the counters of grid/sessions.py COUNTERS,
--          then id1, info1, end_ms1, energy1, id2, ...} (soonest-ending first).
local cap = tonumber(ARGV[1])
redis.call('SET', KEYS[4], cap)
local now = now_ms()
local st = begin(KEYS, now, cap)
finish(st)
local names = {'admitted', 'refused', 'late', 'expired', 'charged', 'deleted', 'abandoned',
               'energy_wms', 'peak_w', 'over'}
local stats = redis.call('HMGET', KEYS[5], unpack(names))
local function stat(i) return tonumber(stats[i] or '0') end
local live = all_sessions(KEYS)
for _, s in ipairs(live) do integrate(s, now) end
local out = {now, st.load, cap, #live, st.mins, st.maxs, stat(8) + sum_of(live, 'energy'),
             stat(9), stat(10)}
for i = 1, 7 do out[#out + 1] = stat(i) end
local limit = tonumber(ARGV[2])
table.sort(live, function(a, b) return a.ends < b.ends end)
for i = 1, math.min(limit, #live) do
  local s = live[i]
  out[#out + 1] = s.id
  out[#out + 1] = encode(s)
  out[#out + 1] = s.ends
  out[#out + 1] = s.energy
end
return out
