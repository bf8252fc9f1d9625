-- Part of deleting a campaign: removes the first calls of its calls index with their hash,
-- body and dial claims (keys built from the prefixes given, as in forget_ended_calls.lua).
-- The per-status, number and ended indexes are deleted whole once the calls are gone.
--
-- KEYS[1]   the campaign's calls index
-- KEYS[2]   the prefix of a call hash (the call id follows)
-- KEYS[3]   the prefix of a call body
-- KEYS[4]   the prefix of a dial claim (`<call_id>:<attempt>` follows)
-- ARGV[1]   limit: at most this many calls
-- ARGV[2]   attempts: the most dial claims a call whose hash is already gone may have
-- Returns the removed call ids.

local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
for _, id in ipairs(ids) do
  local call = KEYS[2] .. id
  local attempts = tonumber(ARGV[2])
  local attempt = redis.call('HGET', call, 'attempt')
  if attempt then
    attempts = tonumber(attempt) + 1
  end
  redis.call('DEL', call, KEYS[3] .. id)
  for n = 1, attempts do
    redis.call('DEL', KEYS[4] .. id .. ':' .. n)
  end
  redis.call('ZREM', KEYS[1], id)
end
return ids
