-- Deletes the number from every given list; a list left empty leaves the scopes set.
--
-- KEYS[1]   the environment's do-not-call scopes set
-- KEYS[2..] list hash, list hash, ...
-- ARGV[1]   now_us ('' = count every entry)
-- ARGV[2]   number
-- ARGV[3..] scope of KEYS[2], scope of KEYS[3], ...
-- Returns how many live entries went (entries already expired at now_us are not counted).

-- include: dnc_read.lua

local now = tonumber(ARGV[1])
local removed = 0
for i = 2, #KEYS do
  local raw = read(KEYS[i], ARGV[2], now)
  if raw then
    removed = removed + redis.call('HDEL', KEYS[i], ARGV[2])
  end
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('SREM', KEYS[1], ARGV[i + 1])
  end
end
return removed
