-- Applies one attempt's outcome once: stores the decision and the new status, moves the stats
-- counters (and the completed calls' total duration), sets the next attempt's fields when the
-- call is requeued, and frees the number when the call ends.
--
-- KEYS[1]   call hash
-- KEYS[2]   the campaign's active-number hash (duplicate registry)
-- KEYS[3]   the campaign's stats hash
-- KEYS[4]   the prefix of the campaign's per-status call indexes
-- KEYS[5]   the campaign's ended set
-- KEYS[6]   call body
-- ARGV[1]   call_id
-- ARGV[2]   number (E.164)
-- ARGV[3]   attempt
-- ARGV[4]   decision (JSON)
-- ARGV[5]   status
-- ARGV[6]   updated (µs)
-- ARGV[7]   terminal (0/1)
-- ARGV[8]   duration_ms
-- ARGV[9]   keep_ms: an ended call's hash and body expire this long after it ended
-- ARGV[10..] field, value, ... (the next attempt's fields when the call is requeued)
-- Returns {1, decision} the first time, then {0, stored decision}; {0, decision} for a call
-- that is gone (nothing is written).

-- include: move_stat.lua
-- include: holder.lua
-- include: call_index.lua

local field = 'outcome:' .. ARGV[3]
local previous = redis.call('HGET', KEYS[1], field)
if previous then
  return {0, previous}
end
local before = redis.call('HGET', KEYS[1], 'status')
if not before then
  return {0, ARGV[4]}
end
local testing = redis.call('HGET', KEYS[1], 'is_testing')
redis.call('HSET', KEYS[1], field, ARGV[4], 'status', ARGV[5], 'updated', ARGV[6])
if #ARGV > 9 then
  local fields = {}
  for i = 10, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end
move_stat(KEYS[3], testing, before, ARGV[5])
move_index(KEYS[4], ARGV[1], redis.call('HGET', KEYS[1], 'created'), before, ARGV[5])
if ARGV[5] == 'completed' and testing ~= '1' then
  redis.call('HINCRBY', KEYS[3], 'completed_duration_ms', ARGV[8])
end
if ARGV[7] == '1' then
  release_number(KEYS[2], ARGV[2], ARGV[1])
  local now_ms = string.format('%.0f', math.floor(tonumber(ARGV[6]) / 1000))
  ended(KEYS[5], KEYS[1], KEYS[6], ARGV[2] .. '|' .. ARGV[1], now_ms, ARGV[9])
end
return {1, ARGV[4]}
