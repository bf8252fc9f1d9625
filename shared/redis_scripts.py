"""Lua scripts: each one is a single atomic decision on keys of one hash tag."""

from __future__ import annotations

from typing import Final

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
