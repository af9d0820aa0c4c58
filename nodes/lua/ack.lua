-- Drop acknowledged messages from the head of one peer's outbox and record the link's success.
-- Invariant: only messages whose own-entry counter is <= the acknowledged counter are removed,
-- so an ack that arrives late, twice, or from an overlapping sender never drops an unsent one.
-- KEYS: outbox, linkstate   ARGV: self (0-based), acked counter, now_ms, attempt_ms
local self, acked = tonumber(ARGV[1]) + 1, tonumber(ARGV[2])
local removed = 0
while true do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head or cjson.decode(head).vc[self] > acked then break end
  redis.call('LPOP', KEYS[1])
  removed = removed + 1
end
redis.call('HSET', KEYS[2], 'state', 'ok', 'consecutive_failures', 0, 'last_ack_ms', ARGV[3],
  'last_attempt_ms', ARGV[4], 'last_error', '')
return removed
