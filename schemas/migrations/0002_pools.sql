-- Running worker supervisors, one row each, upserted every few seconds by
-- the supervisor itself: what the dashboard's pool view and an outside
-- orchestrator read (current and desired size, busy children, leader), and
-- how pools on different hosts share a downstream concurrency cap.
CREATE TABLE usher_pools (
    worker_id     text PRIMARY KEY,         -- host:pid, also the jobs' locked_by
    pool          text NOT NULL,
    host          text NOT NULL,
    pid           integer NOT NULL,
    current_size  integer NOT NULL,
    desired_size  integer NOT NULL,         -- what the autoscaling policy asks for
    granted_size  integer NOT NULL,         -- desired, capped by the downstream share
    min_size      integer NOT NULL,
    max_size      integer NOT NULL,
    busy          integer NOT NULL,
    depth         bigint NOT NULL,          -- runnable jobs in the pool's queues
    leader        boolean NOT NULL DEFAULT false,
    downstream    text NOT NULL DEFAULT '', -- shared resource ('' = none)
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX usher_pools_downstream ON usher_pools (downstream) WHERE downstream <> '';

-- Records a supervisor's heartbeat and returns the size it may run.
-- Pools that share a downstream resource (e.g. the SMTP relay) share its
-- limit across all hosts: under a transaction-scoped advisory lock on the
-- resource, a supervisor gets min(desired, limit - what the other live
-- supervisors hold), where a supervisor holds the larger of its granted
-- and its current size (children still busy count until they retire).
-- PL/pgSQL takes a fresh snapshot for each statement, so the sum is read
-- after the lock is held. Supervisors silent for 15 s no longer count.
CREATE FUNCTION usher_pool_heartbeat(
    p_worker_id text, p_pool text, p_host text, p_pid integer, p_current integer,
    p_desired integer, p_min integer, p_max integer, p_busy integer, p_depth bigint,
    p_leader boolean, p_downstream text, p_limit integer)
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held integer := 0;
    granted integer := p_desired;
BEGIN
    IF p_downstream <> '' AND p_limit > 0 THEN
        PERFORM pg_advisory_xact_lock(hashtext('usher:downstream:' || p_downstream));
        SELECT coalesce(sum(greatest(current_size, granted_size)), 0) INTO held
          FROM usher_pools
         WHERE downstream = p_downstream AND worker_id <> p_worker_id
           AND heartbeat_at > now() - interval '15 seconds';
        granted := least(p_desired, greatest(p_limit - held, 0));
    END IF;
    INSERT INTO usher_pools AS p (worker_id, pool, host, pid, current_size, desired_size,
                                  granted_size, min_size, max_size, busy, depth, leader,
                                  downstream, heartbeat_at)
    VALUES (p_worker_id, p_pool, p_host, p_pid, p_current, p_desired, granted, p_min, p_max,
            p_busy, p_depth, p_leader, p_downstream, now())
    ON CONFLICT (worker_id) DO UPDATE SET
        current_size = EXCLUDED.current_size, desired_size = EXCLUDED.desired_size,
        granted_size = EXCLUDED.granted_size, min_size = EXCLUDED.min_size,
        max_size = EXCLUDED.max_size, busy = EXCLUDED.busy, depth = EXCLUDED.depth,
        leader = EXCLUDED.leader, downstream = EXCLUDED.downstream,
        heartbeat_at = EXCLUDED.heartbeat_at;
    RETURN granted;
END
$$;
