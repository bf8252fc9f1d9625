-- Moves up to `limit` due members of a due-queue shard into its inflight set with a lease.
--
-- KEYS[1]   due queue (zset, score due ms)
-- KEYS[2]   inflight set (zset, score lease deadline ms)
-- ARGV[1]   now_ms
-- ARGV[2]   limit
-- ARGV[3]   lease_ms
-- Returns the claimed members with their due scores: {member, score, member, score, ...}.

local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2],
                       'WITHSCORES')
if #due == 0 then
  return due
end
local lease = tonumber(ARGV[1]) + tonumber(ARGV[3])
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('ZADD', KEYS[2], lease, due[i])
end
return due
