-- Records that an attempt was answered, once, unless it already ended.
--
-- KEYS[1]   call hash
-- KEYS[2]   the campaign's dial-slot zset (member call_id:attempt, score lease deadline ms)
-- ARGV[1]   attempt
-- ARGV[2]   the slot's new lease deadline (ms)
-- ARGV[3]   slot member
-- Returns 1 the first time (publish `answered`), else 0.

local n = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 'ended:' .. n) == 1
    or redis.call('HEXISTS', KEYS[1], 'outcome:' .. n) == 1 then
  return 0
end
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[3])
return redis.call('HSETNX', KEYS[1], 'answered:' .. n, '1')
