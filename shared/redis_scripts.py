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
