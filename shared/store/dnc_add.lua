-- Registers a list's scope and writes entries to the list in one step, so a list never
-- exists unregistered.
--
-- KEYS[1]   the environment's do-not-call scopes set
-- KEYS[2]   the list hash (E.164 number -> entry JSON)
-- ARGV[1]   scope
-- ARGV[2..] number, entry JSON, ...
-- Returns how many numbers were new on the list.

redis.call('SADD', KEYS[1], ARGV[1])
local fields = {}
for i = 2, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
return redis.call('HSET', KEYS[2], unpack(fields))
