-- usher_register_batch (0031) spends less database time per registration
-- (issue 17 goal 4). Measured on the benchmark's database, one session,
-- batches of 32 keyless registrations (pg_stat_user_functions with
-- track_functions = 'all', perf on the backend), per batch of ~7 ms:
--
-- * usher_templates_keyed, LANGUAGE sql called from PL/pgSQL, is parsed
--   and planned on every call: 0.75 ms a call, two calls a batch (the
--   jobs' and the webhooks', the latter with no endpoint at all), about a
--   fifth of the batch; the planner was a tenth of the backend's samples.
-- * jsonb_agg built each batch's jobs into one jsonb array (9% of the
--   samples: every item is decoded and encoded again), which
--   usher_enqueue_templates then took apart with jsonb_array_elements.
-- * usher_registration_event_open, a PL/pgSQL trigger FOR EACH ROW, ran
--   two queries per registration to lock and read the same event row, and
--   0021's locale trigger was called for every row of a batch to do nothing.
-- * The planner again: PL/pgSQL keeps a custom plan per call when its
--   estimate for the call's values beats the generic one (generate_series
--   up to v_got, the items' arrays), which it did for most of the batch's
--   statements. With plan_cache_mode = force_generic_plan the same batch of
--   32 took 3.3 ms instead of 4.1 ms (4 items: 1.4 ms against 2.5 ms).
--
-- So:
--
-- * usher_enqueue_rows(jobs jsonb[], ids bigint[], key text) is 0026's
--   INSERT of usher_enqueue_templates over arrays (array_agg copies, no
--   jsonb re-encoding), each template's id_field taken from ids (the row
--   beside it) and its partition key defaulting to key (as
--   usher_templates_keyed gave it); usher_enqueue_templates is now that
--   call, so the INSERT and its rules stay in one place.
-- * usher_register_batch writes a ticket type's jobs, webhooks and the
--   batch's analytics job through it, each aggregate skipped when empty.
-- * usher_register_batch plans generically (as usher_claim does, 0020),
--   and so do the functions and triggers it calls.
-- * usher_templates_keyed is PL/pgSQL: its plan is cached per connection
--   (usher_register's keyed items still use it).
-- * The event-open check runs once per statement (AFTER INSERT FOR EACH
--   STATEMENT with the new rows), locking each distinct event FOR KEY
--   SHARE with the condition as 0022 did per row. The race of 0022 is
--   unchanged: a cancellation takes the row FOR UPDATE, so an insert
--   either locks the event before it (and the cancellation waits for its
--   commit) or waits for the cancellation's commit and is refused (UE410);
--   the error now comes after the statement's rows, which it rolls back
--   with them.

CREATE FUNCTION usher_enqueue_rows(p_jobs jsonb[], p_ids bigint[], p_key text)
RETURNS TABLE (id bigint, queue text, unique_key text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    INSERT INTO usher_jobs AS u (queue, kind, priority, payload, max_attempts, timeout_ms,
                                 run_at, unique_key, request_id, partition_key, deadline,
                                 parent_id)
    SELECT j ->> 'queue', j ->> 'kind', (j ->> 'priority')::int2,
           usher_template_payload(j, e.rid),
           (j ->> 'max_attempts')::int4, (j ->> 'timeout_ms')::int4,
           CASE WHEN j ->> 'run_at_us' IS NOT NULL
                THEN 'epoch'::timestamptz + (j ->> 'run_at_us')::int8 * interval '1 microsecond'
                ELSE now() + coalesce((j ->> 'delay_ms')::int8, 0) * interval '1 millisecond'
           END,
           j ->> 'unique_key', j ->> 'request_id',
           CASE WHEN j ? 'partition_key' THEN coalesce(j ->> 'partition_key', '')
                ELSE coalesce(p_key, '') END,
           now() + (j ->> 'deadline_ms')::int8 * interval '1 millisecond',
           (j ->> 'parent_id')::int8
    FROM unnest(p_jobs, p_ids) WITH ORDINALITY AS e(j, rid, o)
    ORDER BY o
    ON CONFLICT (queue, unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING
    RETURNING u.id, u.queue, u.unique_key;
END $$;

CREATE OR REPLACE FUNCTION usher_enqueue_templates(p_jobs jsonb, p_id bigint DEFAULT NULL)
RETURNS TABLE (id bigint, queue text, unique_key text)
LANGUAGE plpgsql AS $$
DECLARE
    v_jobs jsonb[];
    v_ids bigint[];
BEGIN
    SELECT array_agg(e.j ORDER BY e.o), array_agg(p_id ORDER BY e.o) INTO v_jobs, v_ids
    FROM jsonb_array_elements(p_jobs) WITH ORDINALITY AS e(j, o);
    RETURN QUERY SELECT * FROM usher_enqueue_rows(v_jobs, v_ids, NULL);
END $$;

CREATE OR REPLACE FUNCTION usher_templates_keyed(p_jobs jsonb, p_key text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(CASE WHEN j ? 'partition_key' THEN j
                                           ELSE j || jsonb_build_object('partition_key', p_key)
                                      END ORDER BY o), '[]')
            FROM jsonb_array_elements(p_jobs) WITH ORDINALITY AS e(j, o));
END $$;

DROP TRIGGER registrations_event_open ON registrations;
DROP FUNCTION usher_registration_event_open();
CREATE FUNCTION usher_registrations_events_open() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_event bigint;
BEGIN
    PERFORM 1 FROM events e
    WHERE e.id IN (SELECT n.event_id FROM new_rows n) AND e.cancelled_at IS NULL
    ORDER BY e.id
    FOR KEY SHARE OF e;
    SELECT e.id INTO v_event FROM events e
    WHERE e.id IN (SELECT n.event_id FROM new_rows n) AND e.cancelled_at IS NOT NULL
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'event % is cancelled', v_event USING ERRCODE = 'UE410';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER registrations_events_open AFTER INSERT ON registrations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usher_registrations_events_open();

-- 0021's locale trigger only when it has a locale to write: the WHEN
-- clause is checked without calling PL/pgSQL, and a row that has a locale
-- or a transaction that set none (every row of a batch) skips the call.
DROP TRIGGER registrations_locale ON registrations;
CREATE TRIGGER registrations_locale BEFORE INSERT ON registrations
    FOR EACH ROW
    WHEN (NEW.locale IS NULL AND current_setting('usher.registration_locale', true) <> '')
    EXECUTE FUNCTION usher_registration_locale();

CREATE OR REPLACE FUNCTION usher_register_batch(p_items jsonb)
RETURNS TABLE (idx integer, status text, registration_id bigint, replayed boolean)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v record;
    g record;
    k record;
    v_sold jsonb[] := '{}';
    v_sold_keys text[] := '{}';
    v_ords integer[];
    v_items jsonb[];
    v_ids bigint[];
    v_got integer;
    v_busy boolean;
    v_was_busy boolean := false;
    v_was_cancelled boolean := false;
    v_org bigint;
    v_cancelled boolean;
    v_open boolean;
    v_status text;
BEGIN
    PERFORM set_config('usher.register_batch', 'on', true);

    -- The items without a key, a ticket type at a time.
    FOR k IN
        SELECT (i.item ->> 'event')::bigint AS event, (i.item ->> 'ticket_type')::bigint AS tt
        FROM jsonb_array_elements(p_items) i(item)
        WHERE i.item ->> 'key' IS NULL
        GROUP BY 1, 2
        ORDER BY 2, 1
    LOOP
        SELECT array_agg((i.ord - 1)::integer ORDER BY i.ord), array_agg(i.item ORDER BY i.ord)
        INTO v_ords, v_items
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i(item, ord)
        WHERE i.item ->> 'key' IS NULL AND (i.item ->> 'event')::bigint = k.event
          AND (i.item ->> 'ticket_type')::bigint = k.tt;
        v_org := NULL;
        v_open := NULL;
        v_got := 0;
        v_busy := false;
        SELECT e.organizer_id, e.cancelled_at IS NOT NULL, t.sales_open
        INTO v_org, v_cancelled, v_open
        FROM events e LEFT JOIN ticket_types t ON t.id = k.tt AND t.event_id = e.id
        WHERE e.id = k.event;
        v_status := CASE WHEN v_org IS NULL THEN 'unknown_event'
                         WHEN v_open IS NULL THEN 'unknown_ticket_type'
                         WHEN NOT v_open THEN 'sales_closed'
                         WHEN v_cancelled THEN 'event_cancelled' END;
        IF v_status IS NULL THEN
            SELECT s.got, s.busy INTO v_got, v_busy
            FROM usher_take_seats(k.tt, cardinality(v_ords), NOT v_was_busy) s;
            IF v_busy AND coalesce(current_setting('usher.register_stripe', true), '') = '' THEN
                -- As in 0031: a keyed item's usher_register must not wait again.
                PERFORM set_config('usher.register_stripe', '0:0', true);
            END IF;
            v_was_busy := v_was_busy OR v_busy;
        END IF;
        v_was_cancelled := v_was_cancelled OR v_status = 'event_cancelled';

        -- The first v_got items are sold: their rows, jobs and webhooks, a statement each.
        IF v_got > 0 THEN
            SELECT array_agg(nextval('registrations_id_seq') ORDER BY n) INTO v_ids
            FROM generate_series(1, v_got) n;
            INSERT INTO registrations (id, event_id, ticket_type_id, name, email, locale)
            OVERRIDING SYSTEM VALUE
            SELECT v_ids[n], k.event, k.tt, v_items[n] ->> 'name', v_items[n] ->> 'email',
                   v_items[n] ->> 'locale'
            FROM generate_series(1, v_got) n;
            PERFORM usher_enqueue_rows(array_agg(e.j ORDER BY n, e.o),
                                       array_agg(v_ids[n] ORDER BY n, e.o), 'org:' || v_org)
            FROM generate_series(1, v_got) n,
                 jsonb_array_elements(coalesce(v_items[n] -> 'jobs', '[]')) WITH ORDINALITY
                     AS e(j, o)
            HAVING count(*) > 0;
            PERFORM usher_enqueue_rows(
                        array_agg((v_items[n] -> 'hook') || jsonb_build_object('payload',
                            jsonb_build_object('endpoint_id', w.id,
                                               'event', 'registration.created',
                                               'data', jsonb_build_object(
                                                   'registration_id', v_ids[n],
                                                   'event_id', k.event,
                                                   'ticket_type_id', k.tt)))
                                  ORDER BY n, w.id),
                        NULL, 'org:' || v_org)
            FROM generate_series(1, v_got) n
            JOIN webhook_endpoints w ON w.organizer_id = v_org
            WHERE jsonb_typeof(v_items[n] -> 'hook') = 'object' AND w.enabled
              AND 'registration.created' = ANY (w.events)
            HAVING count(*) > 0;
            v_sold := v_sold || v_items[1:v_got];
            v_sold_keys := v_sold_keys || array_fill('org:' || v_org, ARRAY[v_got]);
        END IF;
        RETURN QUERY
        SELECT v_ords[n], coalesce(v_status, CASE WHEN n <= v_got THEN 'confirmed'
                                                  WHEN v_busy THEN 'busy'
                                                  ELSE 'sold_out' END),
               CASE WHEN n <= v_got THEN v_ids[n] END, false
        FROM generate_series(1, cardinality(v_ords)) n;
    END LOOP;

    -- The items with a key, one by one, in the key's order (0029).
    FOR v IN
        SELECT (i.ord - 1)::integer AS ord, i.item, e.cancelled_at IS NOT NULL AS cancelled
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i(item, ord)
        LEFT JOIN events e ON e.id = (i.item ->> 'event')::bigint
        WHERE i.item ->> 'key' IS NOT NULL
        ORDER BY i.item ->> 'scope', i.item ->> 'key', i.ord
    LOOP
        IF v.cancelled THEN
            -- As in 0031: the key's replay, or event_cancelled with nothing taken.
            SELECT CASE WHEN i.request_hash = v.item ->> 'hash' THEN i.status
                        ELSE 'idempotency_key_reused' END AS status,
                   CASE WHEN i.request_hash = v.item ->> 'hash' THEN i.registration_id END
                       AS registration_id,
                   true AS replayed
            INTO g
            FROM api_idempotency i
            WHERE i.scope = v.item ->> 'scope' AND i.key = v.item ->> 'key';
            IF NOT FOUND THEN
                SELECT 'event_cancelled' AS status, NULL::bigint AS registration_id,
                       false AS replayed INTO g;
                v_was_cancelled := true;
            END IF;
        ELSE
            SELECT * INTO g FROM usher_register_item(v.item);
        END IF;
        IF g.status = 'confirmed' AND NOT g.replayed THEN
            v_sold := v_sold || v.item;
            v_sold_keys := v_sold_keys || NULL::text;
        END IF;
        idx := v.ord;
        status := g.status;
        registration_id := g.registration_id;
        replayed := g.replayed;
        RETURN NEXT;
    END LOOP;

    -- As in 0031: a usher-api from before 0031 (no "v": 2) gets 0030's answers.
    IF coalesce((p_items -> 0 ->> 'v')::integer, 1) < 2 THEN
        IF v_was_cancelled THEN
            RAISE EXCEPTION 'a registration of the batch is for a cancelled event'
                USING ERRCODE = 'UE410';
        ELSIF v_was_busy THEN
            RAISE EXCEPTION 'every stripe with seats of a ticket type is taken'
                USING ERRCODE = 'UE503',
                      HINT = 'a batch does not wait: send its registrations alone';
        END IF;
    END IF;

    -- One analytics job per distinct counted template, its count the batch's
    -- new sales. A template names its event, so its sales share an organizer:
    -- a keyless sale's key spares 0024's trigger its lookups; with only keyed
    -- sales (no key here) the trigger finds it.
    PERFORM usher_enqueue_rows(array_agg(t.job), NULL, NULL)
    FROM (
        SELECT j || jsonb_build_object('payload', coalesce(j -> 'payload', '{}')
                                                  || jsonb_build_object('count', count(*)))
                 || CASE WHEN j ? 'partition_key' OR max(a.key) IS NULL THEN '{}'
                         ELSE jsonb_build_object('partition_key', max(a.key)) END AS job
        FROM unnest(v_sold, v_sold_keys) a(item, key),
             jsonb_array_elements(coalesce(a.item -> 'counted', '[]')) j
        GROUP BY j
    ) t
    HAVING count(*) > 0;
END $$;
