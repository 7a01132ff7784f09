-- An event's analytics for its organizer (issue 15): GET
-- /v1/events/{id}/analytics reads the per-minute rollups of
-- analytics_minute in buckets of the event's local time. The rollups now
-- also count cancellations, and check-ins per gate.

ALTER TABLE analytics_minute DROP CONSTRAINT analytics_minute_metric_check;
ALTER TABLE analytics_minute ADD CONSTRAINT analytics_minute_metric_check
    CHECK (metric IN ('registration', 'cancellation', 'checkin', 'session_access'));
-- The door a check-in was made at ('' when the scanner named none, and for
-- the other metrics).
ALTER TABLE analytics_minute ADD COLUMN gate text NOT NULL DEFAULT '';
ALTER TABLE analytics_minute DROP CONSTRAINT analytics_minute_pkey,
    ADD PRIMARY KEY (event_id, minute, metric, gate);

-- As in 0010, and a template of p_jobs with "event_field" gets the event's
-- id in that payload field (an analytics.rollup cancellation counted for
-- its event).
CREATE OR REPLACE FUNCTION usher_cancel_registration(p_registration bigint, p_scope_org bigint,
                                                     p_jobs jsonb, p_hook jsonb,
                                                     OUT status text, OUT event_id bigint,
                                                     OUT sessions bigint[])
LANGUAGE plpgsql AS $$
DECLARE
    v_status usher_registration_status;
    v_ticket_type bigint;
    v_stripe smallint;
    v_jobs jsonb;
BEGIN
    SELECT r.status, r.event_id, r.ticket_type_id INTO v_status, event_id, v_ticket_type
    FROM registrations r JOIN events e ON e.id = r.event_id
    WHERE r.id = p_registration AND (p_scope_org IS NULL OR e.organizer_id = p_scope_org)
    FOR NO KEY UPDATE OF r; -- check-ins' KEY SHARE on the row goes on meanwhile
    IF NOT FOUND THEN
        status := 'not_found';
        event_id := NULL;
        RETURN;
    END IF;
    sessions := ARRAY(SELECT s.id FROM sessions s WHERE s.event_id = usher_cancel_registration.event_id
                      ORDER BY s.id);
    IF v_status = 'cancelled' THEN
        status := 'already_cancelled';
        RETURN;
    END IF;

    UPDATE registrations r SET status = 'cancelled' WHERE r.id = p_registration;
    -- The seat back on any stripe that sold one. Like usher_register, never
    -- wait on a stripe's lock (a sale holds it until its commit): take a
    -- free one, or look again shortly.
    LOOP
        SELECT s.stripe INTO v_stripe FROM ticket_stripes s
        WHERE s.ticket_type_id = v_ticket_type AND s.sold > 0
        ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED;
        EXIT WHEN FOUND;
        PERFORM 1 FROM ticket_stripes s WHERE s.ticket_type_id = v_ticket_type AND s.sold > 0;
        IF NOT FOUND THEN
            v_stripe := NULL; -- nothing counted as sold: nothing to give back
            EXIT;
        END IF;
        PERFORM pg_sleep(0.0005);
    END LOOP;
    IF v_stripe IS NOT NULL THEN
        UPDATE ticket_stripes s SET sold = s.sold - 1
        WHERE s.ticket_type_id = v_ticket_type AND s.stripe = v_stripe;
    END IF;
    v_jobs := (SELECT coalesce(jsonb_agg(CASE WHEN j ? 'event_field'
                   THEN (j - 'event_field') || jsonb_build_object('payload',
                        coalesce(j -> 'payload', '{}') || jsonb_build_object(j ->> 'event_field',
                                                                             event_id))
                   ELSE j END ORDER BY o), '[]')
               FROM jsonb_array_elements(p_jobs) WITH ORDINALITY AS t(j, o));
    PERFORM usher_enqueue_templates(v_jobs, p_registration);
    PERFORM usher_enqueue_webhooks(p_hook, event_id, 'registration.cancelled',
        jsonb_build_object('registration_id', p_registration, 'event_id', event_id,
                           'ticket_type_id', v_ticket_type));
    status := 'cancelled';
END $$;

-- p_at in the time zone p_tz as RFC 3339 with that zone's offset then,
-- e.g. 2026-03-29T00:00:00+01:00.
CREATE FUNCTION usher_local_time_text(p_at timestamptz, p_tz text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE p_tz, 'YYYY-MM-DD"T"HH24:MI:SS')
           || CASE WHEN o.s < 0 THEN '-' ELSE '+' END
           || lpad((abs(o.s) / 3600)::text, 2, '0') || ':'
           || lpad((abs(o.s) % 3600 / 60)::text, 2, '0')
    FROM (SELECT extract(epoch FROM (p_at AT TIME ZONE p_tz) - (p_at AT TIME ZONE 'UTC'))::int
                 AS s) o;
$$;

-- The analytics of event p_event from p_from to p_to in steps of p_step
-- ('minute', 'hour' or 'day') of the event's local time, as
-- "ORGANIZER_ID JSON" (the caller checks the organizer before it answers
-- the JSON); NULL when there is no such event. The buckets are whole: the
-- first holds p_from, the last the instant before p_to; a day is the
-- event's local day (23 or 25 hours across a DST change), an hour starts
-- at a local full hour. Each bucket counts sales (registrations),
-- cancellations, check-ins in all and per gate, and session accesses;
-- every bucket is listed, empty ones with zeros.
CREATE FUNCTION usher_event_analytics(p_event bigint, p_from timestamptz, p_to timestamptz,
                                      p_step text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_tz text;
    v_org bigint;
    v_step interval := CASE p_step WHEN 'minute' THEN interval '1 minute'
                                   WHEN 'hour' THEN interval '1 hour' END;
    v_first timestamptz;
    v_local timestamp;
    v_out json;
BEGIN
    SELECT e.timezone, e.organizer_id INTO v_tz, v_org FROM events e WHERE e.id = p_event;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_local := p_from AT TIME ZONE v_tz;
    -- The first bucket's start, in absolute time (no local time is ambiguous there).
    v_first := CASE p_step
        WHEN 'minute' THEN date_trunc('minute', p_from)
        WHEN 'hour' THEN p_from - (v_local - date_trunc('hour', v_local))
        ELSE date_trunc('day', v_local) AT TIME ZONE v_tz END;
    WITH starts AS (
        SELECT s AS start FROM generate_series(v_first, p_to, v_step) s
        WHERE p_step <> 'day' AND s < p_to
        UNION ALL
        SELECT d::timestamp AT TIME ZONE v_tz
        FROM generate_series(date_trunc('day', v_local), (p_to AT TIME ZONE v_tz) + interval '1 day',
                             interval '1 day') d
        WHERE p_step = 'day' AND d::timestamp AT TIME ZONE v_tz < p_to),
    buckets AS (
        SELECT start, coalesce(lead(start) OVER (ORDER BY start),
                               CASE WHEN p_step = 'day'
                                    THEN ((start AT TIME ZONE v_tz) + interval '1 day') AT TIME ZONE v_tz
                                    ELSE start + v_step END) AS stop
        FROM starts),
    span AS (SELECT min(start) AS lo, max(stop) AS hi FROM buckets),
    -- Each minute's bucket by arithmetic, as the starts were made.
    counted AS (
        SELECT CASE WHEN p_step = 'day'
                    THEN date_trunc('day', a.minute AT TIME ZONE v_tz) AT TIME ZONE v_tz
                    ELSE date_bin(v_step, a.minute, v_first) END AS start,
               a.metric, a.gate, sum(a.count)::bigint AS n
        FROM analytics_minute a, span
        WHERE a.event_id = p_event AND a.minute >= span.lo AND a.minute < span.hi
        GROUP BY 1, a.metric, a.gate),
    per_bucket AS (
        SELECT b.start,
               coalesce(sum(r.n) FILTER (WHERE r.metric = 'registration'), 0) AS sales,
               coalesce(sum(r.n) FILTER (WHERE r.metric = 'cancellation'), 0) AS cancellations,
               coalesce(sum(r.n) FILTER (WHERE r.metric = 'checkin'), 0) AS checkins,
               coalesce(json_object_agg(r.gate, r.n ORDER BY r.gate)
                        FILTER (WHERE r.metric = 'checkin'), '{}') AS gates,
               coalesce(sum(r.n) FILTER (WHERE r.metric = 'session_access'), 0) AS accesses
        FROM buckets b LEFT JOIN counted r ON r.start = b.start
        GROUP BY b.start),
    gate_totals AS (
        SELECT coalesce(json_object_agg(g.gate, g.n ORDER BY g.gate), '{}') AS gates
        FROM (SELECT gate, sum(n)::bigint AS n FROM counted WHERE metric = 'checkin' GROUP BY gate) g)
    SELECT json_build_object(
        'event_id', p_event, 'organizer_id', v_org, 'timezone', v_tz, 'step', p_step,
        'from', usher_local_time_text((SELECT lo FROM span), v_tz),
        'to', usher_local_time_text((SELECT hi FROM span), v_tz),
        'totals', json_build_object(
            'sales', coalesce(sum(p.sales), 0), 'cancellations', coalesce(sum(p.cancellations), 0),
            'checkins', coalesce(sum(p.checkins), 0), 'checkins_by_gate', (SELECT gates FROM gate_totals),
            'session_accesses', coalesce(sum(p.accesses), 0)),
        'buckets', coalesce(json_agg(json_build_object(
            'start', usher_local_time_text(p.start, v_tz), 'sales', p.sales,
            'cancellations', p.cancellations, 'checkins', p.checkins,
            'checkins_by_gate', p.gates, 'session_accesses', p.accesses) ORDER BY p.start), '[]'))
    INTO v_out FROM per_bucket p;
    RETURN v_org::text || ' ' || v_out::text;
END $$;
