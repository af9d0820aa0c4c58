-- A peer that may have forgotten asks what this node knows of it.
-- Invariant: read-only apart from remembering the asker's incarnation id (kv:incarnations), so
-- a peer that comes back with a new id (its Redis was emptied) learns that it did forget even if
-- none of its writes had reached anyone.
-- ARGV: n, asker (0-based), asker's incarnation id
-- Returns: {highest own entry of the asker delivered here, highest buffered here, previous id}
local n, who = tonumber(ARGV[1]), tonumber(ARGV[2])
local vc = load_vc(n)
local bufmax = 0
for _, field in ipairs(redis.call('HKEYS', 'kv:buffer')) do
  local j, c = string.match(field, '^(%d+):(%d+)$')
  if tonumber(j) == who and tonumber(c) > bufmax then bufmax = tonumber(c) end
end
local prev = redis.call('HGET', 'kv:incarnations', who) or ''
redis.call('HSET', 'kv:incarnations', who, ARGV[3])
return {vc[who + 1], bufmax, prev}
