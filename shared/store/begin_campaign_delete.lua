-- Marks a campaign as being deleted, unless it is active or has calls in progress: from then
-- on it reads as gone (`deleting` is set) and, as its `updated_at` changes, no call checked
-- against an earlier version is stored. Its calls and keys are removed in the background.
--
-- KEYS[1]   campaign hash
-- KEYS[2]   the campaign's index of calls in progress
-- ARGV[1]   deleting since (ms)
-- ARGV[2]   updated_at (RFC 3339)
-- Returns 'deleting' | 'gone' (none, or already being deleted) | 'active' | 'in_progress'.

local status = redis.call('HGET', KEYS[1], 'status')
if not status or redis.call('HEXISTS', KEYS[1], 'deleting') == 1 then
  return 'gone'
end
if status == 'active' then
  return 'active'
end
if redis.call('ZCARD', KEYS[2]) > 0 then
  return 'in_progress'
end
redis.call('HSET', KEYS[1], 'deleting', ARGV[1], 'updated_at', ARGV[2])
return 'deleting'
