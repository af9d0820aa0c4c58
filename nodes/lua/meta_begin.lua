-- Start (or continue) verifying that this node's Redis data is continuous.
-- Invariant: the node is "serving" only while kv:meta.verified_run_id equals the run_id of the
-- Redis running now; a Redis that restarted (or came up empty, with no kv:meta) is put back to
-- "recovering" here, and local_write.lua refuses until meta_finish.lua verifies it again.
-- ARGV: a fresh incarnation id (used only when kv:meta does not exist: an empty Redis)
-- Returns: {state, incarnation, forgot, max_seen, run_id, reason}
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
if redis.call('EXISTS', 'kv:meta') == 0 then
  redis.call('HSET', 'kv:meta', 'state', 'recovering', 'incarnation', ARGV[1], 'forgot', '0',
    'max_seen', '0', 'reason', 'empty Redis: asking every peer what it knows of this node')
else
  local m = redis.call('HMGET', 'kv:meta', 'state', 'verified_run_id')
  if m[1] ~= 'serving' or m[2] ~= run_id then
    local reason = 'Redis restarted: asking every peer whether this node forgot anything'
    if m[1] ~= 'serving' then
      reason = redis.call('HGET', 'kv:meta', 'reason') or reason
    end
    redis.call('HSET', 'kv:meta', 'state', 'recovering', 'reason', reason)
  end
end
local m = redis.call('HMGET', 'kv:meta', 'state', 'incarnation', 'forgot', 'max_seen', 'reason')
return {m[1], m[2], m[3], m[4], run_id, m[5]}
