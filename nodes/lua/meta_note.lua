-- Record what verification learnt so far, so a retry (or another worker) never un-learns it.
-- Invariant: "forgot" only goes from 0 to 1 and max_seen only grows until meta_finish.lua.
-- ARGV: forgot (0/1), max_seen, reason
if ARGV[1] == '1' then redis.call('HSET', 'kv:meta', 'forgot', '1') end
local cur = tonumber(redis.call('HGET', 'kv:meta', 'max_seen') or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', 'kv:meta', 'max_seen', ARGV[2]) end
redis.call('HSET', 'kv:meta', 'reason', ARGV[3])
return redis.call('HMGET', 'kv:meta', 'forgot', 'max_seen')
