-- Clear a peer's "needs state transfer" mark after the peer was told to pull.
-- Invariant: a mark set again after the sender read it (another outbox drop) is kept.
-- ARGV: peer, the mark's value the sender read
if redis.call('HGET', 'kv:needsync', ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', 'kv:needsync', ARGV[1])
end
return 0
