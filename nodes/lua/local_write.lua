-- Local write: one atomic step, so any number of workers can write concurrently.
-- Invariants: no write is accepted unless this node is serving AND the Redis it verified with its
-- peers is the one running now (INFO run_id), so a Redis that restarted or lost its data cannot
-- hand out a clock entry before the node has checked it never used it; the own clock entry grows
-- by exactly 1 per accepted write; the stored version equals the clock after the increment and so
-- replaces every sibling this node has delivered; the key index, the per-origin index and the
-- digest include it; the write is in the delivery log; and the same message is queued for every
-- peer before anyone sees the reply, unless that peer's outbox would pass OUTBOX_MAX: then the
-- outbox is dropped and the peer is marked for a state transfer (kv:needsync).
-- KEYS: one outbox per peer
-- ARGV: n, self (0-based), key, value_json, log_max, log_value_json, outbox_max,
--       then per peer (same order as KEYS): peer id, wake-up channel
local meta = redis.call('HMGET', 'kv:meta', 'state', 'verified_run_id')
if meta[1] ~= 'serving' then return {'refused', 'recovering'} end
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
if meta[2] ~= run_id then return {'refused', 'redis restarted since the node last verified'} end

local n, self = tonumber(ARGV[1]), tonumber(ARGV[2]) + 1
local key, value, log_max = ARGV[3], ARGV[4], tonumber(ARGV[5])
local outbox_max = tonumber(ARGV[7])

local vc = load_vc(n)
vc[self] = vc[self] + 1
local vc_json = cjson.encode(vc)
redis.call('SET', 'kv:vc', vc_json)

local key_json = cjson.encode(key)
local siblings = '[{"value":' .. cjson.encode(value) .. ',"version":' .. vc_json
  .. ',"origin":' .. (self - 1) .. '}]'
redis.call('HSET', 'kv:store', key, siblings)
redis.call('ZADD', 'kv:keys', 0, key)
redis.call('ZADD', 'kv:idx:' .. (self - 1), vc[self], key)
digest_set(key, key_hash(key, (self - 1) .. '|' .. table.concat(vc, ',') .. '|' .. value))

local now = now_ms()
local seq = log_append(self - 1, key, ARGV[6], vc_json, 'local', 0, now)
redis.call('LTRIM', 'kv:log', -log_max, -1)

-- The wire form of the message, built once; the sender ships it without re-encoding.
local msg = '{"vc":' .. vc_json .. ',"key":' .. key_json .. ',"value":' .. value
  .. ',"ts":' .. now .. '}'
for i = 1, #KEYS do
  if redis.call('RPUSH', KEYS[i], msg) > outbox_max then
    redis.call('DEL', KEYS[i])
    redis.call('HINCRBY', 'kv:needsync', ARGV[6 + 2 * i], 1)
  end
  -- Wakes the peer's sender; a message, not a write, so it costs no fsync.
  redis.call('PUBLISH', ARGV[7 + 2 * i], 1)
end
return {vc_json, siblings, seq}
