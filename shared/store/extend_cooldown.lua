-- Extends a number's post-completion hold, never shortens it.
--
-- KEYS[1]   the number's cooldown key (string: the hold's end in ms)
-- ARGV[1]   until_ms
-- ARGV[2]   ttl_ms
-- Returns 1 if the hold was extended, 0 if it already lasted at least as long.

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
