-- usher_partition_drop (0025) looked at a partition's rows and then dropped
-- it: a rollup that was writing into an empty partition at that moment was
-- not seen (its rows not yet committed), the DROP waited for it and then
-- took its rows away with the table. A retention pass that created the
-- month of stray rollups (0037) and dropped it again while an analytics
-- worker folded more of them lost that month's counts (seen once in CI,
-- api_analytics, on a machine loaded by a benchmark beside it). Now the
-- drop takes the partition's ACCESS EXCLUSIVE lock first (within the pass's
-- lock_timeout, as before), so the writers in flight finish, and looks at
-- the rows afterwards; the writers after it wait for the drop and then
-- write to the DEFAULT partition, whose rows the next create moves.
CREATE OR REPLACE FUNCTION usher_partition_drop(p_parent text, p_before timestamptz,
                                                p_event_cutoff timestamptz DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    p record;
    live boolean;
    dropped integer := 0;
BEGIN
    PERFORM set_config('lock_timeout', '5s', true);
    FOR p IN SELECT * FROM usher_partitions(p_parent) WHERE hi <= p_before LOOP
        EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', p.name);
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
