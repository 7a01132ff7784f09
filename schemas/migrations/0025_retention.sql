-- Data lifecycle (issue 16): the append-only tables that grow with every
-- event are partitioned by time, so that retention drops whole partitions
-- (platform/retention.c, run by the maintenance leader per [retention]).
--
-- Partitioned: webhook_deliveries by created_at, one partition a week (the
-- busiest table, with its payloads; kept [retention] webhook_delivery_days,
-- 30 by default: a week keeps it within 7 days of that with about six
-- partitions, where days made every read that is not by time, such as the
-- deliveries log, plan and probe forty), and
-- analytics_minute by minute, one a month (few rows per minute; kept for
-- its events' reporting period). Each has a DEFAULT partition, so a write
-- never fails when the leader has not created a range yet; creating that
-- range later moves the rows out of the default (usher_partition_create).
--
-- Not partitioned, deleted in bounded batches instead: scans (its unique
-- indexes, a registration admitted once and a nonce used once, must hold
-- across all rows, and a unique index of a partitioned table must include
-- the partition key), notifications (job_id UNIQUE, the same), documents
-- (named by reports, and their bytes are shared by content) and
-- usher_effects (its key is unique forever by design).
--
-- The existing rows are kept: each table is renamed, its partitioned
-- successor created with a partition for every day or month that has rows
-- and the ranges around now, the rows copied, and the old table dropped.

-- The partition of p_parent (range-partitioned on p_column) holding p_at, by
-- p_unit ('day', 'week' from Monday, or 'month', in UTC), named
-- PARENT_pYYYYMMDD, PARENT_wYYYYMMDD (its Monday) or PARENT_pYYYYMM.
-- True if it was created, false if it existed. Rows of that range in the
-- DEFAULT partition are moved into it.
CREATE FUNCTION usher_partition_create(p_parent text, p_column text, p_unit text,
                                       p_at timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lo_utc timestamp := date_trunc(p_unit, p_at AT TIME ZONE 'UTC');
    lo timestamptz := lo_utc AT TIME ZONE 'UTC';
    hi timestamptz := (lo_utc + ('1 ' || p_unit)::interval) AT TIME ZONE 'UTC';
    part text := p_parent || CASE p_unit WHEN 'day' THEN to_char(lo_utc, '"_p"YYYYMMDD')
                                         WHEN 'week' THEN to_char(lo_utc, '"_w"YYYYMMDD')
                                         ELSE to_char(lo_utc, '"_p"YYYYMM') END;
    stray boolean;
BEGIN
    IF p_unit NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'usher_partition_create: unit % is not day, week or month', p_unit;
    END IF;
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)',
                   p_parent || '_default', p_column, p_column)
        INTO stray USING lo, hi;
    IF NOT stray THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       part, p_parent, lo, hi);
    ELSE
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       part, p_parent);
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *)'
                       ' INSERT INTO %I SELECT * FROM moved',
                       p_parent || '_default', p_column, p_column, part)
            USING lo, hi;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       p_parent, part, lo, hi);
    END IF;
    RETURN true;
END $$;

-- The time ranges of p_parent's partitions (not the default), oldest first.
CREATE FUNCTION usher_partitions(p_parent text)
RETURNS TABLE (name text, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text, s.lo AT TIME ZONE 'UTC',
           (s.lo + CASE WHEN d.tag LIKE 'w%' THEN interval '1 week'
                        WHEN length(d.tag) = 9 THEN interval '1 day'
                        ELSE interval '1 month' END) AT TIME ZONE 'UTC'
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL (SELECT substring(c.relname FROM '_([pw][0-9]{6,8})$') AS tag) d
    CROSS JOIN LATERAL (SELECT to_date(substr(d.tag, 2), CASE length(d.tag) WHEN 9 THEN 'YYYYMMDD'
                                                         ELSE 'YYYYMM' END)::timestamp AS lo) s
    WHERE i.inhparent = p_parent::regclass AND d.tag IS NOT NULL
    ORDER BY s.lo
$$;

-- Drops p_parent's partitions whose whole range ends at or before
-- p_before; with p_event_cutoff, only those none of whose rows belongs to
-- an event that ended after p_event_cutoff (the table has an event_id).
-- Returns how many were dropped. Waits at most 5 s for a lock, so a long
-- reader delays the drop to the next round instead of queueing every writer
-- behind it.
CREATE FUNCTION usher_partition_drop(p_parent text, p_before timestamptz,
                                     p_event_cutoff timestamptz DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    p record;
    live boolean;
    dropped integer := 0;
BEGIN
    PERFORM set_config('lock_timeout', '5s', true);
    FOR p IN SELECT * FROM usher_partitions(p_parent) WHERE hi <= p_before LOOP
        IF p_event_cutoff IS NOT NULL THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM (SELECT DISTINCT event_id FROM %I) x'
                           ' JOIN events e ON e.id = x.event_id WHERE e.ends_at > $1)', p.name)
                INTO live USING p_event_cutoff;
            CONTINUE WHEN live;
        END IF;
        EXECUTE format('DROP TABLE %I', p.name);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;

-- webhook_deliveries, partitioned by week. Its id keeps its sequence's
-- values (a delivery's id is how it is listed and replayed); the primary
-- key includes created_at, as a partitioned table's must, and an id is
-- still found by the key's leading column.
ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_unpartitioned;
ALTER INDEX webhook_deliveries_endpoint RENAME TO webhook_deliveries_unpartitioned_endpoint;
ALTER TABLE webhook_deliveries_unpartitioned
    RENAME CONSTRAINT webhook_deliveries_pkey TO webhook_deliveries_unpartitioned_pkey;
CREATE SEQUENCE webhook_deliveries_id_seq_p AS bigint;
SELECT setval('webhook_deliveries_id_seq_p',
              (SELECT coalesce(max(id), 0) + 1 FROM webhook_deliveries_unpartitioned), false);
CREATE TABLE webhook_deliveries (
    id          bigint NOT NULL DEFAULT nextval('webhook_deliveries_id_seq_p'),
    endpoint_id bigint NOT NULL REFERENCES webhook_endpoints (id),
    job_id      bigint,
    attempt     integer NOT NULL,
    event       text NOT NULL,
    payload     jsonb NOT NULL,
    status_code integer,
    latency_ms  integer,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE webhook_deliveries_id_seq_p OWNED BY webhook_deliveries.id;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at DESC, id DESC);
CREATE TABLE webhook_deliveries_default PARTITION OF webhook_deliveries DEFAULT;
SELECT usher_partition_create('webhook_deliveries', 'created_at', 'week', d)
FROM (SELECT DISTINCT date_trunc('week', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS d
      FROM webhook_deliveries_unpartitioned
      UNION
      SELECT now() + n * interval '1 week' FROM generate_series(0, 1) n) weeks;
INSERT INTO webhook_deliveries (id, endpoint_id, job_id, attempt, event, payload, status_code,
                                latency_ms, error, created_at)
    SELECT id, endpoint_id, job_id, attempt, event, payload, status_code, latency_ms, error,
           created_at FROM webhook_deliveries_unpartitioned;
DROP TABLE webhook_deliveries_unpartitioned;

-- analytics_minute, partitioned by month (its key already holds minute), as
-- 0023 left it: the gate column, the cancellation metric, the key with gate.
ALTER TABLE analytics_minute RENAME TO analytics_minute_unpartitioned;
ALTER TABLE analytics_minute_unpartitioned
    RENAME CONSTRAINT analytics_minute_pkey TO analytics_minute_unpartitioned_pkey;
CREATE TABLE analytics_minute (
    event_id bigint NOT NULL REFERENCES events (id),
    minute   timestamptz NOT NULL,
    metric   text NOT NULL CONSTRAINT analytics_minute_metric_check
             CHECK (metric IN ('registration', 'cancellation', 'checkin', 'session_access')),
    count    bigint NOT NULL DEFAULT 0,
    gate     text NOT NULL DEFAULT '',
    PRIMARY KEY (event_id, minute, metric, gate)
) PARTITION BY RANGE (minute);
CREATE TABLE analytics_minute_default PARTITION OF analytics_minute DEFAULT;
SELECT usher_partition_create('analytics_minute', 'minute', 'month', m)
FROM (SELECT DISTINCT date_trunc('month', minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m
      FROM analytics_minute_unpartitioned
      UNION
      SELECT now() + n * interval '1 month' FROM generate_series(-1, 1) n) months;
INSERT INTO analytics_minute (event_id, minute, metric, count, gate)
    SELECT event_id, minute, metric, count, gate FROM analytics_minute_unpartitioned;
DROP TABLE analytics_minute_unpartitioned;

-- Batched deletes by age and by event need these.
CREATE INDEX usher_effects_created ON usher_effects (created_at);
CREATE INDEX scans_unknown_event ON scans (scanned_at) WHERE event_id IS NULL;
CREATE INDEX documents_sha256 ON documents (sha256);
