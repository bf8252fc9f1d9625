-- Compare-and-set of a campaign's status: moves it only from one of the allowed statuses.
--
-- KEYS[1]   campaign hash
-- ARGV[1]   new status
-- ARGV[2]   updated_at (RFC 3339)
-- ARGV[3..] allowed previous statuses
-- Returns {1, previous status} if moved, else {0, current status} ('' when there is none).

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
