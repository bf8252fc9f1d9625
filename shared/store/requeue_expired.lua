-- Leases that ran out (a scheduler died between claim and hand-off) go back to the queue.
--
-- KEYS[1]   due queue (zset, score due ms)
-- KEYS[2]   inflight set (zset, score lease deadline ms)
-- ARGV[1]   now_ms
-- ARGV[2]   limit
-- Returns how many members went back.

local expired = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], member)
end
return #expired
