-- Upgrading data written before the listing indexes: files a chunk of the calls in a
-- campaign's old calls list (in acceptance order) in the calls, per-status and number
-- indexes, and an ended call in the ended set (ended when last updated) with its backstop
-- expiry. Idempotent: a call already filed is filed again the same way. Calls whose hash is
-- gone are skipped.
--
-- KEYS[1]   the campaign's old calls list
-- KEYS[2]   the campaign's calls index
-- KEYS[3]   the prefix of the campaign's per-status call indexes
-- KEYS[4]   the campaign's number index
-- KEYS[5]   the campaign's ended set
-- KEYS[6]   the prefix of a call hash (the call id follows)
-- KEYS[7]   the prefix of a call body
-- ARGV[1]   start: the first position in the list
-- ARGV[2]   count
-- ARGV[3]   keep_ms: an ended call's hash and body expire this long after it ended
-- ARGV[4]   now_ms
-- Returns how many list entries were read (fewer than `count`: the list is done).

local ids = redis.call('LRANGE', KEYS[1], ARGV[1], tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1)
for _, id in ipairs(ids) do
  local call = KEYS[6] .. id
  local row = redis.call('HMGET', call, 'status', 'created', 'to', 'updated')
  local status, created, number, updated = row[1], row[2], row[3], row[4]
  if status and created and number then
    redis.call('ZADD', KEYS[2], created, id)
    redis.call('ZADD', KEYS[3] .. status, created, id)
    redis.call('ZADD', KEYS[4], 0, number .. '|' .. id)
    if status ~= 'queued' and status ~= 'in_progress' then
      local ended_ms = math.floor(tonumber(updated or created) / 1000)
      redis.call('ZADD', KEYS[5], 'NX', string.format('%.0f', ended_ms), number .. '|' .. id)
      -- The expiry counts from the end, as if it had been set then (at least a moment).
      local left = ended_ms + tonumber(ARGV[3]) - tonumber(ARGV[4])
      if left < 1 then
        left = 1
      end
      redis.call('PEXPIRE', call, string.format('%.0f', left))
      redis.call('PEXPIRE', KEYS[7] .. id, string.format('%.0f', left))
    end
  end
end
return #ids
