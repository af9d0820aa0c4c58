-- Release a lock only if we still hold it.
-- Invariant: the lock key's value is its holder's token; only the holder deletes it.
-- KEYS: lock   ARGV: token
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
