-- Logs attempts of deliveries of one campaign, in order. For each: the attempt is pushed on
-- its webhook's list (which keeps the newest keep_count) and kept as the delivery's last, and
-- the delivery moves on unless a later attempt was already recorded. Also keeps since when the
-- webhook has failed every attempt: cleared by a success, set by the first failure after one.
--
-- KEYS[1..]   three per attempt: the delivery hash, the webhook's attempts list, the webhook's
--             failing-since marker (KEYS[3i-2], KEYS[3i-1], KEYS[3i] for the i-th)
-- ARGV[1]     keep_count
-- ARGV[2]     keep_ms
-- ARGV[3]     how long the failing-since marker is kept (ms)
-- ARGV[4]     now_ms
-- ARGV[5]     updated_at (RFC 3339)
-- ARGV[6..]   four per attempt (ARGV[4i+2..4i+5] for the i-th): attempt, state,
--             next_attempt_ms ('' for none), and 'ok' (the target answered 2xx), 'failed' (it
--             did not) or '' (not counted); then, after them all, each attempt's JSON in turn
-- Returns, per attempt, moved (1/0) and failing_since_ms or ''.

local count = #KEYS / 3
local replies = {}
for i = 1, count do
  local delivery, attempts, marker = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local at = 4 * i + 2
  local entry = ARGV[5 + 4 * count + i]
  redis.call('LPUSH', attempts, entry)
  redis.call('LTRIM', attempts, 0, tonumber(ARGV[1]) - 1)
  redis.call('PEXPIRE', attempts, ARGV[2])
  local failing = ''
  if ARGV[at + 3] == 'ok' then
    redis.call('DEL', marker)
  elseif ARGV[at + 3] == 'failed' then
    redis.call('SET', marker, ARGV[4], 'NX', 'PX', ARGV[3])
    failing = redis.call('GET', marker)
  end
  local moved = 0
  if redis.call('EXISTS', delivery) == 1 then
    local done = tonumber(redis.call('HGET', delivery, 'attempts') or '0')
    if tonumber(ARGV[at]) > done then
      redis.call('HSET', delivery, 'attempts', ARGV[at], 'state', ARGV[at + 1], 'updated_at',
        ARGV[5], 'last_attempt', entry)
      redis.call('HDEL', delivery, 'claim_until')
      if ARGV[at + 2] == '' then
        redis.call('HDEL', delivery, 'next_attempt_ms')
      else
        redis.call('HSET', delivery, 'next_attempt_ms', ARGV[at + 2])
      end
      redis.call('PEXPIRE', delivery, ARGV[2])
      moved = 1
    end
  end
  replies[2 * i - 1] = moved
  replies[2 * i] = failing
end
return replies
