-- Settles an Idempotency-Key claim only while it is still this request's (its lease may have
-- run out and been taken over): stores the answer to replay, or deletes the claim so the
-- client can retry.
--
-- KEYS[1]   idempotency entry (string)
-- ARGV[1]   the claim record this request wrote
-- ARGV[2]   the finished record ('' to release the claim)
-- ARGV[3]   keep_ms
-- Returns 1 if settled, 0 if the claim is no longer this request's.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
