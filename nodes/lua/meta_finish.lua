-- Finish verification: from now on local writes are accepted.
-- Invariant: only if the Redis verified is still the one running (same run_id); a node that
-- forgot moves its own entry up to `floor` (RECOVERY_SKIP past everything any peer has seen of
-- it, and already recorded by every peer), so no entry it hands out from now on was ever used
-- before, even one acknowledged but lost with the disk.
-- ARGV: n, self (0-based), run_id verified, floor (0 when nothing was forgotten)
local n, self = tonumber(ARGV[1]), tonumber(ARGV[2]) + 1
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
if run_id ~= ARGV[3] then return 0 end
local m = redis.call('HMGET', 'kv:meta', 'state', 'verified_run_id')
if m[1] == 'serving' and m[2] == run_id then return 1 end  -- another worker finished first
local vc = load_vc(n)
local floor = tonumber(ARGV[4])
if floor > vc[self] then
  vc[self] = floor
  redis.call('SET', 'kv:vc', cjson.encode(vc))
end
redis.call('HSET', 'kv:meta', 'state', 'serving', 'verified_run_id', run_id, 'forgot', '0',
  'max_seen', '0', 'reason', '')
return 1
