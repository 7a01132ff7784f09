-- The analytics.rollup jobs already folded into analytics_minute
-- (workers/handlers/analytics_rollup.c). The fold statement inserts a job's
-- id here and adds the job's count only if the insert did insert, in the same
-- statement: a job that runs again (its child died after the commit, before
-- the supervisor heard of it, and the lease was rescued) counts once.
--
-- An id is only needed while its job can still run again, which is minutes;
-- rows are kept 7 days and the fold statement itself deletes expired ones, a
-- few hundred at a time, hence the index on folded_at. No foreign key to
-- usher_jobs: completed jobs are deleted.
CREATE TABLE analytics_folded (
    job_id    bigint PRIMARY KEY,
    folded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX analytics_folded_expiry ON analytics_folded (folded_at);
