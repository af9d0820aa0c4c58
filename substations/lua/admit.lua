-- Admit one charging session if it fits. Invariant: load_w == sum(power_w of sessions whose
-- end_ms > now) and load_w <= capacity_w after every call; reaping, the capacity check and the
-- insert are one atomic step, so no interleaving of workers or balancers can overshoot.
-- The balancer's reservation for this request (if any) is settled in the same step, so
-- load_w + reserved never counts an in-flight request twice or not at all.
-- A request past its deadline (the balancer has given up on it and tried elsewhere) is
-- dropped, so a late admission can't leave a session nobody knows about.
-- KEYS: sessions, info, load_w, capacity_w, stats, reserved
-- ARGV: session_id, power_w, duration_ms, vehicle_id, capacity_w, reservation ('' = none),
--       deadline_ms (Redis time; 0 = none)
-- Returns {1, end_ms, load_w, capacity_w} when admitted,
--         {0, retry_after_s (-1: never fits), load_w, capacity_w} when refused,
--         {-1, 0, load_w, capacity_w} when past its deadline.
local power, duration, capacity = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
redis.call('SET', KEYS[4], capacity)
if ARGV[6] ~= '' then redis.call('ZREM', KEYS[6], ARGV[6]) end
local now = now_ms()
local load = reap(KEYS[1], KEYS[2], KEYS[3], KEYS[5], now)
local deadline = tonumber(ARGV[7])
if deadline > 0 and now > deadline then
  redis.call('HINCRBY', KEYS[5], 'late', 1)
  return {-1, 0, load, capacity}
end
if load + power > capacity then
  redis.call('HINCRBY', KEYS[5], 'refused', 1)
  return {0, retry_after(KEYS[1], KEYS[2], load, capacity, power, now), load, capacity}
end
local end_ms = now + duration
if redis.call('ZADD', KEYS[1], 'NX', end_ms, ARGV[1]) == 0 then
  return redis.error_reply('duplicate session id')
end
redis.call('HSET', KEYS[2], ARGV[1], power .. ':' .. now .. ':' .. ARGV[4])
load = load + power
redis.call('SET', KEYS[3], load)
redis.call('HINCRBY', KEYS[5], 'admitted', 1)
return {1, end_ms, load, capacity}
