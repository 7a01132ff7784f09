-- The queue engine's tables. Applied once by `usherctl migrate` inside a
-- transaction; the migration runner records it in usher_migrations.

-- Declared queues. `usherctl migrate` inserts every [queue.NAME] of the
-- config; enqueue refuses a queue that is not here. Paused queues are
-- skipped by claims. Tiny and read on every claim, so it stays cached.
CREATE TABLE usher_queues (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9_.-]{1,63}$'),
    pool       text NOT NULL DEFAULT 'default',
    paused     boolean NOT NULL DEFAULT false,
    paused_at  timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Completed jobs are deleted, so a job is only ever in one of these states.
CREATE TYPE usher_job_state AS ENUM ('available', 'running', 'dead', 'cancelled');

-- The hot table: available and running jobs, plus dead and cancelled ones
-- until their retention passes. Completions delete rows, so the table stays
-- about as large as the backlog and most of its churn is INSERT + UPDATE +
-- DELETE of short-lived rows.
--
-- No foreign key to usher_queues: every insert would take a KEY SHARE lock
-- on one hot queue row (a MultiXact under concurrency). Enqueue checks the
-- queue with an EXISTS in the same statement instead.
CREATE TABLE usher_jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue         text NOT NULL,
    kind          text NOT NULL,
    priority      smallint NOT NULL CHECK (priority BETWEEN 0 AND 2),
    state         usher_job_state NOT NULL DEFAULT 'available',
    payload       jsonb NOT NULL,
    attempt       integer NOT NULL DEFAULT 0,   -- attempts started so far
    max_attempts  integer NOT NULL CHECK (max_attempts >= 1),
    timeout_ms    integer NOT NULL CHECK (timeout_ms >= 1),
    run_at        timestamptz NOT NULL DEFAULT now(),
    unique_key    text,
    locked_by     text,                         -- worker id holding the lease
    locked_until  timestamptz,                  -- lease expiry
    attempted_at  timestamptz,                  -- start of the current attempt
    finished_at   timestamptz,                  -- when it became dead or cancelled
    created_at    timestamptz NOT NULL DEFAULT now(),
    errors        jsonb NOT NULL DEFAULT '[]'   -- [{attempt, at, error, worker}], oldest first
);

-- The claim index: only available jobs, in claim order. Partial, so the
-- running, dead and cancelled rows never enter it and it stays as small as
-- the backlog; claims walk it per queue in (priority, run_at, id) order.
CREATE INDEX usher_jobs_claim ON usher_jobs (queue, priority, run_at, id)
    WHERE state = 'available';

-- A live job (available or running) owns its unique key; once it completes
-- (deleted), dies or is cancelled the key is free again.
CREATE UNIQUE INDEX usher_jobs_unique ON usher_jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'running');

-- Lease rescue looks for running jobs whose lease ran out.
CREATE INDEX usher_jobs_lease ON usher_jobs (locked_until) WHERE state = 'running';

-- The dead-letter queue is listed newest first and pruned oldest first.
CREATE INDEX usher_jobs_finished ON usher_jobs (finished_at)
    WHERE state IN ('dead', 'cancelled');

-- Every row is short-lived: vacuum after 1% of the table changed (default
-- 20%) and analyze after 2%, so dead tuples from claims and deletions are
-- reclaimed quickly and the partial indexes do not bloat. fillfactor 90
-- leaves room on the page for the claim UPDATE's new tuple version.
ALTER TABLE usher_jobs SET (
    fillfactor = 90,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_limit = 2000
);

-- Per-minute completed/failed counts per queue. Completions add to a row
-- here in the same statement that deletes the jobs; `shard` spreads the
-- upserts of concurrent completers over several rows so they do not all
-- wait on one row lock until commit. Readers sum over shards.
CREATE TABLE usher_queue_stats (
    queue     text NOT NULL,
    minute    timestamptz NOT NULL,
    shard     smallint NOT NULL,
    completed bigint NOT NULL DEFAULT 0,
    failed    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, minute, shard)
);

ALTER TABLE usher_queue_stats SET (autovacuum_vacuum_scale_factor = 0.05);
