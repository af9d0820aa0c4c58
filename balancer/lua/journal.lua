-- Record one routing decision after the car has its answer, in one step. Invariant: fails[s]
-- is the number of consecutive request-path errors of substation s (reset by any answer),
-- and a substation with fails >= eject_after is marked unhealthy (passive ejection) until
-- the next successful active check; routed counts every try; recent keeps the newest 50.
-- KEYS: routed (HASH "<name>|<outcome>" -> n), fails (HASH), recent (LIST), health (HASH)
-- ARGV: decision json, recent max, eject_after, then per try: substation, outcome
-- Returns the substations this call ejected (they were healthy before), each followed by its
-- streak.
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[2]) - 1)
local eject_after, out = tonumber(ARGV[3]), {}
for i = 4, #ARGV, 2 do
  local name, outcome = ARGV[i], ARGV[i + 1]
  redis.call('HINCRBY', KEYS[1], name .. '|' .. outcome, 1)
  if outcome == 'error' then
    local streak = redis.call('HINCRBY', KEYS[2], name, 1)
    if streak >= eject_after and redis.call('HGET', KEYS[4], name) ~= '0' then
      redis.call('HSET', KEYS[4], name, '0')
      out[#out + 1] = name
      out[#out + 1] = streak
    end
  else
    redis.call('HDEL', KEYS[2], name)
  end
end
return out
