-- End one session early. Invariant: load_w == sum(power_w of sessions whose end_ms > now)
-- after every call; the session's power is released in the same atomic step that removes it.
-- KEYS: sessions, info, load_w, capacity_w, stats, reserved (unused)
-- ARGV: session_id, capacity_w
-- Returns {1, power_w, load_w} when it was active, {0, 0, load_w} when unknown or expired.
redis.call('SET', KEYS[4], ARGV[2])
local now = now_ms()
local load = reap(KEYS[1], KEYS[2], KEYS[3], KEYS[5], now)
local power = power_of(redis.call('HGET', KEYS[2], ARGV[1]))
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return {0, 0, load} end
redis.call('HDEL', KEYS[2], ARGV[1])
load = load - power
redis.call('SET', KEYS[3], load)
redis.call('HINCRBY', KEYS[5], 'deleted', 1)
return {1, power, load}
