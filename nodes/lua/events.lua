-- Read the delivery log after a sequence number.
-- Invariant: entries are contiguous by seq and end at kv:logseq, so the index of seq s is
-- s - first; reading the length and the range in one step keeps trimming from shifting it.
-- KEYS: log, logseq   ARGV: since, limit
local since, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = last - redis.call('LLEN', KEYS[1]) + 1
if since >= last then return {} end
local start = math.max(since + 1, first) - first
return redis.call('LRANGE', KEYS[1], start, start + limit - 1)
