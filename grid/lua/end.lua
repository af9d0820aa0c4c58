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
local live, ended = load_live(KEYS, now)
local found
for i, s in ipairs(live) do
  if s.id == id then found = table.remove(live, i) break end
end
if not found then
  local load = tonumber(redis.call('GET', KEYS[3]) or '0')
  if #ended > 0 then load = commit(KEYS, now, cap, live, ended) end
  if reason == 'abandoned' and redis.call('HEXISTS', KEYS[7], id) == 0 then
    remember_ended(KEYS, {id = id, energy = 0, ended_at = now, reason = 'abandoned', max = 0,
                          vehicle = ''})
  end
  return {0, 0, load, 0}
end
found.ended_at, found.reason = now, reason
ended[#ended + 1] = found
local load = commit(KEYS, now, cap, live, ended)
return {1, found.alloc, load, found.energy}
