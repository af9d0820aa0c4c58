-- Anti-entropy, answering side: the contents of digest leaves the asking peer found different.
-- Invariant: read-only; kv:dig:h:<t>:<l> names every key of leaf (t, l) (see _lib.lua).
-- ARGV: leaf ids "t:l"   Returns: {key, siblings JSON, ...}
local out = {}
for i = 1, #ARGV do
  for _, key in ipairs(redis.call('HKEYS', 'kv:dig:h:' .. ARGV[i])) do
    append_stored(out, key)
  end
end
return out
