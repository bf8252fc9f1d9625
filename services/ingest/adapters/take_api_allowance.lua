-- Takes a request's cost from its environment's API allowance, or says how long to wait.
-- The allowance is a generic cell rate (GCRA): `rate` per second, up to `burst` at once. The
-- key holds the instant (microseconds, Redis's clock, so every copy of the service agrees)
-- at which everything taken so far would have been paid back at `rate`.
--
-- A request may go when at least min(cost, burst) is available; it then takes its whole cost.
-- So a request costing more than the burst (a large batch) goes when the allowance is full,
-- and the environment waits out the difference before its next request.
--
-- KEYS[1]   the environment's allowance (string: microseconds)
-- ARGV[1]   rate (per second, > 0)
-- ARGV[2]   burst (>= 1)
-- ARGV[3]   cost (>= 1)
-- Returns 0 if taken (the key then runs out once the allowance is full again), else the
-- milliseconds (>= 1) until it could be.

local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = 1000000 / rate
local paid = tonumber(redis.call('GET', KEYS[1]) or now)
if paid < now then
  paid = now
end
-- How far ahead of now `paid` may be for the request to go.
local room = (burst - math.min(cost, burst)) * interval
local ahead = paid - now
if ahead > room then
  return math.ceil((ahead - room) / 1000)
end
paid = paid + cost * interval
redis.call('SET', KEYS[1], string.format('%.3f', paid), 'PX', math.ceil((paid - now) / 1000) + 1)
return 0
