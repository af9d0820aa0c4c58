-- Anti-entropy, asking side: merge a peer's state into this node's, in one atomic step.
-- Invariants: mode "delta" (the peer's whole difference, read atomically with its clock VC_p):
-- the merged state holds exactly the writes <= max(VC, VC_p), so VC := max(VC, VC_p) keeps the
-- clock a causally closed cut; mode "repair" (digest leaves, not a causal cut): only versions
-- <= VC are merged (writes this node already counts but lost, e.g. a key deleted by hand), so no
-- value becomes visible before its dependencies. Versions are applied in order of their entry sum
-- (a linear extension of happened-before), each logged as "replicated" with "sync": true (and
-- the time it waited in the buffer, if its message was there); then
-- buffered messages that became duplicates go and the buffer is drained as in receive.lua.
-- ARGV: n, log_max, mode, VC_p JSON ("null" in repair mode), then key, siblings JSON pairs
local n, log_max, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local vc = load_vc(n)
local now = now_ms()
local changed = false

local items = {}
for i = 5, #ARGV, 2 do
  for _, s in ipairs(cjson.decode(ARGV[i + 1])) do
    local sum = 0
    for k = 1, n do sum = sum + s.version[k] end
    items[#items + 1] = {key = ARGV[i], s = s, sum = sum}
  end
end
table.sort(items, function(a, b)
  if a.sum ~= b.sum then return a.sum < b.sum end
  if a.key ~= b.key then return a.key < b.key end
  return a.s.origin < b.s.origin
end)
local repaired, applied = {}, 0
for _, it in ipairs(items) do
  local s = it.s
  if (mode == 'delta' or leq(s.version, vc)) and apply_version(it.key, s.version, s.value, s.origin)
  then
    -- The same write may be waiting in the buffer (its message came before its dependencies):
    -- it is delivered now, so the log keeps how long it waited (the message is dropped below).
    local waiting = redis.call('HGET', 'kv:buffer', s.origin .. ':' .. s.version[s.origin + 1])
    local waited = waiting and math.max(0, now - cjson.decode(waiting).at) or 0
    log_append(s.origin, it.key, log_value(s.value), cjson.encode(s.version), 'replicated',
      waited, now, ',"sync":true')
    repaired[it.key] = true
    applied = applied + 1
    changed = true
  end
end

if mode == 'delta' then
  local pvc = cjson.decode(ARGV[4])
  for k = 1, n do
    if pvc[k] > vc[k] then
      vc[k] = pvc[k]
      changed = true
    end
  end
end

-- Buffered messages the merged state already covers are duplicates now.
local dropped = 0
if changed then
  for _, field in ipairs(redis.call('HKEYS', 'kv:buffer')) do
    local j, c = string.match(field, '^(%d+):(%d+)$')
    if tonumber(c) <= vc[tonumber(j) + 1] then
      redis.call('HDEL', 'kv:buffer', field)
      redis.call('ZREM', 'kv:bufq', field)
      dropped = dropped + 1
    end
  end
end
local delivered = 0
if changed then
  drain_buffer(vc, n, function(m, j)
    for k = 1, n do if m.vc[k] > vc[k] then vc[k] = m.vc[k] end end
    apply_version(m.key, m.vc, m.value, j - 1)
    log_append(j - 1, m.key, m.log_value or log_value(m.value), cjson.encode(m.vc),
      'replicated', now - m.at, now)
    delivered = delivered + 1
  end)
end
local nrepaired = 0
for _ in pairs(repaired) do nrepaired = nrepaired + 1 end
if changed then
  redis.call('SET', 'kv:vc', cjson.encode(vc))
  redis.call('LTRIM', 'kv:log', -log_max, -1)
end
return {cjson.encode(vc), nrepaired, applied, dropped, delivered}
