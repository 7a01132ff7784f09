-- The admins' bulk actions (dead-job retry and discard by filter, from the
-- dashboard API or usherctl): who did what to how many jobs, and when, so
-- that a 3 a.m. "retry everything" can be read back in the morning.
CREATE TABLE usher_admin_actions (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,             -- e.g. "token:12"
    action   text NOT NULL CHECK (action IN ('dead.retry', 'dead.discard')),
    filter   jsonb NOT NULL,
    dry_run  boolean NOT NULL,
    count    bigint NOT NULL CHECK (count >= 0)
);
CREATE INDEX usher_admin_actions_at ON usher_admin_actions (at DESC);
