-- The listing indexes and the end of a call, for every script that changes a call's status.
--
-- move_index(prefix, call_id, created_us, from, to): moves the call between the campaign's
-- per-status sorted sets (`prefix` .. status, scored by creation time in µs), from status
-- `from` to status `to` (nil: none). A move to the same status changes nothing.
-- ended(ended, call, body, member, now_ms, keep_ms): records that the call ended at `now_ms`
-- in the campaign's ended set (`member` is `<e164>|<call_id>`; the first end counts) and lets
-- its hash and body expire `keep_ms` from now should the retention sweep not come first.
-- Return nothing.

local function move_index(prefix, call_id, created_us, from, to)
  if from == to then
    return
  end
  if from then
    redis.call('ZREM', prefix .. from, call_id)
  end
  if to then
    redis.call('ZADD', prefix .. to, created_us, call_id)
  end
end

local function ended(ended_set, call, body, member, now_ms, keep_ms)
  redis.call('ZADD', ended_set, 'NX', now_ms, member)
  redis.call('PEXPIRE', call, keep_ms)
  redis.call('PEXPIRE', body, keep_ms)
end
