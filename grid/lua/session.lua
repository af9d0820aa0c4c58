-- One session's state, reaped first so an ended one is never reported charging (invariant:
-- lib.lua). Energy is integrated up to now in the answer only; nothing else is written
-- unless reaping ended something.
-- KEYS: the 8 substation keys (lib.lua)
-- ARGV: session_id
-- Returns {'charging', info, end_ms, energy_wms, now_ms}, {'ended', ended record, 0, 0, now_ms}
--         or {'unknown', '', 0, 0, now_ms}.
local id = ARGV[1]
local now = now_ms()
local st = begin(KEYS, now, tonumber(redis.call('GET', KEYS[4]) or '0'))
finish(st)
local s = find(st, id)
if s then
  integrate(s, now)
  return {'charging', encode(s), s.ends, s.energy, now}
end
local record = redis.call('HGET', KEYS[7], id)
if record then return {'ended', record, 0, 0, now} end
return {'unknown', '', 0, 0, now}
