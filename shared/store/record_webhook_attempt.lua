-- Logs an attempt (the list keeps the newest keep_count) and moves the delivery on, unless a
-- later attempt was already recorded.
--
-- KEYS[1]   delivery hash
-- KEYS[2]   the webhook's attempts list
-- ARGV[1]   attempt
-- ARGV[2]   state
-- ARGV[3]   next_attempt_ms ('' for none)
-- ARGV[4]   updated_at (RFC 3339)
-- ARGV[5]   attempt JSON
-- ARGV[6]   keep_count
-- ARGV[7]   keep_ms
-- Returns 1 if the delivery moved, else 0.

redis.call('LPUSH', KEYS[2], ARGV[5])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[6]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[7])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local done = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if tonumber(ARGV[1]) <= done then
  return 0
end
redis.call('HSET', KEYS[1], 'attempts', ARGV[1], 'state', ARGV[2], 'updated_at', ARGV[4])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'next_attempt_ms', 'claim_until')
else
  redis.call('HSET', KEYS[1], 'next_attempt_ms', ARGV[3])
  redis.call('HDEL', KEYS[1], 'claim_until')
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 1
