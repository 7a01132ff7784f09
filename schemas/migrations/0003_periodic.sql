-- Periodic jobs ([periodic.NAME] in the config; engine/periodic.c): one row
-- per periodic job, holding the last slot of its cron expression that has
-- been dealt with. The maintenance leader moves last_slot forward and
-- enqueues the slot's job in one transaction, and only when the UPDATE finds
-- last_slot older than the slot, so each slot enqueues exactly one job, even
-- when two hosts or an old and a new leader try the same slot at once (the
-- second UPDATE waits for the first one's row lock, then sees the new slot
-- and changes nothing).
--
-- A row is created the first time a supervisor sees the periodic, with the
-- latest past slot and no job: nothing before that is fired. Rows of
-- periodics removed from the config stay (a few bytes) and come back into use
-- if the name returns.
CREATE TABLE usher_periodic (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9_.-]{1,63}$'),
    last_slot  timestamptz NOT NULL,         -- the latest slot dealt with: fired, or passed
                                             -- over at first sight (then, if the expression
                                             -- had no slot in 366 days, that minute)
    fired_job  bigint,                       -- the job of last_slot; NULL if not fired. No
                                             -- foreign key: completed jobs are deleted
    updated_at timestamptz NOT NULL DEFAULT now()
);
