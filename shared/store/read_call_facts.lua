-- Reads a few fields of calls of one campaign and their bodies, in one step.
--
-- KEYS[1..] call hash, call body, call hash, call body, ... (two keys a call)
-- ARGV[1..] the hash fields to read
-- Returns {values, body, values, body, ...}: each hash's fields' values in the order asked
-- (all nil for a call that is gone), each body as GET gives it (nil when none is kept).

local fields = {}
for i = 1, #ARGV do
  fields[i] = ARGV[i]
end
local replies = {}
for i = 1, #KEYS, 2 do
  replies[i] = redis.call('HMGET', KEYS[i], unpack(fields))
  replies[i + 1] = redis.call('GET', KEYS[i + 1])
end
return replies
