-- One owner for the writes of usher_jobs, SQL side.
--
-- A job is born in one of two places, and both apply the same rules:
--   * engine/enqueue.c (usher_enqueue, usher_enqueue_batch): every C caller,
--     i.e. usherctl, periodic jobs, handlers that chain jobs, webhook replay,
--     benchmarks. Its batch statement calls usher_enqueue_templates below;
--     its two single-job statements keep their own INSERT (measured faster,
--     see engine/enqueue.c) with the same conflict and run_at rules.
--   * usher_enqueue_templates below, for the statements that enqueue inside
--     their own transaction: registrations, check-ins (usher_checkin_batch),
--     cancellations, webhooks (usher_enqueue_webhooks), content and event
--     changes, reports (platform/report.c). Their templates are built by
--     usher_enqueue_template() in C, which fills in the kind's queue,
--     priority, attempts and timeout from the config.
--
-- The rules:
--   * a unique key is held by at most one live (available or running) job;
--     inserting a second one skips the row (usher_jobs_unique);
--   * run_at is run_at_us (microseconds since the epoch) when set, else
--     now() + delay_ms (none: now());
--   * claimers are woken by a NOTIFY on usher_wake_channel(queue): inside
--     the enqueue's statement by engine/enqueue.c (at most once per queue
--     and notify_debounce_ms), after the commit by usher-api
--     (api/wake_after_commit.c, through usher_wake()), since a NOTIFY in a
--     transaction serialises every commit that sends one.
--
-- Claims, heartbeats, completions, failures, retries, cancellations and
-- pruning are the engine's statements (engine/claim.c, fate.c, admin.c,
-- maint.c, job_progress.c); nothing else updates or deletes jobs.

-- A queue's NOTIFY channel. engine/wake.h's USHER_WAKE_PREFIX is the same
-- prefix for C (LISTEN); test_enqueue checks that they agree.
CREATE FUNCTION usher_wake_channel(p_queue text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 'usher:' || p_queue
$$;

-- Wakes the claimers of each queue; returns how many queues it notified.
CREATE FUNCTION usher_wake(p_queues text[]) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    RETURN (SELECT count(pg_notify(usher_wake_channel(q), '')) FROM unnest(p_queues) q);
END $$;

-- The one INSERT of jobs. p_jobs is a JSON array of templates {queue, kind,
-- priority, max_attempts, timeout_ms, payload?, id_field?, at_field?,
-- unique_key?, run_at_us?, delay_ms?}: usher_template_payload sets id_field
-- (if any) of the payload to p_id and at_field to the transaction's time.
-- Returns the new jobs in input order, without the ones skipped for a live
-- unique key. PL/pgSQL so its plan is cached per connection (a LANGUAGE sql
-- function called from PL/pgSQL is planned again on every call: 0009). It
-- replaces 0009's function of the same name (which returned nothing), so
-- usher_register and the other callers insert through it without one more
-- call in between.
DROP FUNCTION usher_enqueue_templates(jsonb, bigint);

CREATE FUNCTION usher_enqueue_templates(p_jobs jsonb, p_id bigint DEFAULT NULL)
RETURNS TABLE (id bigint, queue text, unique_key text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    INSERT INTO usher_jobs AS u (queue, kind, priority, payload, max_attempts, timeout_ms,
                                 run_at, unique_key)
    SELECT j ->> 'queue', j ->> 'kind', (j ->> 'priority')::int2,
           usher_template_payload(j, p_id),
           (j ->> 'max_attempts')::int4, (j ->> 'timeout_ms')::int4,
           CASE WHEN j ->> 'run_at_us' IS NOT NULL
                THEN 'epoch'::timestamptz + (j ->> 'run_at_us')::int8 * interval '1 microsecond'
                ELSE now() + coalesce((j ->> 'delay_ms')::int8, 0) * interval '1 millisecond'
           END,
           j ->> 'unique_key'
    FROM jsonb_array_elements(p_jobs) WITH ORDINALITY AS e(j, o)
    ORDER BY o
    ON CONFLICT (queue, unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING
    RETURNING u.id, u.queue, u.unique_key;
END $$;

-- The notify.webhook template p_hook once per enabled endpoint of the
-- event's organizer that subscribed to p_name, with payload {endpoint_id,
-- event, data}.
CREATE OR REPLACE FUNCTION usher_enqueue_webhooks(p_hook jsonb, p_event bigint, p_name text,
                                                  p_data jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_hook IS NULL THEN
        RETURN;
    END IF;
    PERFORM usher_enqueue_templates(jsonb_agg(p_hook || jsonb_build_object('payload',
                jsonb_build_object('endpoint_id', w.id, 'event', p_name, 'data', p_data))), NULL)
    FROM events e JOIN webhook_endpoints w ON w.organizer_id = e.organizer_id
    WHERE e.id = p_event AND w.enabled AND p_name = ANY (w.events);
END $$;

-- As in 0009, with the batch's jobs enqueued by one usher_enqueue_templates
-- call: each template of an admitted item's "jobs" once per admission (its
-- id_field the registration), each distinct template of "counted" once with
-- the number of admissions that carried it as its payload's "count", and
-- p_hook once per admission and subscribed endpoint.
CREATE OR REPLACE FUNCTION usher_checkin_batch(p_items jsonb, p_hook jsonb)
RETURNS TABLE (idx integer, result text, first_at timestamptz, first_gate text)
LANGUAGE plpgsql AS $$
DECLARE
    v record;
    c record;
    v_admitted jsonb[] := '{}';
BEGIN
    FOR v IN
        SELECT (i.ord - 1)::integer AS ord, i.item
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i(item, ord)
        ORDER BY (i.item ->> 'registration')::bigint, i.ord
    LOOP
        SELECT * INTO c
        FROM usher_checkin((v.item ->> 'event')::bigint, (v.item ->> 'registration')::bigint,
                           (v.item ->> 'scope_org')::bigint, (v.item ->> 'scope_event')::bigint,
                           coalesce(v.item ->> 'gate', ''), v.item ->> 'nonce');
        IF c.admitted THEN
            v_admitted := v_admitted || v.item;
        END IF;
        idx := v.ord;
        result := c.result;
        first_at := c.first_at;
        first_gate := c.first_gate;
        RETURN NEXT;
    END LOOP;
    IF cardinality(v_admitted) = 0 THEN
        RETURN;
    END IF;

    PERFORM usher_enqueue_templates(jsonb_agg(t.job ORDER BY t.part, t.ord), NULL)
    FROM (
        SELECT 1 AS part, row_number() OVER () AS ord,
               (j - 'id_field' - 'at_field')
                   || jsonb_build_object('payload',
                          usher_template_payload(j, (a ->> 'registration')::bigint)) AS job
        FROM unnest(v_admitted) a, jsonb_array_elements(coalesce(a -> 'jobs', '[]')) j
        UNION ALL
        SELECT 2, row_number() OVER (),
               (j - 'id_field' - 'at_field')
                   || jsonb_build_object('payload',
                          usher_template_payload(j, NULL) || jsonb_build_object('count', count(*)))
        FROM unnest(v_admitted) a, jsonb_array_elements(coalesce(a -> 'counted', '[]')) j
        GROUP BY j
        UNION ALL
        SELECT 3, row_number() OVER (),
               p_hook || jsonb_build_object('payload',
                   jsonb_build_object('endpoint_id', w.id, 'event', 'checkin.created',
                                      'data', jsonb_build_object(
                                          'registration_id', (a ->> 'registration')::bigint,
                                          'event_id', (a ->> 'event')::bigint,
                                          'gate', coalesce(a ->> 'gate', ''))))
        FROM unnest(v_admitted) a
        JOIN events e ON e.id = (a ->> 'event')::bigint
        JOIN webhook_endpoints w ON w.organizer_id = e.organizer_id
        WHERE p_hook IS NOT NULL AND w.enabled AND 'checkin.created' = ANY (w.events)
    ) t;
END $$;
