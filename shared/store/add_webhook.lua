-- Adds a webhook to its campaign unless the campaign has as many as it may have.
--
-- KEYS[1]   the campaign's webhooks hash
-- ARGV[1]   webhook id
-- ARGV[2]   the JSON to store
-- ARGV[3]   how many webhooks a campaign may have
-- Returns 1 if stored, 0 if the campaign has ARGV[3] webhooks already.

if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
