-- Everything a new call request is checked against in the environment, in one step: the
-- number's live entry on the list that applies, and its post-completion cooldown.
--
-- KEYS[1]   the environment's do-not-call scopes set
-- KEYS[2]   the list hash (any key of the environment when no list applies)
-- KEYS[3]   the number's post-completion cooldown key (`keys.number_cooldown`)
-- ARGV[1]   scope of the list ('' = no list applies)
-- ARGV[2]   now_us
-- ARGV[3]   number
-- Returns {entry JSON (nil where none), cooldown deadline in ms (nil where none)}.

-- include: dnc_read.lua

local entry = false
if ARGV[1] ~= '' then
  local raw, expired = read(KEYS[2], ARGV[3], tonumber(ARGV[2]))
  entry = raw
  if expired and redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('SREM', KEYS[1], ARGV[1])
  end
end
return {entry, redis.call('GET', KEYS[3])}
