-- Creates the deliveries of events to webhooks of one campaign, each with its first attempt due
-- at once (and, when asked, claimed for the caller); a pair seen before (a replay, or an event
-- delivered before deliveries were kept) is left alone.
--
-- KEYS[1..]   two per delivery: its hash, then the legacy `delivered` marker of its
--             (webhook, event) pair (KEYS[2i-1], KEYS[2i] for the i-th)
-- ARGV[1]     due_ms: when the first attempts may be made
-- ARGV[2]     keep_ms
-- ARGV[3]     created_at (RFC 3339)
-- ARGV[4]     kind: event | test
-- ARGV[5..]   five per delivery: event_id, event_type, body, claim_until_ms ('' for none),
--             the trace context its attempts continue ('' for none) (ARGV[5i..5i+4] for the
--             i-th)
-- Returns, per delivery, 'created' or the state of the one that exists.

local created = {}
for i = 1, #KEYS / 2 do
  local hash = KEYS[2 * i - 1]
  local at = 5 * i
  if redis.call('EXISTS', KEYS[2 * i]) == 1 then
    created[i] = 'delivered'
  elseif redis.call('HSETNX', hash, 'state', 'pending') == 0 then
    created[i] = redis.call('HGET', hash, 'state')
  else
    redis.call('HSET', hash, 'attempts', '0', 'next_attempt_ms', ARGV[1], 'kind', ARGV[4],
      'event_id', ARGV[at], 'event_type', ARGV[at + 1], 'body', ARGV[at + 2],
      'created_at', ARGV[3])
    if ARGV[at + 3] ~= '' then
      redis.call('HSET', hash, 'claim_until', ARGV[at + 3])
    end
    if ARGV[at + 4] ~= '' then
      redis.call('HSET', hash, 'trace', ARGV[at + 4])
    end
    redis.call('PEXPIRE', hash, ARGV[2])
    created[i] = 'created'
  end
end
return created
