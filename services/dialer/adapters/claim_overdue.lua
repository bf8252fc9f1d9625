-- Takes the attempts whose outcome is overdue in one shard, moving each one's next look
-- later, so one dialer copy at a time looks at each.
--
-- KEYS[1]   the shard's awaiting-outcome zset (member campaign_id|call_id|attempt, score ms)
-- ARGV[1]   now_ms
-- ARGV[2]   next look (ms) for the members taken
-- ARGV[3]   limit
-- Returns the members taken.

local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
