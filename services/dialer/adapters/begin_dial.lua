-- The dialer takes an attempt: claims it once and checks its concurrency slot is still held.
--
-- KEYS[1]   the attempt's claim (string)
-- KEYS[2]   the campaign's dial-slot zset (member call_id:attempt, score lease deadline ms)
-- ARGV[1]   claim ttl_ms
-- ARGV[2]   the slot's new lease deadline (ms)
-- ARGV[3]   slot member
-- Returns 1 when this caller may dial, 0 when another holds the claim, -1 when the slot is
-- gone: the scheduler took the attempt back (or ended it), so the claim is let go undialed.

if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
if redis.call('ZADD', KEYS[2], 'XX', 'CH', ARGV[2], ARGV[3]) == 0
    and not redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return -1
end
return 1
