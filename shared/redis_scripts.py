"""Lua scripts: each one is a single atomic decision on keys of one hash tag."""

from __future__ import annotations

from typing import Final

# KEYS: call hash, active-number key, campaign calls zset
# ARGV: call_id, check_duplicates (0/1), created_ms, reservation_ttl_ms, field, value, ...
# Returns {"accepted"} | {"exists", status} | {"duplicate", existing_call_id}
ACCEPT_CALL: Final = """
local status = redis.call('HGET', KEYS[1], 'status')
if status then
  return {'exists', status}
end
if ARGV[2] == '1' then
  local holder = redis.call('GET', KEYS[2])
  if holder and holder ~= ARGV[1] then
    return {'duplicate', holder}
  end
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
end
local fields = {}
for i = 5, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return {'accepted'}
"""

# KEYS: call hash, active-number key
# ARGV: call_id
# The scheduler stored the call: its reservation now lives until the call ends.
CONFIRM_RESERVATION: Final = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('PERSIST', KEYS[2])
elseif redis.call('HGET', KEYS[1], 'allow_duplicates') == '0' then
  redis.call('SET', KEYS[2], ARGV[1], 'NX')
end
return redis.call('HSETNX', KEYS[1], 'enqueued', '1')
"""

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

# KEYS: call hash, active-number key
# ARGV: call_id, attempt, outcome_field_value, status, updated_at, terminal (0/1), field, value...
# Applies one attempt's outcome once: returns the decision stored the first time.
APPLY_OUTCOME: Final = """
local field = 'outcome:' .. ARGV[2]
local previous = redis.call('HGET', KEYS[1], field)
if previous then
  return {0, previous}
end
redis.call('HSET', KEYS[1], field, ARGV[3], 'status', ARGV[4], 'updated_at', ARGV[5])
if #ARGV > 6 then
  local fields = {}
  for i = 7, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end
if ARGV[6] == '1' and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return {1, ARGV[3]}
"""

# KEYS: call hash
# ARGV: attempt, status, updated_at
# Marks an attempt started unless a later state already landed.
MARK_STARTED: Final = """
local current = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if tonumber(ARGV[1]) < current then
  return 0
end
if redis.call('HEXISTS', KEYS[1], 'outcome:' .. ARGV[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'attempt', ARGV[1], 'updated_at', ARGV[3])
return 1
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
