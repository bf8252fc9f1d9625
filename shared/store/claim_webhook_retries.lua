-- Puts back retries whose claimer died (lease ran out), then claims up to `limit` due retries
-- with a lease.
--
-- KEYS[1]   webhook retry queue (zset, score due ms)
-- KEYS[2]   webhook retry inflight set (zset, score lease deadline ms)
-- ARGV[1]   now_ms
-- ARGV[2]   limit
-- ARGV[3]   lease_until_ms
-- Returns the claimed members.

local expired = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, 1000)
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], member)
end
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZADD', KEYS[2], ARGV[3], member)
end
return due
