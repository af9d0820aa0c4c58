-- Receive a batch of messages from one peer, then deliver everything that has become deliverable.
-- Invariant (Birman-Schiper-Stephenson): a message m from node j is applied exactly when
-- m.vc[j] == VC[j] + 1 and m.vc[k] <= VC[k] for every k ~= j; a message with m.vc[j] <= VC[j]
-- is a duplicate and is never applied twice; everything else waits in the persisted buffer,
-- keyed "j:m.vc[j]", so the only candidate from j is always the one numbered VC[j] + 1.
-- KEYS: vc, store, buffer, log, logseq
-- ARGV: n, log_max, origin (0-based), then one JSON message per arg:
--       {"vc": [...], "key": "...", "value": "<value as JSON text>"}
local n, log_max, from = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) + 1

local raw = redis.call('GET', KEYS[1])
local vc = raw and cjson.decode(raw) or {}
for i = 1, n do vc[i] = vc[i] or 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local duplicates, stored = 0, 0
for i = 4, #ARGV do
  local m = cjson.decode(ARGV[i])
  local c = m.vc[from]
  if c <= vc[from] then
    duplicates = duplicates + 1
  else
    m.origin, m.at = from - 1, now
    stored = stored + redis.call('HSETNX', KEYS[3], (from - 1) .. ':' .. c, cjson.encode(m))
  end
end

local function deliverable(m, j)
  if m.vc[j] ~= vc[j] + 1 then return false end
  for k = 1, n do
    if k ~= j and m.vc[k] > vc[k] then return false end
  end
  return true
end

local function leq(a, b)
  for k = 1, n do if a[k] > b[k] then return false end end
  return true
end

local function deliver(m, j)
  for k = 1, n do if m.vc[k] > vc[k] then vc[k] = m.vc[k] end end
  local sraw = redis.call('HGET', KEYS[2], m.key)
  local kept, dominated = {}, false
  for _, s in ipairs(sraw and cjson.decode(sraw) or {}) do
    if not leq(s.version, m.vc) then
      table.insert(kept, s)
      if leq(m.vc, s.version) then dominated = true end
    end
  end
  if not dominated then
    table.insert(kept, {value = m.value, version = m.vc, origin = j - 1})
  end
  table.sort(kept, function(a, b) return a.origin < b.origin end)
  redis.call('HSET', KEYS[2], m.key, cjson.encode(kept))
  local seq = redis.call('INCR', KEYS[5])
  local waited = now - m.at
  redis.call('RPUSH', KEYS[4], '{"seq":' .. seq .. ',"origin":' .. (j - 1) .. ',"key":'
    .. cjson.encode(m.key) .. ',"value":' .. (m.log_value or m.value) .. ',"version":'
    .. cjson.encode(m.vc) .. ',"kind":"replicated","buffered_ms":' .. waited
    .. ',"ts":' .. now .. '}')
  return waited
end

-- Each delivery may unblock messages from any origin: loop until a full pass delivers nothing.
local delivered = {}
local progress = true
while progress do
  progress = false
  for j = 1, n do
    local field = (j - 1) .. ':' .. (vc[j] + 1)
    local mraw = redis.call('HGET', KEYS[3], field)
    if mraw then
      local m = cjson.decode(mraw)
      if deliverable(m, j) then
        table.insert(delivered, (j - 1) .. ':' .. deliver(m, j))
        redis.call('HDEL', KEYS[3], field)
        progress = true
      end
    end
  end
end
if #delivered > 0 then
  redis.call('SET', KEYS[1], cjson.encode(vc))
  redis.call('LTRIM', KEYS[4], -log_max, -1)
end
return {cjson.encode(vc), duplicates, stored, redis.call('HLEN', KEYS[3]), delivered}
