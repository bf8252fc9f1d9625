-- Stores a new call and, unless duplicates are allowed, reserves its number in the duplicate
-- registry until a deadline (or until the scheduler confirms it); marks it as waiting for the
-- scheduler and counts it in the campaign's stats. Nothing is stored if the call exists, the
-- number is held by another call whose reservation has not lapsed, or the campaign changed.
--
-- The call hash holds small fields only, so Redis keeps it a listpack under its default
-- `hash-max-listpack-value`: the id and campaign are in the key, payload and context in the
-- body key; the flags `is_testing` and `allow_duplicates` are stored only when set; times are
-- microseconds since the Unix epoch, which a listpack holds as 8-byte integers.
--
-- KEYS[1]   call hash
-- KEYS[2]   call body (string)
-- KEYS[3]   the campaign's active-number hash (duplicate registry)
-- KEYS[4]   the campaign's calls index (sorted set by creation time in µs)
-- KEYS[5]   the campaign's stats hash
-- KEYS[6]   campaign hash
-- KEYS[7]   the campaign's hand-off set (calls waiting for the scheduler, score now_ms)
-- KEYS[8]   the prefix of the campaign's per-status call indexes
-- KEYS[9]   the campaign's number index (`<e164>|<call_id>` members)
-- ARGV[1]   call_id
-- ARGV[2]   number (E.164)
-- ARGV[3]   check_duplicates (0/1)
-- ARGV[4]   now_ms
-- ARGV[5]   reservation deadline_ms
-- ARGV[6]   is_testing (0/1)
-- ARGV[7]   body JSON ('' when payload and context are both empty)
-- ARGV[8]   campaign version (its `updated_at`; '' to skip the check)
-- ARGV[9]   call hash value: env
-- ARGV[10]  call hash value: status
-- ARGV[11]  call hash value: attempt
-- ARGV[12]  call hash value: scheduled (µs)
-- ARGV[13]  call hash value: reason
-- ARGV[14]  call hash value: created (µs)
-- ARGV[15]  call hash value: updated (µs)
-- ARGV[16]  optional: the request's trace context (`trace`; shared/tracing.py), given only
--           when the request was traced
-- Returns {'accepted'} | {'exists', status} | {'duplicate', existing_call_id} |
--         {'campaign_changed'} (the campaign is no longer the version the call was checked on)

-- include: move_stat.lua
-- include: holder.lua
-- include: call_index.lua

local status = redis.call('HGET', KEYS[1], 'status')
if status then
  return {'exists', status}
end
if ARGV[8] ~= '' and redis.call('HGET', KEYS[6], 'updated_at') ~= ARGV[8] then
  return {'campaign_changed'}
end
if ARGV[3] == '1' then
  local held = redis.call('HGET', KEYS[3], ARGV[2])
  if held then
    local holder, deadline = holder_of(held)
    local lapsed = deadline and deadline <= tonumber(ARGV[4])
    if holder ~= ARGV[1] and not lapsed then
      return {'duplicate', holder}
    end
  end
  redis.call('HSET', KEYS[3], ARGV[2], holder_value(ARGV[1], ARGV[5]))
end
local fields = {'env', ARGV[9], 'to', ARGV[2], 'status', ARGV[10], 'attempt', ARGV[11],
                'scheduled', ARGV[12], 'reason', ARGV[13], 'created', ARGV[14],
                'updated', ARGV[15]}
if ARGV[6] == '1' then
  fields[#fields + 1] = 'is_testing'
  fields[#fields + 1] = '1'
end
if ARGV[3] == '0' then
  fields[#fields + 1] = 'allow_duplicates'
  fields[#fields + 1] = '1'
end
if ARGV[16] then
  fields[#fields + 1] = 'trace'
  fields[#fields + 1] = ARGV[16]
end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[2], ARGV[7])
end
redis.call('ZADD', KEYS[4], ARGV[14], ARGV[1])
move_index(KEYS[8], ARGV[1], ARGV[14], nil, ARGV[10])
redis.call('ZADD', KEYS[9], 0, ARGV[2] .. '|' .. ARGV[1])
redis.call('ZADD', KEYS[7], ARGV[4], ARGV[1])
if ARGV[6] ~= '1' then
  redis.call('HINCRBY', KEYS[5], 'total', 1)
end
move_stat(KEYS[5], ARGV[6], nil, ARGV[10])
return {'accepted'}
