-- Cancel a queued car (DELETE). Invariant: as placed.lua; a cancelled id is never placed.
-- KEYS: queue (LIST), requests (HASH), placed (HASH)
-- ARGV: queue id
-- Returns {1, ''} cancelled, {0, substation} already placed there, {0, ''} unknown/ended.
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], '')
  return {1, ''}
end
return {0, redis.call('HGET', KEYS[3], ARGV[1]) or ''}
