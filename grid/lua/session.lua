-- One session's state, reaped first so an ended one is never reported charging (invariant:
-- lib.lua). Energy is integrated up to now in the answer only; nothing else is written
-- unless reaping ended something.
-- KEYS: the 8 substation keys (lib.lua)
-- ARGV: session_id
-- Returns {'charging', info, end_ms, energy_wms, now_ms}, {'ended', ended record, 0, 0, now_ms}
--         or {'unknown', '', 0, 0, now_ms}.
local id = ARGV[1]
local cap = tonumber(redis.call('GET', KEYS[4]) or '0')
local now = now_ms()
local live, ended = load_live(KEYS, now)
if #ended > 0 then commit(KEYS, now, cap, live, ended) end
for _, s in ipairs(live) do
  if s.id == id then return {'charging', encode(s), s.ends, s.energy, now} end
end
local record = redis.call('HGET', KEYS[7], id)
if record then return {'ended', record, 0, 0, now} end
return {'unknown', '', 0, 0, now}
