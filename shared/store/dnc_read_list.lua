-- The live entries of numbers on one list; expired ones are deleted, and a list left empty
-- leaves the scopes set.
--
-- KEYS[1]   the environment's do-not-call scopes set
-- KEYS[2]   the list hash
-- ARGV[1]   scope of the list
-- ARGV[2]   now_us
-- ARGV[3..] number, number, ...
-- Returns the live entries' JSON in the order of the numbers (nil where none).

-- include: dnc_read.lua

local now = tonumber(ARGV[2])
local out = {}
local dropped = false
for i = 3, #ARGV do
  local raw, expired = read(KEYS[2], ARGV[i], now)
  out[#out + 1] = raw
  dropped = dropped or expired
end
if dropped and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[1])
end
return out
