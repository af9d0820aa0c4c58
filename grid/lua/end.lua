-- End one session early and share its power among the others in the same atomic step
-- (invariant: lib.lua). reason 'deleted' (the car unplugged) or 'abandoned' (the balancer gave
-- up waiting for this admission): an abandoned id that is not (yet) admitted is remembered as
-- ended, so a late admission of it is refused (admit.lua): a car never holds a session it was
-- not told about. The request's reservation, if any, is settled here too.
-- KEYS: the 8 substation keys (lib.lua)
-- ARGV: session_id, reason, reservation ('' none)
-- Returns {1, alloc_w it had, load_w after, energy_wms} when it was charging,
--         {0, 0, load_w, 0} when unknown or already over.
local id, reason = ARGV[1], ARGV[2]
local cap = tonumber(redis.call('GET', KEYS[4]) or '0')
settle_reservation(KEYS[6], ARGV[3])
local now = now_ms()
local st = begin(KEYS, now, cap)
local s = find(st, id)
if not s then
  finish(st)
  if reason == 'abandoned' and redis.call('HEXISTS', KEYS[7], id) == 0 then
    remember_ended(KEYS, {id = id, energy = 0, ended_at = now, reason = 'abandoned', max = 0,
                          vehicle = ''})
  end
  return {0, 0, st.load, 0}
end
integrate(s, now)
s.ended_at, s.reason = now, reason
drop(st, s)
finish(st)
return {1, s.alloc, st.load, s.energy}
