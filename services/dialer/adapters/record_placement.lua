-- The carrier took the call: remembers its id with the attempt and keeps the slot until the
-- outcome is due.
--
-- KEYS[1]   call hash
-- KEYS[2]   the campaign's dial-slot zset (member call_id:attempt, score lease deadline ms)
-- ARGV[1]   attempt
-- ARGV[2]   carrier|carrier_call_id
-- ARGV[3]   the slot's new lease deadline (ms)
-- ARGV[4]   slot member
-- Returns 1.

redis.call('HSET', KEYS[1], 'carrier:' .. ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[4])
return 1
