-- The dialer takes due attempts of one campaign: for each, checks it is still the call's
-- current, waiting attempt, claims it once, checks its concurrency slot is still held, and
-- returns what dialing needs. Each attempt is decided as if alone, in the order given (the same
-- attempt twice: the second finds it claimed).
--
-- KEYS[1]   the campaign's dial-slot zset (member call_id:attempt, score lease deadline ms)
-- KEYS[2]   campaign hash
-- KEYS[3..] three per attempt i (from 0): KEYS[3 + 3i] call hash, KEYS[4 + 3i] call body
--           (payload and context), KEYS[5 + 3i] the attempt's claim (string)
-- ARGV[1]   claim ttl_ms
-- ARGV[2..] three per attempt i: ARGV[2 + 3i] attempt, ARGV[3 + 3i] the slot's new lease
--           deadline (ms), ARGV[4 + 3i] slot member
-- Returns {campaign fields (empty unless an attempt was taken), then for each attempt one of:
--   {'gone'}                            no such call
--   {'stale', status, attempt}          the call is not waiting on this attempt
--   {'claimed'}                         another holds the claim
--   {'lost'}                            the slot is gone: the scheduler took the attempt back
--                                       (or ended it), so the claim is let go undialed
--   {'take', call fields, body}         this caller may dial}

local function take(call, body, claim, n, slot_until, slot)
  local status = redis.call('HGET', call, 'status')
  if not status then
    return {'gone'}
  end
  local attempt = redis.call('HGET', call, 'attempt') or '0'
  if status ~= 'queued' or attempt ~= n then
    return {'stale', status, attempt}
  end
  if not redis.call('SET', claim, '1', 'NX', 'PX', ARGV[1]) then
    return {'claimed'}
  end
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', slot_until, slot) == 0
      and not redis.call('ZSCORE', KEYS[1], slot) then
    redis.call('DEL', claim)
    return {'lost'}
  end
  return {'take', redis.call('HGETALL', call), redis.call('GET', body) or ''}
end

local replies = {{}}
local taken = false
for i = 0, (#ARGV - 1) / 3 - 1 do
  local reply = take(KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i],
                     ARGV[2 + 3 * i], ARGV[3 + 3 * i], ARGV[4 + 3 * i])
  taken = taken or reply[1] == 'take'
  replies[#replies + 1] = reply
end
if taken then
  replies[1] = redis.call('HGETALL', KEYS[2])
end
return replies
