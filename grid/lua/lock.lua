-- Take or renew a lease (the queue dispatcher's). Invariant: at most one holder at a time;
-- only the holder renews it, and it lapses by itself when the holder dies.
-- KEYS: lock   ARGV: holder id, ttl ms
-- Returns 1 when `holder` holds it now.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
