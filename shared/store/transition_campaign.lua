-- Compare-and-set of a campaign's status: moves it only from one of the allowed statuses. A
-- campaign being deleted counts as gone.
--
-- KEYS[1]   campaign hash
-- ARGV[1]   new status
-- ARGV[2]   updated_at (RFC 3339)
-- ARGV[3..] allowed previous statuses
-- Returns {1, previous status, environment id, created_at} if moved, else {0, current status}
-- ('' when there is none).

local current = redis.call('HGET', KEYS[1], 'status')
if not current or redis.call('HEXISTS', KEYS[1], 'deleting') == 1 then
  return {0, ''}
end
for i = 3, #ARGV do
  if ARGV[i] == current then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2])
    local env = redis.call('HGET', KEYS[1], 'environment_id')
    return {1, current, env, redis.call('HGET', KEYS[1], 'created_at')}
  end
end
return {0, current}
