-- Reads the few fields the due pump needs of calls of one campaign, in one step.
--
-- KEYS[1..] call hashes
-- ARGV[1..] the fields to read
-- Returns, for each call, its fields' values in the order asked (nil for a field it lacks; all
-- nil for a call that is gone).

local fields = {}
for i = 1, #ARGV do
  fields[i] = ARGV[i]
end
local replies = {}
for i = 1, #KEYS do
  replies[i] = redis.call('HMGET', KEYS[i], unpack(fields))
end
return replies
