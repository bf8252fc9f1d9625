-- Compare-and-set of one webhook, so two edits never overwrite each other unseen.
--
-- KEYS[1]   the campaign's webhooks hash
-- ARGV[1]   webhook id
-- ARGV[2]   the JSON read
-- ARGV[3]   the JSON to store
-- Returns 1 if stored, 0 if the webhook changed (or went) since it was read.

if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
