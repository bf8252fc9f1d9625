-- Asks for one more attempt of a delivery, whatever its state; the next sender to claim it
-- makes that attempt.
--
-- KEYS[1]   delivery hash
-- ARGV[1]   now_ms
-- Returns {'ok'} | {'missing'} | {'busy', claim_until_ms}.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local claim = redis.call('HGET', KEYS[1], 'claim_until')
if claim and tonumber(claim) > tonumber(ARGV[1]) then
  return {'busy', claim}
end
redis.call('HSET', KEYS[1], 'manual', '1')
return {'ok'}
