-- usher_partition_create (0025) moves the rows a DEFAULT partition holds for
-- the new range into it before attaching it. It moved them row by row while
-- other transactions could still write to the default partition, then took
-- the default's ACCESS EXCLUSIVE lock to attach: a rollup that had written a
-- row there and then upserted one of the moved rows waited for the move,
-- and the move's attach waited for the rollup, a deadlock (seen in
-- bench/handlers when the first retention pass ran during analytics
-- rollups of a month without a partition: 64 rollup attempts failed). Now
-- the move takes that lock first, so it waits for the writers in flight
-- (within the retention pass's lock_timeout) and the writers after it wait
-- for the move, which touches no row before it holds the table.
CREATE OR REPLACE FUNCTION usher_partition_create(p_parent text, p_column text, p_unit text,
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
        -- The parent first, as ATTACH, CREATE TABLE ... PARTITION OF and ANALYZE take
        -- it (this mode lets rollups, readers and writers go on), then the default.
        EXECUTE format('LOCK TABLE %I IN SHARE UPDATE EXCLUSIVE MODE', p_parent);
        EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', p_parent || '_default');
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
