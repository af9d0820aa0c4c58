-- Receive a batch of messages from one peer, in send order, delivering what is deliverable.
-- Invariant (Birman-Schiper-Stephenson): a message m from node j is applied exactly when
-- m.vc[j] == VC[j] + 1 and m.vc[k] <= VC[k] for every k ~= j; a message with m.vc[j] <= VC[j]
-- is a duplicate and is never applied twice; everything else waits in the persisted buffer,
-- keyed "j:m.vc[j]" (and ordered by arrival in kv:bufq), so the only candidate from j is always
-- the one numbered VC[j] + 1. The buffer never holds more than buffer_max messages: the batch is
-- accepted up to the first message that would overflow it, and the reply's `acked` says where.
-- ARGV: n, log_max, origin (0-based), buffer_max, then one JSON message per arg:
--       {"vc": [...], "key": "...", "value": "<value as JSON text>", "log_value"?: "null"}
local n, log_max, from = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) + 1
local buffer_max = tonumber(ARGV[4])
local vc = load_vc(n)
local now = now_ms()
local changed = false

local delivered = {}
local function deliver(m, j)
  for k = 1, n do if m.vc[k] > vc[k] then vc[k] = m.vc[k] end end
  apply_version(m.key, m.vc, m.value, j - 1)
  local waited = now - m.at
  log_append(j - 1, m.key, m.log_value or log_value(m.value), cjson.encode(m.vc), 'replicated',
    waited, now)
  table.insert(delivered, (j - 1) .. ':' .. waited)
  changed = true
end

local duplicates, stored, acked, refused = 0, 0, 0, 0
for i = 5, #ARGV do
  local m = cjson.decode(ARGV[i])
  local c = m.vc[from]
  local field = (from - 1) .. ':' .. c
  m.origin, m.at = from - 1, now
  if c <= vc[from] then
    duplicates = duplicates + 1
  elseif deliverable(m, from, vc, n) then
    deliver(m, from)
    drain_buffer(vc, n, deliver)
  elseif redis.call('HEXISTS', 'kv:buffer', field) == 0 then
    if redis.call('HLEN', 'kv:buffer') >= buffer_max then
      refused = 1
      break
    end
    redis.call('HSET', 'kv:buffer', field, cjson.encode(m))
    redis.call('ZADD', 'kv:bufq', now, field)
    stored = stored + 1
  end
  acked = c
end
if changed then
  redis.call('SET', 'kv:vc', cjson.encode(vc))
  redis.call('LTRIM', 'kv:log', -log_max, -1)
end
return {cjson.encode(vc), duplicates, stored, redis.call('HLEN', 'kv:buffer'), delivered, acked,
  refused}
