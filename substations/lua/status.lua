-- Reap, then report one substation. Invariant: load_w == sum(power_w of sessions whose
-- end_ms > now) after every call, so the reported load never includes an expired session.
-- KEYS: sessions, info, load_w, capacity_w, stats, reserved (unused)
-- ARGV: capacity_w, max sessions to list (0: none)
-- Returns {now_ms, load_w, capacity_w, active, admitted, refused, late, expired, deleted,
--          id1, info1, end_ms1, id2, ...} (sessions soonest-ending first).
redis.call('SET', KEYS[4], ARGV[1])
local now = now_ms()
local load = reap(KEYS[1], KEYS[2], KEYS[3], KEYS[5], now)
local stats = redis.call('HMGET', KEYS[5], 'admitted', 'refused', 'late', 'expired', 'deleted')
local out = {now, load, tonumber(ARGV[1]), redis.call('ZCARD', KEYS[1])}
for i = 1, 5 do out[#out + 1] = tonumber(stats[i] or '0') end
local limit = tonumber(ARGV[2])
if limit > 0 then
  local page = redis.call('ZRANGE', KEYS[1], 0, limit - 1, 'WITHSCORES')
  for i = 1, #page, 2 do
    out[#out + 1] = page[i]
    out[#out + 1] = redis.call('HGET', KEYS[2], page[i]) or ''
    out[#out + 1] = tonumber(page[i + 1])
  end
end
return out
