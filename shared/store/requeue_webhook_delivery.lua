-- Puts a delivery back in the queue for its next attempt and drops its claim, in one step.
--
-- KEYS[1]   webhook delivery queue (zset, score due ms)
-- KEYS[2]   its inflight set (zset, score lease deadline ms)
-- ARGV[1]   member
-- ARGV[2]   due_ms
-- Returns 1.

redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
