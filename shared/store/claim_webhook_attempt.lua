-- Claims the next attempt of a delivery so no two senders make it. A redelivery asked for
-- (the `manual` field) needs only that no attempt is under way; a scheduled attempt (the
-- first, or a retry) needs the delivery pending and due.
--
-- KEYS[1]   delivery hash
-- ARGV[1]   now_ms
-- ARGV[2]   claim_until_ms
-- Returns {'ok', attempt, state, event_id, event_type, body, next_attempt_ms, trigger, trace} |
--         {'missing'} | {'busy', claim_until_ms} | {'done', state} | {'early', next_attempt_ms}
-- where trigger is event | retry | test | redeliver, and trace the trace context stored with
-- the delivery ('' if none).

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'claim_until', 'state', 'next_attempt_ms', 'manual',
  'attempts', 'kind')
if f[1] and tonumber(f[1]) > now then
  return {'busy', f[1]}
end
local state = f[2]
local next_at = f[3] or ''
local manual = f[4] == '1'
if not manual then
  if state ~= 'pending' then
    return {'done', state}
  end
  if next_at ~= '' and tonumber(next_at) > now then
    return {'early', next_at}
  end
end
local attempt = tonumber(f[5] or '0') + 1
local trigger = 'retry'
if manual then
  trigger = 'redeliver'
  redis.call('HDEL', KEYS[1], 'manual')
elseif attempt == 1 then
  trigger = f[6] == 'test' and 'test' or 'event'
end
redis.call('HSET', KEYS[1], 'claim_until', ARGV[2])
local sent = redis.call('HMGET', KEYS[1], 'event_id', 'event_type', 'body', 'trace')
return {'ok', tostring(attempt), state, sent[1] or '', sent[2] or '', sent[3] or '', next_at,
  trigger, sent[4] or ''}
