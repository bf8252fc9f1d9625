-- Cancels a call that has not started dialing: moves its status and stats, frees its number.
-- A call cancelled before it was ever queued no longer waits to be handed on either.
--
-- KEYS[1]   call hash
-- KEYS[2]   the campaign's active-number hash (duplicate registry)
-- KEYS[3]   the campaign's stats hash
-- KEYS[4]   the campaign's hand-off set
-- KEYS[5]   the prefix of the campaign's per-status call indexes
-- KEYS[6]   the campaign's ended set
-- KEYS[7]   call body
-- KEYS[8]   the campaign's set of calls whose cancellation is still to be announced
-- ARGV[1]   call_id
-- ARGV[2]   number (E.164)
-- ARGV[3]   new status
-- ARGV[4]   updated (µs)
-- ARGV[5]   keep_ms: the call's hash and body expire this long after it ended
-- ARGV[6]   announce (0/1): add the call to KEYS[8] (the finisher, which publishes the event
--           and then removes it)
-- Returns {1, 'queued'} if cancelled, else {0, current status} ('' when there is no call).

-- include: move_stat.lua
-- include: holder.lua
-- include: call_index.lua

local before = redis.call('HGET', KEYS[1], 'status')
if not before then
  return {0, ''}
end
if before ~= 'queued' then
  return {0, before}
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated', ARGV[4])
move_stat(KEYS[3], redis.call('HGET', KEYS[1], 'is_testing'), before, ARGV[3])
move_index(KEYS[5], ARGV[1], redis.call('HGET', KEYS[1], 'created'), before, ARGV[3])
release_number(KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local now_ms = string.format('%.0f', math.floor(tonumber(ARGV[4]) / 1000))
ended(KEYS[6], KEYS[1], KEYS[7], ARGV[2] .. '|' .. ARGV[1], now_ms, ARGV[5])
if ARGV[6] == '1' then
  redis.call('SADD', KEYS[8], ARGV[1])
end
return {1, before}
