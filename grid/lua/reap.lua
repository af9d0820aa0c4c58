-- The reaper tick: end the sessions whose end (deadline or energy target) has passed and
-- share their power among the rest (invariant: lib.lua). Cheap when nothing is due.
-- KEYS: the 8 substation keys (lib.lua)
-- ARGV: capacity_w
-- Returns the number of sessions ended.
local now = now_ms()
if #redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1) == 0 then return 0 end
local st = begin(KEYS, now, tonumber(ARGV[1]))
finish(st)
return #st.ended
