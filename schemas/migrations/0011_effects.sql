-- Effects that must happen once ever, not once per live job: a chained job
-- (a registration's confirmation email) is enqueued only by the transaction
-- that first records its key here. A job's unique key guards only while the
-- job lives; this row outlives the job and its pruning, so a handler run
-- again after its commit (a lost reply, a replay) cannot chain it twice.
CREATE TABLE usher_effects (
    key        text PRIMARY KEY,
    job_id     bigint,      -- the job whose transaction recorded it, if any
    created_at timestamptz NOT NULL DEFAULT now()
);
