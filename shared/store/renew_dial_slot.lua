-- The dialer keeps its slot while the call lasts: moves the slot's lease deadline on.
--
-- KEYS[1]   the campaign's dial-slot zset (member call_id:attempt, score lease deadline ms)
-- ARGV[1]   now_ms
-- ARGV[2]   lease_ms
-- ARGV[3]   member
-- Returns 1 if renewed, 0 if the slot was already gone.

return redis.call('ZADD', KEYS[1], 'XX', 'CH', tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[3])
