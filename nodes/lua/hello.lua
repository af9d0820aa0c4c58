-- A peer that may have forgotten asks what this node knows of it.
-- Invariants: the answer's `seen` is at least every own entry of the asker this node delivered,
-- buffered, or was told is the asker's new floor; floors (kv:floors) and the asker's incarnation
-- id (kv:incarnations) are remembered, so a node that forgets twice, or forgets before any of
-- its writes reached anyone, still learns where its entries must restart.
-- ARGV: n, asker (0-based), asker's incarnation id, floor (0 = just asking)
-- Returns: {seen, highest buffered from the asker, previous incarnation id}
local n, who, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local vc = load_vc(n)
local bufmax = 0
for _, field in ipairs(redis.call('HKEYS', 'kv:buffer')) do
  local j, c = string.match(field, '^(%d+):(%d+)$')
  if tonumber(j) == who and tonumber(c) > bufmax then bufmax = tonumber(c) end
end
local known = tonumber(redis.call('HGET', 'kv:floors', who) or '0')
if floor > known then
  redis.call('HSET', 'kv:floors', who, floor)
  known = floor
end
local prev = redis.call('HGET', 'kv:incarnations', who) or ''
redis.call('HSET', 'kv:incarnations', who, ARGV[3])
return {math.max(vc[who + 1], known), bufmax, prev}
