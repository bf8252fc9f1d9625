-- Creates a delivery of one event to one webhook, its first attempt due at once; a pair seen
-- before (a replay, or an event delivered before deliveries were kept) is left alone.
--
-- KEYS[1]   delivery hash
-- KEYS[2]   legacy `delivered` marker of the (webhook, event) pair
-- ARGV[1]   due_ms: when the first attempt may be made
-- ARGV[2]   keep_ms
-- ARGV[3..] field, value, ... (kind, event_id, event_type, body, created_at; claim_until and
--           trace when given)
-- Returns {'created'} | {'exists', state}.

if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'exists', 'delivered'}
end
if redis.call('HSETNX', KEYS[1], 'state', 'pending') == 0 then
  return {'exists', redis.call('HGET', KEYS[1], 'state')}
end
local fields = {}
for i = 3, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], 'attempts', '0', 'next_attempt_ms', ARGV[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'created'}
