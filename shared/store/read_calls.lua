-- Reads calls of one campaign in one step: each call's hash and its body.
--
-- KEYS[1..] call hash, call body, call hash, call body, ... (two keys a call)
-- Returns {fields, body, fields, body, ...}: each hash's fields flat as HGETALL gives them
-- (empty for a call that is gone), each body as GET gives it (nil when none is kept).

local replies = {}
for i = 1, #KEYS, 2 do
  replies[i] = redis.call('HGETALL', KEYS[i])
  replies[i + 1] = redis.call('GET', KEYS[i + 1])
end
return replies
