-- The number's entry on each of the given lists; expired ones are deleted, and a list left
-- empty leaves the scopes set.
--
-- KEYS[1]   the environment's do-not-call scopes set
-- KEYS[2..] list hash, list hash, ...
-- ARGV[1]   now_us ('' = no expiry check)
-- ARGV[2]   number
-- ARGV[3..] scope of KEYS[2], scope of KEYS[3], ...
-- Returns the number's entry JSON on each list, in the order of the lists (nil where none).

-- include: dnc_read.lua

local now = tonumber(ARGV[1])
local out = {}
for i = 2, #KEYS do
  local raw, expired = read(KEYS[i], ARGV[2], now)
  out[#out + 1] = raw
  if expired and redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('SREM', KEYS[1], ARGV[i + 1])
  end
end
return out
