-- Admit one charging session when its minimum fits beside the others' minimums, and share
-- the capacity again among all of them (max-min fair, lib.lua allocate()). Invariant: see
-- lib.lua; reaping, the minimum check, the insert and the reallocation are one atomic step, so
-- no interleaving of workers or balancers can overshoot. The balancer's reservation for this
-- request is settled in the same step. The session id is the caller's idempotency key: a
-- retried id answers the existing session, and an id that ended or was given up (end.lua
-- 'abandoned') is never admitted again. A request past its deadline is dropped: the balancer
-- has given up on it, so admitting would leave a session nobody knows about.
-- KEYS: the 8 substation keys (lib.lua)
-- ARGV: session_id, max_w, min_w, duration_ms, vehicle_id, capacity_w, reservation ('' none),
--       deadline_ms (Redis time; 0 none), target_wms (0 none)
-- Returns {1, end_ms, load_w, capacity_w, alloc_w} admitted (2 instead of 1: already was),
--         {0, retry_after_s (-1: never fits), load_w, capacity_w, 0} refused,
--         {-1, 0, load_w, capacity_w, 0} past its deadline or an id already used.
local id, max_w, min_w = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cap = tonumber(ARGV[6])
redis.call('SET', KEYS[4], cap)
settle_reservation(KEYS[6], ARGV[7])
local now = now_ms()
local st = begin(KEYS, now, cap)
local deadline = tonumber(ARGV[8])
local known = find(st, id)
if known or redis.call('HEXISTS', KEYS[7], id) == 1 or (deadline > 0 and now > deadline) then
  finish(st)
  known = find(st, id)
  if known then return {2, known.ends, st.load, cap, known.alloc} end
  redis.call('HINCRBY', KEYS[5], 'late', 1)
  return {-1, 0, st.load, cap, 0}
end
if st.mins + min_w > cap then
  finish(st)
  redis.call('HINCRBY', KEYS[5], 'refused', 1)
  return {0, retry_after(st, min_w), st.load, cap, 0}
end
local s = {id = id, max = max_w, min = min_w, alloc = 0, start = now, last = now, energy = 0,
           target = tonumber(ARGV[9]), deadline = now + tonumber(ARGV[4]), vehicle = ARGV[5],
           tie = tie_of(id)}
finish(st, s)
redis.call('HINCRBY', KEYS[5], 'admitted', 1)
return {1, s.ends, st.load, cap, s.alloc}
