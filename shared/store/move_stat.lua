-- move_stat(stats, testing, from, to): moves one call between the per-status counters of a
-- campaign's stats hash (`stats`), from status `from` to status `to` (nil: none). A test call
-- (`testing` == '1') and a move to the same status change nothing.
-- Included by every script that changes a call's status.
-- Returns nothing.

local function move_stat(stats, testing, from, to)
  if testing == '1' or from == to then
    return
  end
  if from then
    redis.call('HINCRBY', stats, from, -1)
  end
  if to then
    redis.call('HINCRBY', stats, to, 1)
  end
end
