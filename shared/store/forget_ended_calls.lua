-- The retention sweep of one campaign: removes calls that ended at or before a cutoff, with
-- every key and index entry of theirs under the campaign's tag: the call's hash, body and
-- dial claims, and its entries in the calls, per-status, number and ended indexes. The
-- campaign's stats are left as they are.
--
-- The call's keys are built here from the prefixes given (keys.py holds the layout; a unit
-- test checks that prefix .. id gives the same key), so one script covers a batch of calls.
--
-- KEYS[1]   the campaign's ended set (`<e164>|<call_id>` by end time in ms)
-- KEYS[2]   the campaign's calls index
-- KEYS[3]   the prefix of the campaign's per-status call indexes
-- KEYS[4]   the campaign's number index
-- KEYS[5]   the prefix of a call hash (the call id follows)
-- KEYS[6]   the prefix of a call body
-- KEYS[7]   the prefix of a dial claim (`<call_id>:<attempt>` follows)
-- ARGV[1]   cutoff_ms: calls ended at or before this go
-- ARGV[2]   limit: at most this many calls
-- ARGV[3]   attempts: the most dial claims a call whose hash is already gone may have
-- ARGV[4..] every call status (a call whose hash expired is taken out of each status index)
-- Returns {removed call ids, the earliest end time left in the ended set ('' when empty)}.

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local removed = {}
for _, member in ipairs(due) do
  local sep = string.find(member, '|', 1, true)
  local id = string.sub(member, sep + 1)
  local call = KEYS[5] .. id
  local status = redis.call('HGET', call, 'status')
  -- A final status never changes back; should a call still wait or ring, it stays.
  if status ~= 'queued' and status ~= 'in_progress' then
    local attempts = tonumber(ARGV[3])
    if status then
      attempts = tonumber(redis.call('HGET', call, 'attempt') or '0') + 1
    end
    redis.call('DEL', call, KEYS[6] .. id)
    for n = 1, attempts do
      redis.call('DEL', KEYS[7] .. id .. ':' .. n)
    end
    redis.call('ZREM', KEYS[2], id)
    if status then
      redis.call('ZREM', KEYS[3] .. status, id)
    else
      for i = 4, #ARGV do
        redis.call('ZREM', KEYS[3] .. ARGV[i], id)
      end
    end
    redis.call('ZREM', KEYS[4], member)
    removed[#removed + 1] = id
  end
  redis.call('ZREM', KEYS[1], member)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {removed, first[2] or ''}
