"""Lua scripts: each one is a single atomic decision on keys of one hash tag."""

from __future__ import annotations

from typing import Final

# Moves a call between the per-status counters behind a campaign's `stats` (test calls and
# no-ops are skipped). Prepended to every script that changes a call's status.
_MOVE_STAT = """
local function move_stat(stats, testing, from, to)
  if testing == '1' or from == to then
    return
  end
  if from then
    redis.call('HINCRBY', stats, from, -1)
  end
  if to then
    redis.call('HINCRBY', stats, to, 1)
  end
end
"""

# The duplicate registry is one hash per campaign: E.164 -> `<call_id>|<deadline_ms>` while
# the reservation waits for the scheduler (a passed deadline frees the number), `<call_id>|`
# once confirmed. The last `|` ends the call id, so ids that contain `|` are read back whole.
_HOLDER = """
local function holder_of(held)
  local call_id, deadline = string.match(held, '^(.*)|(%d*)$')
  if not call_id then
    return held, nil
  end
  return call_id, tonumber(deadline)
end

local function release_number(active, number, call_id)
  local held = redis.call('HGET', active, number)
  if held and holder_of(held) == call_id then
    redis.call('HDEL', active, number)
  end
end
"""

# KEYS: call hash, call body, active-number hash, campaign calls list, campaign stats hash,
#       campaign hash, campaign hand-off set
# ARGV: call_id, number (E.164), check_duplicates (0/1), now_ms, reservation deadline_ms,
#       is_testing (0/1), body JSON ('' when payload and context are both empty),
#       campaign version (its `updated_at`; '' to skip the check), then the call hash's
#       values: env, status, attempt, scheduled, reason, created, updated (times in µs)
# The call hash holds small fields only, so Redis keeps it a listpack under its default
# `hash-max-listpack-value`: the id and campaign are in the key, payload and context in the
# body key; the flags `is_testing` and `allow_duplicates` are stored only when set; times are
# microseconds since the Unix epoch, which a listpack holds as 8-byte integers.
# Returns {"accepted"} | {"exists", status} | {"duplicate", existing_call_id} |
#         {"campaign_changed"} (the campaign is no longer the version the call was checked on)
ACCEPT_CALL: Final = (
    _MOVE_STAT
    + _HOLDER
    + """
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
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[1] .. '|' .. ARGV[5])
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
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[2], ARGV[7])
end
redis.call('RPUSH', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[7], ARGV[4], ARGV[1])
if ARGV[6] ~= '1' then
  redis.call('HINCRBY', KEYS[5], 'total', 1)
end
move_stat(KEYS[5], ARGV[6], nil, ARGV[10])
return {'accepted'}
"""
)

# KEYS: call hash, active-number hash, campaign hand-off set
# ARGV: call_id, number (E.164), now_ms
# The scheduler queued the call: its reservation now lives until the call ends, and it is no
# longer waiting to be handed on. A reservation that lapsed meanwhile is taken again if the
# number is still free.
CONFIRM_RESERVATION: Final = (
    _HOLDER
    + """
local held = redis.call('HGET', KEYS[2], ARGV[2])
local holder, deadline = nil, nil
if held then
  holder, deadline = holder_of(held)
end
if holder == ARGV[1] then
  if deadline then
    redis.call('HSET', KEYS[2], ARGV[2], ARGV[1] .. '|')
  end
elseif redis.call('HGET', KEYS[1], 'allow_duplicates') ~= '1'
    and (not held or (deadline and deadline <= tonumber(ARGV[3]))) then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1] .. '|')
end
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('HSETNX', KEYS[1], 'enqueued', '1')
"""
)

# KEYS: due queue, inflight set
# ARGV: now_ms, limit, lease_ms
# Moves up to `limit` due members into the inflight set with a lease; returns member, score, ...
CLAIM_DUE: Final = """
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2],
                       'WITHSCORES')
if #due == 0 then
  return due
end
local lease = tonumber(ARGV[1]) + tonumber(ARGV[3])
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('ZADD', KEYS[2], lease, due[i])
end
return due
"""

# KEYS: due queue, inflight set
# ARGV: now_ms, limit
# Leases that ran out (a scheduler died between claim and hand-off) go back to the queue.
REQUEUE_EXPIRED: Final = """
local expired = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], member)
end
return #expired
"""

# KEYS: call hash, active-number hash, campaign stats hash
# ARGV: call_id, number (E.164), attempt, decision, status, updated (us), terminal (0/1),
#       duration_ms, field, value, ... (the next attempt's fields when the call is requeued)
# Applies one attempt's outcome once: returns {1, decision} the first time, then {0, stored}.
APPLY_OUTCOME: Final = (
    _MOVE_STAT
    + _HOLDER
    + """
local field = 'outcome:' .. ARGV[3]
local previous = redis.call('HGET', KEYS[1], field)
if previous then
  return {0, previous}
end
local before = redis.call('HGET', KEYS[1], 'status')
local testing = redis.call('HGET', KEYS[1], 'is_testing')
redis.call('HSET', KEYS[1], field, ARGV[4], 'status', ARGV[5], 'updated', ARGV[6])
if #ARGV > 8 then
  local fields = {}
  for i = 9, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end
move_stat(KEYS[3], testing, before, ARGV[5])
if ARGV[5] == 'completed' and testing ~= '1' then
  redis.call('HINCRBY', KEYS[3], 'completed_duration_ms', ARGV[8])
end
if ARGV[7] == '1' then
  release_number(KEYS[2], ARGV[2], ARGV[1])
end
return {1, ARGV[4]}
"""
)

# KEYS: call hash, campaign stats hash
# ARGV: attempt, status, updated (us), started_at (RFC 3339)
# Marks an attempt started unless a later state already landed; records when it started.
MARK_STARTED: Final = (
    _MOVE_STAT
    + """
local current = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if tonumber(ARGV[1]) < current then
  return 0
end
if redis.call('HEXISTS', KEYS[1], 'outcome:' .. ARGV[1]) == 1 then
  return 0
end
local before = redis.call('HGET', KEYS[1], 'status')
if before ~= 'queued' and before ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'attempt', ARGV[1], 'updated', ARGV[3],
           'started:' .. ARGV[1], ARGV[4])
move_stat(KEYS[2], redis.call('HGET', KEYS[1], 'is_testing'), before, ARGV[2])
return 1
"""
)

# KEYS: call hash, active-number hash, campaign stats hash, campaign hand-off set
# ARGV: call_id, number (E.164), new status, updated (us)
# Cancels a call that has not started dialing; returns {1, "queued"} or {0, current status}.
# A call cancelled before it was ever queued no longer waits to be handed on either.
CANCEL_QUEUED: Final = (
    _MOVE_STAT
    + _HOLDER
    + """
local before = redis.call('HGET', KEYS[1], 'status')
if not before then
  return {0, ''}
end
if before ~= 'queued' then
  return {0, before}
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated', ARGV[4])
move_stat(KEYS[3], redis.call('HGET', KEYS[1], 'is_testing'), before, ARGV[3])
release_number(KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return {1, before}
"""
)

# KEYS: campaign dial-slot zset (member call_id:attempt, score lease deadline ms),
#       campaign dial-rate zset (member call_id:attempt, score release time ms)
# ARGV: now_ms, max_concurrent, per_minute, lease_ms, member, member, ...
# Grants the first members that fit both limits; returns {granted, next_rate_slot_ms}.
# A slot whose lease ran out (its dialer stopped renewing it) no longer counts.
ACQUIRE_DIAL_SLOTS: Final = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
local in_use = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local recent = redis.call('ZCARD', KEYS[2])
local room = math.min(tonumber(ARGV[2]) - in_use, tonumber(ARGV[3]) - recent)
local granted = 0
for i = 5, #ARGV do
  if granted >= room then
    break
  end
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[i])
  redis.call('ZADD', KEYS[2], now, ARGV[i])
  granted = granted + 1
end
local next_rate = 0
if recent + granted >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if oldest[2] then
    next_rate = tonumber(oldest[2]) + 60000
  end
end
return {granted, next_rate}
"""

# KEYS: campaign dial-slot zset
# ARGV: now_ms, lease_ms, member
# The dialer keeps its slot while the call lasts; returns 0 if the slot was already gone.
RENEW_DIAL_SLOT: Final = """
return redis.call('ZADD', KEYS[1], 'XX', 'CH', tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[3])
"""

# KEYS: number cooldown key
# ARGV: until_ms, ttl_ms
# Extends a number's post-completion hold, never shortens it.
EXTEND_COOLDOWN: Final = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: campaign hash
# ARGV: new status, updated_at, allowed previous statuses...
# Compare-and-set of a campaign's status; returns {1, old} or {0, current}.
TRANSITION_CAMPAIGN: Final = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then
  return {0, ''}
end
for i = 3, #ARGV do
  if ARGV[i] == current then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2])
    return {1, current}
  end
end
return {0, current}
"""

# KEYS: idempotency entry
# ARGV: the claim record this request wrote, the finished record ('' to release), keep_ms
# Settles a claim only while it is still this request's (its lease may have run out and been
# taken over): stores the answer to replay, or deletes the claim so the client can retry.
SETTLE_IDEMPOTENT_REQUEST: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""

# KEYS: campaign webhooks hash
# ARGV: webhook id, the JSON read, the JSON to store
# Compare-and-set of one webhook, so two edits never overwrite each other unseen; 1 if stored.
REPLACE_WEBHOOK: Final = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""

# KEYS: delivery hash, legacy `delivered` marker of the (webhook, event) pair
# ARGV: claim_until_ms, keep_ms, field, value, ...
# Creates a delivery with its first attempt claimed and returns {'created'}; a pair seen before
# (a replay) is left alone and its state returned: {'exists', state}.
BEGIN_WEBHOOK_DELIVERY: Final = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'exists', 'delivered'}
end
if redis.call('HSETNX', KEYS[1], 'state', 'pending') == 0 then
  return {'exists', redis.call('HGET', KEYS[1], 'state')}
end
local fields = {}
for i = 3, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], 'attempts', '0', 'claim_until', ARGV[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'created'}
"""

# KEYS: delivery hash
# ARGV: now_ms, claim_until_ms, manual (0/1)
# Claims the next attempt of a delivery so no two senders make it. A scheduled retry needs the
# delivery pending and due; a manual one (redelivery) only that no attempt is under way.
# Returns {'ok', attempt, state, event_id, event_type, body, next_attempt_ms} or
# {'missing'} | {'busy', claim_until_ms} | {'done', state} | {'early', next_attempt_ms}.
CLAIM_WEBHOOK_ATTEMPT: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local now = tonumber(ARGV[1])
local claim = redis.call('HGET', KEYS[1], 'claim_until')
if claim and tonumber(claim) > now then
  return {'busy', claim}
end
local state = redis.call('HGET', KEYS[1], 'state')
local next_at = redis.call('HGET', KEYS[1], 'next_attempt_ms') or ''
if ARGV[3] ~= '1' then
  if state ~= 'pending' then
    return {'done', state}
  end
  if next_at ~= '' and tonumber(next_at) > now then
    return {'early', next_at}
  end
end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') + 1
redis.call('HSET', KEYS[1], 'claim_until', ARGV[2])
local f = redis.call('HMGET', KEYS[1], 'event_id', 'event_type', 'body')
return {'ok', tostring(attempt), state, f[1] or '', f[2] or '', f[3] or '', next_at}
"""

# KEYS: delivery hash, the webhook's attempts list
# ARGV: attempt, state, next_attempt_ms ('' for none), updated_at, attempt JSON, keep_count,
#       keep_ms
# Logs an attempt (the list keeps the newest keep_count) and moves the delivery on, unless a
# later attempt was already recorded. Returns 1 if the delivery moved.
RECORD_WEBHOOK_ATTEMPT: Final = """
redis.call('LPUSH', KEYS[2], ARGV[5])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[6]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[7])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local done = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if tonumber(ARGV[1]) <= done then
  return 0
end
redis.call('HSET', KEYS[1], 'attempts', ARGV[1], 'state', ARGV[2], 'updated_at', ARGV[4])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'next_attempt_ms', 'claim_until')
else
  redis.call('HSET', KEYS[1], 'next_attempt_ms', ARGV[3])
  redis.call('HDEL', KEYS[1], 'claim_until')
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 1
"""

# KEYS: webhook retry queue, webhook retry inflight set
# ARGV: now_ms, limit, lease_until_ms
# Puts back retries whose claimer died (lease ran out), then claims up to `limit` due retries
# with a lease; returns the claimed members.
CLAIM_WEBHOOK_RETRIES: Final = """
local expired = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, 1000)
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], member)
end
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZADD', KEYS[2], ARGV[3], member)
end
return due
"""
