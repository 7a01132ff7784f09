-- A registration batch's tickets and search entries in one job each (issue
-- 17 goal 4).
--
-- A sale wrote its registration and two job rows in its commit: its ticket
-- (pdf.ticket) and its search entry (index.document), each row with its
-- index entries. Session 17 measured what the job rows cost the database:
-- pgbench, 4 clients, usher_register_batch of 10 registrations as
-- usher-api sent them, 1.07-1.33x (median 1.10) more batches/s without the
-- index.document job at all, 1.38x with both jobs once a statement.
--
-- Now a job template with a "gather" member names a payload field: the
-- batch makes one job of that template for all of a ticket type's sales in
-- the statement, the field an array of their registration ids (in the
-- items' order), instead of one job a sale with the id in "id_field". A job
-- of one sale keeps its request id; a job of several has none of its own
-- and lists the sales' request ids in the payload's "request_ids" (a null
-- for a sale without one, in the same order), which usher-worker's line
-- for the job names and pdf.ticket gives each sale's email, so one grep
-- still follows a registration (issue 16). usher-api marks its ticket
-- template ("gather": "registration_ids") and the attendee's index.document
-- template ("gather": "ids"); their handlers take the lists as well as the
-- single ids (schemas/jobs/).
--
-- Elsewhere the member changes nothing: usher_register (the items with a
-- key, and a registration sent alone) and usher_template_payload read
-- "id_field" as before and ignore "gather", so an item's templates make
-- one job a sale there, and a usher-api from before sends no "gather".
-- Everything else is 0033's usher_register_batch.

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
    v_jobs jsonb[] := '{}';
    v_job_ids bigint[] := '{}';
    v_job_keys text[] := '{}';
    v_more_jobs jsonb[];
    v_more_ids bigint[];
    v_keyless integer := 0;
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

    -- The items without a key, a ticket type at a time, with their arrays.
    FOR k IN
        SELECT (i.item ->> 'event')::bigint AS event, (i.item ->> 'ticket_type')::bigint AS tt,
               array_agg((i.ord - 1)::integer ORDER BY i.ord) AS ords,
               array_agg(i.item ORDER BY i.ord) AS items
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i(item, ord)
        WHERE i.item ->> 'key' IS NULL
        GROUP BY 1, 2
        ORDER BY 2, 1
    LOOP
        v_keyless := v_keyless + cardinality(k.ords);
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
            FROM usher_take_seats(k.tt, cardinality(k.ords), NOT v_was_busy) s;
            IF v_busy AND coalesce(current_setting('usher.register_stripe', true), '') = '' THEN
                -- As in 0031: a keyed item's usher_register must not wait again.
                PERFORM set_config('usher.register_stripe', '0:0', true);
            END IF;
            v_was_busy := v_was_busy OR v_busy;
        END IF;
        v_was_cancelled := v_was_cancelled OR v_status = 'event_cancelled';

        -- The first v_got items are sold: their rows now, their jobs and
        -- webhooks with the statement's other jobs at the end.
        IF v_got > 0 THEN
            SELECT array_agg(nextval('registrations_id_seq') ORDER BY n) INTO v_ids
            FROM generate_series(1, v_got) n;
            INSERT INTO registrations (id, event_id, ticket_type_id, name, email, locale)
            OVERRIDING SYSTEM VALUE
            SELECT s.id, k.event, k.tt, s.item ->> 'name', s.item ->> 'email',
                   s.item ->> 'locale'
            FROM unnest(v_ids, k.items[1:v_got]) AS s(id, item);
            SELECT array_agg(e.j ORDER BY s.n, e.o), array_agg(s.id ORDER BY s.n, e.o)
            INTO v_more_jobs, v_more_ids
            FROM unnest(v_ids, k.items[1:v_got]) WITH ORDINALITY AS s(id, item, n),
                 jsonb_array_elements(coalesce(s.item -> 'jobs', '[]')) WITH ORDINALITY
                     AS e(j, o)
            WHERE NOT e.j ? 'gather';
            v_jobs := v_jobs || coalesce(v_more_jobs, '{}');
            v_job_ids := v_job_ids || coalesce(v_more_ids, '{}');
            v_job_keys := v_job_keys || array_fill('org:' || v_org,
                                                   ARRAY[coalesce(cardinality(v_more_jobs), 0)]);
            -- The gathered templates: one job each for the group's sales,
            -- their ids in its "gather" field (see the top).
            SELECT array_agg(t.job ORDER BY t.first) INTO v_more_jobs
            FROM (
                SELECT (tpl.j - 'gather' - 'id_field')
                       || jsonb_build_object('payload', coalesce(tpl.j -> 'payload', '{}')
                              || jsonb_build_object(tpl.j ->> 'gather',
                                                    jsonb_agg(s.id ORDER BY s.n))
                              || CASE WHEN count(*) > 1 AND count(e.j ->> 'request_id') > 0
                                      THEN jsonb_build_object('request_ids',
                                               jsonb_agg(e.j -> 'request_id' ORDER BY s.n))
                                      ELSE '{}' END)
                       || CASE WHEN count(*) = 1 AND max(e.j ->> 'request_id') IS NOT NULL
                               THEN jsonb_build_object('request_id', max(e.j ->> 'request_id'))
                               ELSE '{}' END AS job,
                       min(s.n) AS first
                FROM unnest(v_ids, k.items[1:v_got]) WITH ORDINALITY AS s(id, item, n),
                     jsonb_array_elements(coalesce(s.item -> 'jobs', '[]')) AS e(j),
                     LATERAL (SELECT e.j - 'request_id' AS j) tpl
                WHERE e.j ? 'gather'
                GROUP BY tpl.j
            ) t;
            IF v_more_jobs IS NOT NULL THEN
                v_jobs := v_jobs || v_more_jobs;
                v_job_ids := v_job_ids || array_fill(NULL::bigint, ARRAY[cardinality(v_more_jobs)]);
                v_job_keys := v_job_keys
                              || array_fill('org:' || v_org, ARRAY[cardinality(v_more_jobs)]);
            END IF;
            SELECT array_agg((s.item -> 'hook') || jsonb_build_object('payload',
                       jsonb_build_object('endpoint_id', w.id,
                                          'event', 'registration.created',
                                          'data', jsonb_build_object(
                                              'registration_id', s.id,
                                              'event_id', k.event,
                                              'ticket_type_id', k.tt)))
                             ORDER BY s.n, w.id)
            INTO v_more_jobs
            FROM unnest(v_ids, k.items[1:v_got]) WITH ORDINALITY AS s(id, item, n)
            JOIN webhook_endpoints w ON w.organizer_id = v_org
            WHERE jsonb_typeof(s.item -> 'hook') = 'object' AND w.enabled
              AND 'registration.created' = ANY (w.events);
            IF v_more_jobs IS NOT NULL THEN
                v_jobs := v_jobs || v_more_jobs;
                v_job_ids := v_job_ids || array_fill(NULL::bigint, ARRAY[cardinality(v_more_jobs)]);
                v_job_keys := v_job_keys
                              || array_fill('org:' || v_org, ARRAY[cardinality(v_more_jobs)]);
            END IF;
            v_sold := v_sold || k.items[1:v_got];
            v_sold_keys := v_sold_keys || array_fill('org:' || v_org, ARRAY[v_got]);
        END IF;
        RETURN QUERY
        SELECT k.ords[n], coalesce(v_status, CASE WHEN n <= v_got THEN 'confirmed'
                                                  WHEN v_busy THEN 'busy'
                                                  ELSE 'sold_out' END),
               CASE WHEN n <= v_got THEN v_ids[n] END, false
        FROM generate_series(1, cardinality(k.ords)) n;
    END LOOP;

    -- The items with a key, one by one, in the key's order (0029).
    IF v_keyless < jsonb_array_length(p_items) THEN
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
    END IF;

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

    -- As in 0032: one analytics job per distinct counted template, its count
    -- the batch's new sales, with the keyless sales' organizer key when it
    -- has one. They go in with the keyless sales' jobs and webhooks.
    IF cardinality(v_sold) > 0 THEN
        SELECT array_agg(t.job) INTO v_more_jobs
        FROM (
            SELECT j || jsonb_build_object('payload', coalesce(j -> 'payload', '{}')
                                                      || jsonb_build_object('count', count(*)))
                     || CASE WHEN j ? 'partition_key' OR max(a.key) IS NULL THEN '{}'
                             ELSE jsonb_build_object('partition_key', max(a.key)) END AS job
            FROM unnest(v_sold, v_sold_keys) a(item, key),
                 jsonb_array_elements(coalesce(a.item -> 'counted', '[]')) j
            GROUP BY j
        ) t;
        v_jobs := v_jobs || coalesce(v_more_jobs, '{}');
    END IF;
    IF cardinality(v_jobs) > 0 THEN
        PERFORM usher_enqueue_rows(v_jobs, v_job_ids, NULL, v_job_keys);
    END IF;
END $$;
