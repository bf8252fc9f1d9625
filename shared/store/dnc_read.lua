-- read(key, number, now): the entry JSON of `number` in the do-not-call list hash `key`, and
-- whether an expired entry was deleted on the way. An entry counts as absent from its
-- `expires_us` on (`now` >= `expires_us`, both µs since the epoch); with `now` nil every
-- entry counts. This is the one place the expiry rule is coded.
-- Returns raw, expired: (entry JSON or false), (true when an expired entry was deleted).

local function read(key, number, now)
  local raw = redis.call('HGET', key, number)
  if not raw then
    return false, false
  end
  local expires = cjson.decode(raw)['expires_us']
  if now and type(expires) == 'number' and now >= expires then
    redis.call('HDEL', key, number)
    return false, true
  end
  return raw, false
end
