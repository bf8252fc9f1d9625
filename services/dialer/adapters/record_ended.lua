-- Records how an attempt ended, once (the first report wins), and hands out the right to
-- publish it: to one caller at a time, until the publication is marked done.
--
-- KEYS[1]   call hash
-- KEYS[2]   the campaign's dial-slot zset (member call_id:attempt, score lease deadline ms)
-- ARGV[1]   attempt
-- ARGV[2]   the ending (JSON); ignored when one is already stored, '' to publish only that
-- ARGV[3]   answered (0/1): the call was answered, so `answered` goes out first if it has not
-- ARGV[4]   now_ms
-- ARGV[5]   publish lease_ms: how long one caller holds the right to publish
-- ARGV[6]   the slot's new lease deadline (ms)
-- ARGV[7]   slot member
-- Returns {publish (0/1), the stored ending, publish answered too (0/1)}.

local n = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 'outcome:' .. n) == 1 then
  -- The scheduler already decided this attempt (it was declared lost): nothing to report.
  return {0, '', 0}
end
local stored = redis.call('HGET', KEYS[1], 'ended:' .. n)
local answered = 0
if not stored then
  if ARGV[2] == '' then
    return {0, '', 0}
  end
  stored = ARGV[2]
  redis.call('HSET', KEYS[1], 'ended:' .. n, stored)
  if ARGV[3] == '1' and redis.call('HSETNX', KEYS[1], 'answered:' .. n, '1') == 1 then
    answered = 1
  end
end
local now = tonumber(ARGV[4])
local reported = redis.call('HGET', KEYS[1], 'reported:' .. n)
if reported == 'done' or (reported and tonumber(reported) > now) then
  return {0, stored, 0}
end
redis.call('HSET', KEYS[1], 'reported:' .. n, now + tonumber(ARGV[5]))
redis.call('ZADD', KEYS[2], 'XX', ARGV[6], ARGV[7])
return {1, stored, answered}
