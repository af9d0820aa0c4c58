-- Anti-entropy, answering side: everything this node has that the asking peer q lacks, and the
-- digest buckets where the two differ, read in one atomic step.
-- Invariant: under causal delivery a clock is a causally closed cut, so a sibling from origin j
-- with version v is known to q iff v[j] <= VC_q[j]; the keys scored above VC_q[j] in kv:idx:<j>
-- therefore hold every write q lacks, and their siblings together with this node's clock (read
-- in the same step) form a state q can merge without seeing a value before its dependencies.
-- Cost: O(keys that differ), never O(store).
-- ARGV: n, VC_q (JSON list), q's 64 top digest sums (JSON list of strings, or "[]" to skip)
-- Returns: {clock JSON, {key, siblings JSON, key, siblings JSON, ...}, differing leaves JSON}
local n = tonumber(ARGV[1])
local qvc = cjson.decode(ARGV[2])
local qtop = cjson.decode(ARGV[3])
local seen, out = {}, {}
for j = 1, n do
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', 'kv:idx:' .. (j - 1), '(' .. qvc[j], '+inf')) do
    if not seen[key] then
      seen[key] = true
      append_stored(out, key)
    end
  end
end
local leaves = {}
if #qtop == 64 then
  local top = redis.call('HGETALL', 'kv:dig:top')
  local mine = {}
  for i = 1, #top, 2 do mine[tonumber(top[i])] = top[i + 1] end
  for t = 0, 63 do
    if (mine[t] or '0') ~= qtop[t + 1] then
      local sums = {}
      for l = 0, 63 do sums[l + 1] = '0' end
      local raw = redis.call('HGETALL', 'kv:dig:leaf:' .. t)
      for i = 1, #raw, 2 do sums[tonumber(raw[i]) + 1] = raw[i + 1] end
      leaves[tostring(t)] = sums
    end
  end
end
local leaves_json = next(leaves) and cjson.encode(leaves) or '{}'
return {redis.call('GET', 'kv:vc') or cjson.encode(load_vc(n)), out, leaves_json}
