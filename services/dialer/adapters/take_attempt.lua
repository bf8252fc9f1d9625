-- The dialer takes a due attempt: checks it is still the call's current, waiting attempt,
-- claims it once, checks its concurrency slot is still held, and returns what dialing needs.
--
-- KEYS[1]   call hash
-- KEYS[2]   call body (payload and context)
-- KEYS[3]   the attempt's claim (string)
-- KEYS[4]   the campaign's dial-slot zset (member call_id:attempt, score lease deadline ms)
-- KEYS[5]   campaign hash
-- ARGV[1]   attempt
-- ARGV[2]   claim ttl_ms
-- ARGV[3]   the slot's new lease deadline (ms)
-- ARGV[4]   slot member
-- Returns one of:
--   {'gone'}                            no such call
--   {'stale', status, attempt}          the call is not waiting on this attempt
--   {'claimed'}                         another holds the claim
--   {'lost'}                            the slot is gone: the scheduler took the attempt back
--                                       (or ended it), so the claim is let go undialed
--   {'take', call fields, body, campaign fields}   this caller may dial

local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'gone'}
end
local attempt = redis.call('HGET', KEYS[1], 'attempt') or '0'
if status ~= 'queued' or attempt ~= ARGV[1] then
  return {'stale', status, attempt}
end
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then
  return {'claimed'}
end
if redis.call('ZADD', KEYS[4], 'XX', 'CH', ARGV[3], ARGV[4]) == 0
    and not redis.call('ZSCORE', KEYS[4], ARGV[4]) then
  redis.call('DEL', KEYS[3])
  return {'lost'}
end
return {'take', redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[2]) or '',
        redis.call('HGETALL', KEYS[5])}
