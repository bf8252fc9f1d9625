-- Logs an attempt (the list keeps the newest keep_count), keeps it as the delivery's last, and
-- moves the delivery on unless a later attempt was already recorded. Also keeps since when the
-- webhook has failed every attempt: cleared by a success, set by the first failure after one.
--
-- KEYS[1]   delivery hash
-- KEYS[2]   the webhook's attempts list
-- KEYS[3]   the webhook's failing-since marker
-- ARGV[1]   attempt
-- ARGV[2]   state
-- ARGV[3]   next_attempt_ms ('' for none)
-- ARGV[4]   updated_at (RFC 3339)
-- ARGV[5]   attempt JSON
-- ARGV[6]   keep_count
-- ARGV[7]   keep_ms
-- ARGV[8]   'ok' (the target answered 2xx), 'failed' (it did not), '' (not counted)
-- ARGV[9]   now_ms
-- ARGV[10]  how long the failing-since marker is kept (ms)
-- Returns {moved (1/0), failing_since_ms or ''}.

redis.call('LPUSH', KEYS[2], ARGV[5])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[6]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[7])
local failing = ''
if ARGV[8] == 'ok' then
  redis.call('DEL', KEYS[3])
elseif ARGV[8] == 'failed' then
  redis.call('SET', KEYS[3], ARGV[9], 'NX', 'PX', ARGV[10])
  failing = redis.call('GET', KEYS[3])
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, failing}
end
local done = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if tonumber(ARGV[1]) <= done then
  return {0, failing}
end
redis.call('HSET', KEYS[1], 'attempts', ARGV[1], 'state', ARGV[2], 'updated_at', ARGV[4],
  'last_attempt', ARGV[5])
redis.call('HDEL', KEYS[1], 'claim_until')
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'next_attempt_ms')
else
  redis.call('HSET', KEYS[1], 'next_attempt_ms', ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {1, failing}
