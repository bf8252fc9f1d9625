-- The scheduler queued calls of one campaign: each call's reservation now lives until the call
-- ends, and it is no longer waiting to be handed on. A reservation that lapsed meanwhile is
-- taken again if the number is still free.
--
-- KEYS[1]   the campaign's active-number hash (duplicate registry)
-- KEYS[2]   the campaign's hand-off set
-- KEYS[3..] the calls' hashes, one a call
-- ARGV[1]   now_ms
-- ARGV[2..] call_id, number (E.164) of each call, in the order of KEYS[3..]
-- Returns, for each call, 1 the first time it is marked enqueued, else 0 (also for a call that
-- is gone: removed by the retention sweep or with its campaign; nothing is written for it).

-- include: holder.lua

local now_ms = tonumber(ARGV[1])
local marked = {}
for i = 3, #KEYS do
  local call = KEYS[i]
  local call_id, number = ARGV[2 * i - 4], ARGV[2 * i - 3]
  if redis.call('EXISTS', call) == 0 then
    marked[i - 2] = 0
  else
    local held = redis.call('HGET', KEYS[1], number)
    local holder, deadline = nil, nil
    if held then
      holder, deadline = holder_of(held)
    end
    if holder == call_id then
      if deadline then
        redis.call('HSET', KEYS[1], number, holder_value(call_id, ''))
      end
    elseif redis.call('HGET', call, 'allow_duplicates') ~= '1'
        and (not held or (deadline and deadline <= now_ms)) then
      redis.call('HSET', KEYS[1], number, holder_value(call_id, ''))
    end
    redis.call('ZREM', KEYS[2], call_id)
    marked[i - 2] = redis.call('HSETNX', call, 'enqueued', '1')
  end
end
return marked
