-- Local write: one atomic step, so any number of workers can write concurrently.
-- Invariant: the node's own clock entry grows by exactly 1 per accepted write (unique and
-- gap-free), the stored version equals the clock after the increment and therefore replaces
-- every sibling this node has delivered, the write is in the delivery log, and the same message
-- is queued for every peer before anyone sees the reply.
-- KEYS: vc, store, log, logseq, then one outbox per peer
-- ARGV: n, self (0-based), key, value_json, log_max, log_value_json, then one wake-up
--       channel per peer (same order as the outboxes)
local n, self = tonumber(ARGV[1]), tonumber(ARGV[2]) + 1
local key, value, log_max = ARGV[3], ARGV[4], tonumber(ARGV[5])

local raw = redis.call('GET', KEYS[1])
local vc = raw and cjson.decode(raw) or {}
for i = 1, n do vc[i] = vc[i] or 0 end
vc[self] = vc[self] + 1
local vc_json = cjson.encode(vc)
redis.call('SET', KEYS[1], vc_json)

local key_json = cjson.encode(key)
local siblings = '[{"value":' .. cjson.encode(value) .. ',"version":' .. vc_json
  .. ',"origin":' .. (self - 1) .. '}]'
redis.call('HSET', KEYS[2], key, siblings)

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = redis.call('INCR', KEYS[4])
redis.call('RPUSH', KEYS[3], '{"seq":' .. seq .. ',"origin":' .. (self - 1) .. ',"key":' .. key_json
  .. ',"value":' .. ARGV[6] .. ',"version":' .. vc_json
  .. ',"kind":"local","buffered_ms":0,"ts":' .. now .. '}')
redis.call('LTRIM', KEYS[3], -log_max, -1)

-- The wire form of the message, built once; the sender ships it without re-encoding.
local msg = '{"vc":' .. vc_json .. ',"key":' .. key_json .. ',"value":' .. value
  .. ',"ts":' .. now .. '}'
for i = 5, #KEYS do
  redis.call('RPUSH', KEYS[i], msg)
  -- Wakes the peer's sender; a message, not a write, so it costs no fsync.
  redis.call('PUBLISH', ARGV[i + 2], 1)
end
return {vc_json, siblings, seq}
