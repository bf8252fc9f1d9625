"""Redis access: one store per kind of state, each beside the Lua scripts it runs (`.lua`
files in this folder).

- `calls.py`, `CallStore`: `accept_call`, `confirm_reservation`, `claim_due`,
  `requeue_expired`, `apply_outcome`, `mark_started`, `cancel_queued`, `forget_ended_calls`,
  `drop_calls`, `reindex_calls`, `read_calls`, `read_due_calls`
- `catalog.py`, `CatalogStore`: `transition_campaign`, `update_rules`, `replace_webhook`,
  `begin_campaign_delete`
- `dnc.py`, `DncStore`: `dnc_add`, `dnc_read_list`, `dnc_check_new_call`,
  `dnc_read_every_list`, `dnc_remove`
- `limits.py`, `DialLimits` and `NumberCooldowns`: `acquire_dial_slots`, `renew_dial_slot`,
  `extend_cooldown`
- `deliveries.py`, `DeliveryStore`: `begin_webhook_deliveries`, `claim_webhook_attempt`,
  `record_webhook_attempts`, `claim_webhook_retries`

The Idempotency-Key store, which only the ingest uses, keeps its script beside it:
`services/ingest/idempotency.py` and `settle_idempotent_request.lua`.

A script is one file. Its header (the comments it opens with) names every `KEYS[n]` and
`ARGV[n]` it uses, `ARGV[n..]` for a variable tail, and what it returns. The module beside it
reads it once, at import (`lua.source(__package__, "<name>.lua")` into a module-level
constant), and one store registers it. Lua that several scripts need is its own file, pulled
in by a `-- include: <name>.lua` line: `move_stat.lua`, `holder.lua`, `call_index.lua`,
`dnc_read.lua`.
`tests/unit/shared/store/test_scripts.py` checks all of this for every `.lua` file.

Where each rule is coded (once):

- Do-not-call expiry: `dnc_read.lua`. An entry stops counting at its `expires_at` exactly;
  the script that reads an expired entry deletes it, so the check must run in Redis. Python
  writes the `expires_us` it compares (`dnc.entry_json`) and never judges expiry itself.
  (The API's refusal of an `expires_at` that is not in the future is a rule of the request,
  checked before anything is stored.)
- The duplicate registry's holder format, `<call_id>|<deadline_ms>` while reserved and
  `<call_id>|` once confirmed: `holder.lua` (`holder_value` writes it, `holder_of` reads it,
  `release_number` frees a number). No Python reads or writes it; a reservation lapses when
  its deadline is not after `now`, checked in `accept_call.lua` and
  `confirm_reservation.lua`.
- The campaign stats counters: Lua only writes them. `move_stat.lua` moves a call between
  per-status counts, `accept_call.lua` counts `total`, `apply_outcome.lua` adds
  `completed_duration_ms`; test calls are never counted. Python reads the counts
  (`CallStore.stats`) and the ingest derives rates and averages from them
  (`services/ingest/domain/stats.py`): a view of the counts, not a second count.
- The listing indexes and the end of a call: `call_index.lua` (`move_index` moves a call
  between the per-status sorted sets with its status; `ended` records the end for the
  retention sweep and sets the backstop expiry), included by every script that changes a
  call's status. `forget_ended_calls.lua` and `drop_calls.lua` build a call's keys from the
  prefixes they are given (`keys.call(c, "")` and the like; `tests/unit/shared/test_keys.py`
  checks that prefix plus id is the key).
- A number's post-completion rest: `extend_cooldown.lua` only ever lengthens it; whether the
  number rests at `now` is decided in Python alone (`limits.rest_until`), on the deadline
  the scripts return.
- A dial slot's lease is live while its deadline is after `now`: `acquire_dial_slots.lua`
  counts live slots; `DialLimits.lost` lists the others (score not after `now`) for the
  scheduler to recover, a read with the same boundary from the other side.
"""
