-- Renew a lock only if we still hold it (a paused worker must not extend someone else's lock).
-- Invariant: the lock key's value is its holder's token; only the holder changes its TTL.
-- KEYS: lock   ARGV: token, ttl_ms
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
