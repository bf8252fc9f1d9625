-- The scheduler queued the call: its reservation now lives until the call ends, and it is no
-- longer waiting to be handed on. A reservation that lapsed meanwhile is taken again if the
-- number is still free.
--
-- KEYS[1]   call hash
-- KEYS[2]   the campaign's active-number hash (duplicate registry)
-- KEYS[3]   the campaign's hand-off set
-- ARGV[1]   call_id
-- ARGV[2]   number (E.164)
-- ARGV[3]   now_ms
-- Returns 1 the first time the call is marked enqueued, else 0 (also for a call that is gone:
-- removed by the retention sweep or with its campaign; nothing is written then).

-- include: holder.lua

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end

local held = redis.call('HGET', KEYS[2], ARGV[2])
local holder, deadline = nil, nil
if held then
  holder, deadline = holder_of(held)
end
if holder == ARGV[1] then
  if deadline then
    redis.call('HSET', KEYS[2], ARGV[2], holder_value(ARGV[1], ''))
  end
elseif redis.call('HGET', KEYS[1], 'allow_duplicates') ~= '1'
    and (not held or (deadline and deadline <= tonumber(ARGV[3]))) then
  redis.call('HSET', KEYS[2], ARGV[2], holder_value(ARGV[1], ''))
end
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('HSETNX', KEYS[1], 'enqueued', '1')
