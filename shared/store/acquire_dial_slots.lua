-- Grants dial slots to the first members that fit both a campaign's limits: concurrent calls
-- (leased slots) and calls per minute. A slot whose lease ran out (its dialer stopped
-- renewing it) no longer counts.
--
-- KEYS[1]   the campaign's dial-slot zset (member call_id:attempt, score lease deadline ms)
-- KEYS[2]   the campaign's dial-rate zset (member call_id:attempt, score grant time ms)
-- ARGV[1]   now_ms
-- ARGV[2]   max_concurrent
-- ARGV[3]   per_minute
-- ARGV[4]   lease_ms
-- ARGV[5..] member, member, ... (in the order to grant them)
-- Returns {granted, next_rate_slot_ms}: how many of the members got a slot (the first ones),
-- and when the per-minute limit next lets a call through (0 when it does not hold one back).

local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
local in_use = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local recent = redis.call('ZCARD', KEYS[2])
local room = math.min(tonumber(ARGV[2]) - in_use, tonumber(ARGV[3]) - recent)
local granted = 0
for i = 5, #ARGV do
  if granted >= room then
    break
  end
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[i])
  redis.call('ZADD', KEYS[2], now, ARGV[i])
  granted = granted + 1
end
local next_rate = 0
if recent + granted >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if oldest[2] then
    next_rate = tonumber(oldest[2]) + 60000
  end
end
return {granted, next_rate}
