-- Marks an attempt started unless a later state already landed; records when it started.
--
-- KEYS[1]   call hash
-- KEYS[2]   the campaign's stats hash
-- KEYS[3]   the prefix of the campaign's per-status call indexes
-- ARGV[1]   attempt
-- ARGV[2]   status
-- ARGV[3]   updated (µs)
-- ARGV[4]   started_at (RFC 3339)
-- ARGV[5]   call_id
-- Returns 1 if the call moved, else 0.

-- include: move_stat.lua
-- include: call_index.lua

local current = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if tonumber(ARGV[1]) < current then
  return 0
end
if redis.call('HEXISTS', KEYS[1], 'outcome:' .. ARGV[1]) == 1 then
  return 0
end
local before = redis.call('HGET', KEYS[1], 'status')
if before ~= 'queued' and before ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'attempt', ARGV[1], 'updated', ARGV[3],
           'started:' .. ARGV[1], ARGV[4])
move_stat(KEYS[2], redis.call('HGET', KEYS[1], 'is_testing'), before, ARGV[2])
move_index(KEYS[3], ARGV[5], redis.call('HGET', KEYS[1], 'created'), before, ARGV[2])
return 1
