-- The duplicate registry is one hash per campaign: E.164 -> `<call_id>|<deadline_ms>` while
-- the reservation waits for the scheduler (a passed deadline frees the number), `<call_id>|`
-- once confirmed. The last `|` ends the call id, so ids that contain `|` are read back whole.
-- This file is the only code that writes or reads that format.
--
-- holder_value(call_id, deadline): the registry value of `call_id` reserving until `deadline`
-- (ms, as text), or confirmed when `deadline` is ''.
-- holder_of(held): the call id and the deadline in ms (nil once confirmed) of a registry value.
-- release_number(active, number, call_id): frees `number` in registry `active` if `call_id`
-- holds it. Returns nothing.

local function holder_value(call_id, deadline)
  return call_id .. '|' .. deadline
end

local function holder_of(held)
  local call_id, deadline = string.match(held, '^(.*)|(%d*)$')
  if not call_id then
    return held, nil
  end
  return call_id, tonumber(deadline)
end

local function release_number(active, number, call_id)
  local held = redis.call('HGET', active, number)
  if held and holder_of(held) == call_id then
    redis.call('HDEL', active, number)
  end
end
