-- Join the FIFO queue of cars waiting for room anywhere. Invariant: an id is in the queue
-- LIST at most once, and queued ids are exactly the LIST's members with a request in the
-- HASH; the dispatcher is woken at once.
-- KEYS: queue (LIST), requests (HASH qid -> "<enqueued ms>:<request json>")
-- ARGV: queue id, request json
-- Returns the 1-based position.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  local pos = redis.call('LPOS', KEYS[1], ARGV[1])
  return (pos or 0) + 1
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], ARGV[1], t[1] .. string.format('%03d', math.floor(t[2] / 1000))
           .. ':' .. ARGV[2])
redis.call('PUBLISH', 'grid:room', 'queue')
return redis.call('RPUSH', KEYS[1], ARGV[1])
