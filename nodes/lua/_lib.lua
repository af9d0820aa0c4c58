-- Shared helpers, prepended to every node script that changes the store (see NodeStore).
-- Invariants kept by every caller of apply_version / digest_set:
--   kv:keys holds every stored key (score 0, for ZRANGEBYLEX paging);
--   kv:idx:<j> scores each key at least the own entry of its sibling from origin j, so
--     "keys holding a write from j newer than c" = ZRANGEBYSCORE kv:idx:<j> (c +inf
--     (a stale, lower score left behind by a dominated sibling only costs a resend);
--   kv:dig:h:<t>:<l> maps key -> h (40-bit hash of key + canonical siblings), and
--     kv:dig:leaf:<t> field l = sum of h in leaf (t, l), kv:dig:top field t = sum over t's leaves.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function load_vc(n)
  local raw = redis.call('GET', 'kv:vc')
  local vc = raw and cjson.decode(raw) or {}
  for i = 1, n do vc[i] = vc[i] or 0 end
  return vc
end

local function leq(a, b)
  for k = 1, #a do if a[k] > (b[k] or 0) then return false end end
  return true
end

local function same(a, b)
  return leq(a, b) and leq(b, a)
end

-- One line per sibling, ordered by origin: independent of JSON field order.
local function canon(sibs)
  local parts = {}
  for _, s in ipairs(sibs) do
    parts[#parts + 1] = s.origin .. '|' .. table.concat(s.version, ',') .. '|' .. s.value
  end
  return table.concat(parts, '\n')
end

-- Append key and its stored siblings JSON to out (a flat reply list), if the key is stored.
local function append_stored(out, key)
  local sib = redis.call('HGET', 'kv:store', key)
  if sib then
    out[#out + 1] = key
    out[#out + 1] = sib
  end
end

local function key_hash(key, canonical)
  return tonumber(string.sub(redis.sha1hex(key .. '\0' .. canonical), 1, 10), 16)
end

local function bucket(key)
  local b = tonumber(string.sub(redis.sha1hex(key), 1, 3), 16)
  return math.floor(b / 64), b % 64
end

-- Set key's digest contribution to h (0 = absent), keeping leaf and top sums exact.
local function digest_set(key, h)
  local t, l = bucket(key)
  local hk = 'kv:dig:h:' .. t .. ':' .. l
  local old = tonumber(redis.call('HGET', hk, key) or '0')
  if old == h then return end
  if h == 0 then redis.call('HDEL', hk, key) else redis.call('HSET', hk, key, h) end
  redis.call('HINCRBY', 'kv:dig:leaf:' .. t, l, h - old)
  redis.call('HINCRBY', 'kv:dig:top', t, h - old)
end

local function log_append(origin, key, log_value, version_json, kind, waited, now, extra)
  local seq = redis.call('INCR', 'kv:logseq')
  redis.call('RPUSH', 'kv:log', '{"seq":' .. seq .. ',"origin":' .. origin .. ',"key":'
    .. cjson.encode(key) .. ',"value":' .. log_value .. ',"version":' .. version_json
    .. ',"kind":"' .. kind .. '","buffered_ms":' .. waited .. (extra or '') .. ',"ts":' .. now
    .. '}')
  return seq
end

local LOG_VALUE_MAX = 65536
local function log_value(value)
  if #value > LOG_VALUE_MAX then return 'null' end
  return value
end

-- Merge one version into key's siblings (the delivery rule): versions it dominates go, it stays
-- unless one it holds dominates it. Equal versions with different values (only possible after
-- damage by hand) keep the larger value text, so two nodes settle on the same one.
-- Returns true when the version was added.
local function apply_version(key, version, value, origin)
  local sraw = redis.call('HGET', 'kv:store', key)
  local kept, dominated = {}, false
  for _, s in ipairs(sraw and cjson.decode(sraw) or {}) do
    if same(s.version, version) then
      if s.value >= value then
        dominated = true
        table.insert(kept, s)
      end
    elseif not leq(s.version, version) then
      table.insert(kept, s)
      if leq(version, s.version) then dominated = true end
    end
  end
  if dominated then return false end
  table.insert(kept, {value = value, version = version, origin = origin})
  table.sort(kept, function(a, b) return a.origin < b.origin end)
  redis.call('HSET', 'kv:store', key, cjson.encode(kept))
  redis.call('ZADD', 'kv:keys', 0, key)
  redis.call('ZADD', 'kv:idx:' .. origin, version[origin + 1], key)
  digest_set(key, key_hash(key, canon(kept)))
  return true
end

-- The delivery rule (Birman-Schiper-Stephenson), the one place it is written in Lua (its pure
-- reference is nodes/vclock.py): a message m from node j (1-based) is deliverable at clock vc
-- exactly when m.vc[j] == vc[j] + 1 and m.vc[k] <= vc[k] for every k ~= j.
local function deliverable(m, j, vc, n)
  if m.vc[j] ~= vc[j] + 1 then return false end
  for k = 1, n do
    if k ~= j and m.vc[k] > vc[k] then return false end
  end
  return true
end

-- Deliver buffered messages until a full pass delivers nothing: each delivery may unblock any
-- origin. The buffer is keyed "j:counter", so origin j's only candidate is vc[j] + 1.
-- deliver(m, j) applies m and advances vc.
local function drain_buffer(vc, n, deliver)
  local progress = true
  while progress do
    progress = false
    for j = 1, n do
      local field = (j - 1) .. ':' .. (vc[j] + 1)
      local mraw = redis.call('HGET', 'kv:buffer', field)
      if mraw then
        local m = cjson.decode(mraw)
        if deliverable(m, j, vc, n) then
          redis.call('HDEL', 'kv:buffer', field)
          redis.call('ZREM', 'kv:bufq', field)
          deliver(m, j)
          progress = true
        end
      end
    end
  end
end
