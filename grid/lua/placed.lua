-- A queued car was admitted on a substation: leave the queue and remember where, in one step.
-- Invariant: a queue id is either queued, placed on one substation, or cancelled, never two.
-- KEYS: queue (LIST), requests (HASH), placed (HASH qid -> substation, '' when cancelled)
-- ARGV: queue id, substation
-- Returns 1, or 0 when it was cancelled meanwhile (the caller then ends the admitted session).
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1
