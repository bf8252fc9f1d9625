-- Claims the next attempt of a delivery so no two senders make it. A scheduled retry needs the
-- delivery pending and due; a manual one (redelivery) only that no attempt is under way.
--
-- KEYS[1]   delivery hash
-- ARGV[1]   now_ms
-- ARGV[2]   claim_until_ms
-- ARGV[3]   manual (0/1)
-- Returns {'ok', attempt, state, event_id, event_type, body, next_attempt_ms} |
--         {'missing'} | {'busy', claim_until_ms} | {'done', state} | {'early', next_attempt_ms}

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local now = tonumber(ARGV[1])
local claim = redis.call('HGET', KEYS[1], 'claim_until')
if claim and tonumber(claim) > now then
  return {'busy', claim}
end
local state = redis.call('HGET', KEYS[1], 'state')
local next_at = redis.call('HGET', KEYS[1], 'next_attempt_ms') or ''
if ARGV[3] ~= '1' then
  if state ~= 'pending' then
    return {'done', state}
  end
  if next_at ~= '' and tonumber(next_at) > now then
    return {'early', next_at}
  end
end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') + 1
redis.call('HSET', KEYS[1], 'claim_until', ARGV[2])
local f = redis.call('HMGET', KEYS[1], 'event_id', 'event_type', 'body')
return {'ok', tostring(attempt), state, f[1] or '', f[2] or '', f[3] or '', next_at}
