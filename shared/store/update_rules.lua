-- Stores edited rules of a campaign that still exists (and is not being deleted); the status
-- is left alone.
--
-- KEYS[1]   campaign hash
-- ARGV[1]   rules JSON
-- ARGV[2]   updated_at (RFC 3339)
-- Returns 1 if stored, 0 if the campaign is gone.

if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'deleting') == 0 then
  redis.call('HSET', KEYS[1], 'rules', ARGV[1], 'updated_at', ARGV[2])
  return 1
end
return 0
