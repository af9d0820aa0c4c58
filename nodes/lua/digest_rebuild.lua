-- Recompute the digest of one top bucket from the stored data (like Riak AAE's periodic tree
-- rebuild): finds damage no write script saw, such as a key deleted by hand from kv:store.
-- Invariant: afterwards every h in kv:dig:h:<t>:* matches kv:store, and the leaf and top sums
-- are adjusted by the same differences, so they stay exact sums.
-- ARGV: t   Returns: number of keys whose hash changed
local t = ARGV[1]
local fixed = 0
for l = 0, 63 do
  local hk = 'kv:dig:h:' .. t .. ':' .. l
  local raw = redis.call('HGETALL', hk)
  for i = 1, #raw, 2 do
    local key = raw[i]
    local sib = redis.call('HGET', 'kv:store', key)
    local h = 0
    if sib then h = key_hash(key, canon(cjson.decode(sib))) end
    if h ~= tonumber(raw[i + 1]) then
      digest_set(key, h)
      if h == 0 then redis.call('ZREM', 'kv:keys', key) end
      fixed = fixed + 1
    end
  end
end
return fixed
