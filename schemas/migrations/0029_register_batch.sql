-- Registrations gathered per loop turn (api/loop_batch.c, issue 17 goal 4):
-- usher-api sends the registrations one loop thread read in one turn (64 at
-- most) as one statement and one commit, as it does check-ins.
--
-- usher_register_batch(p_items) registers each item with usher_register()
-- (0021's 10-argument form) in the order of its Idempotency-Key, so two
-- batches that share keys take their rows in the same order, and returns a
-- row per item: idx (its index in p_items), status, registration_id,
-- replayed. An item is {event, ticket_type, name, email, jobs, counted,
-- scope, key, hash, hook, locale}: jobs are its own templates (ticket,
-- search entry), counted the analytics job that one job per distinct
-- template folds, with the number of the batch's new sales as its count.
-- An error rolls the whole batch back; usher-api then sends each item
-- alone (usher_register), so one item's error is its own.
--
-- A batch that holds a stripe never waits for another: it keeps the
-- stripes of its earlier items until it commits, so two batches waiting
-- for each other's stripes would wait forever (the wait is a sleep loop,
-- which the deadlock detector cannot see). When every stripe with seats is
-- locked by another transaction, usher_register raises UE503 in such a
-- batch (usher.register_batch, transaction-local); its items then go
-- alone. A registration whose transaction holds no stripe (a lone one, or
-- a batch's first sale) waits as before, but for 2 s at most (UE503 then;
-- alone, the client hears 503 and retries): what it holds (an
-- Idempotency-Key) may be what a stripe's holder waits for, and the bound
-- ends such a wait.
CREATE FUNCTION usher_register_batch(p_items jsonb)
RETURNS TABLE (idx integer, status text, registration_id bigint, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v record;
    g record;
    v_sold jsonb[] := '{}';
BEGIN
    PERFORM set_config('usher.register_batch', 'on', true);
    FOR v IN
        SELECT (i.ord - 1)::integer AS ord, i.item
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i(item, ord)
        ORDER BY i.item ->> 'scope', i.item ->> 'key', i.ord
    LOOP
        SELECT * INTO g
        FROM usher_register((v.item ->> 'event')::bigint, (v.item ->> 'ticket_type')::bigint,
                            v.item ->> 'name', v.item ->> 'email', v.item -> 'jobs',
                            v.item ->> 'scope', v.item ->> 'key', v.item ->> 'hash',
                            v.item -> 'hook', v.item ->> 'locale') r;
        IF g.status = 'confirmed' AND NOT g.replayed THEN
            v_sold := v_sold || v.item;
        END IF;
        idx := v.ord;
        status := g.status;
        registration_id := g.registration_id;
        replayed := g.replayed;
        RETURN NEXT;
    END LOOP;
    IF cardinality(v_sold) = 0 THEN
        RETURN;
    END IF;
    PERFORM usher_enqueue_templates(jsonb_agg(t.job), NULL)
    FROM (
        SELECT (j - 'id_field' - 'at_field')
                   || jsonb_build_object('payload',
                          usher_template_payload(j, NULL) || jsonb_build_object('count', count(*)))
                   AS job
        FROM unnest(v_sold) a, jsonb_array_elements(coalesce(a -> 'counted', '[]')) j
        GROUP BY j
    ) t;
END $$;

-- p_jobs, each template without a partition key given p_key: a caller
-- that knows whose jobs they are spares 0024's trigger its lookups (a
-- quarter of a registration's database time, measured).
CREATE FUNCTION usher_templates_keyed(p_jobs jsonb, p_key text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_agg(CASE WHEN j ? 'partition_key' THEN j
                                   ELSE j || jsonb_build_object('partition_key', p_key) END
                              ORDER BY o), '[]')
    FROM jsonb_array_elements(p_jobs) WITH ORDINALITY AS e(j, o)
$$;

-- As in 0014, and its jobs carry the event's organizer as their partition
-- key (usher_templates_keyed), and in a batch a registration does not wait for a stripe
-- (above), and a registration prefers the stripe its transaction took
-- last for the same ticket type (usher.register_stripe, transaction-local):
-- a batch of 64 sales into one ticket type then holds one stripe or a few
-- until its commit, not every stripe, so the other loops' batches still
-- find free ones instead of waiting for the commit.
CREATE OR REPLACE FUNCTION usher_register(p_event bigint, p_ticket_type bigint, p_name text,
                                          p_email text, p_jobs jsonb, p_idem_scope text,
                                          p_idem_key text, p_request_hash text, p_hook jsonb,
                                          OUT status text, OUT registration_id bigint,
                                          OUT replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_stripe smallint;
    v_open boolean;
    v_last text := current_setting('usher.register_stripe', true);
    v_mine smallint;
    v_waited integer := 0;
    v_org bigint;
BEGIN
    replayed := false;
    IF p_idem_key IS NOT NULL THEN
        INSERT INTO api_idempotency (scope, key, request_hash)
            VALUES (p_idem_scope, p_idem_key, p_request_hash) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT CASE WHEN i.request_hash = p_request_hash THEN i.status
                        ELSE 'idempotency_key_reused' END,
                   CASE WHEN i.request_hash = p_request_hash THEN i.registration_id END
            INTO status, registration_id
            FROM api_idempotency i WHERE i.scope = p_idem_scope AND i.key = p_idem_key;
            replayed := true;
            RETURN;
        END IF;
    END IF;

    IF v_last LIKE p_ticket_type || ':%' THEN
        v_mine := split_part(v_last, ':', 2)::smallint;
    END IF;
    SELECT t.sales_open INTO v_open FROM ticket_types t
    WHERE t.id = p_ticket_type AND t.event_id = p_event;
    SELECT e.organizer_id INTO v_org FROM events e WHERE e.id = p_event;
    IF NOT FOUND THEN
        status := 'unknown_event';
    ELSIF v_open IS NULL THEN
        status := 'unknown_ticket_type';
    ELSIF NOT v_open THEN
        status := 'sales_closed';
    ELSE
        LOOP
            -- The transaction's own lock is not skipped: its stripe comes first while it has seats.
            SELECT s.stripe INTO v_stripe FROM ticket_stripes s
            WHERE s.ticket_type_id = p_ticket_type AND s.sold < s.capacity
            ORDER BY s.stripe IS NOT DISTINCT FROM v_mine DESC, random() LIMIT 1
            FOR UPDATE SKIP LOCKED;
            EXIT WHEN FOUND;
            -- As in 0007: never wait on a stripe's lock; look again shortly.
            PERFORM 1 FROM ticket_stripes s
            WHERE s.ticket_type_id = p_ticket_type AND s.sold < s.capacity;
            IF NOT FOUND THEN
                v_stripe := NULL;
                EXIT;
            END IF;
            IF (current_setting('usher.register_batch', true) = 'on' AND v_last <> '')
               OR v_waited >= 4000 THEN
                RAISE EXCEPTION 'every stripe with seats of ticket type % is taken', p_ticket_type
                    USING ERRCODE = 'UE503',
                          HINT = 'a batch does not wait: send its registrations alone';
            END IF;
            v_waited := v_waited + 1;
            PERFORM pg_sleep(0.0005);
        END LOOP;
        IF v_stripe IS NULL THEN
            status := 'sold_out';
        ELSE
            UPDATE ticket_stripes s SET sold = s.sold + 1
            WHERE s.ticket_type_id = p_ticket_type AND s.stripe = v_stripe;
            PERFORM set_config('usher.register_stripe', p_ticket_type || ':' || v_stripe, true);
            INSERT INTO registrations (event_id, ticket_type_id, name, email)
            VALUES (p_event, p_ticket_type, p_name, p_email)
            RETURNING id INTO registration_id;
            PERFORM usher_enqueue_templates(usher_templates_keyed(p_jobs, 'org:' || v_org),
                                            registration_id);
            PERFORM usher_enqueue_webhooks(p_hook, p_event, 'registration.created',
                jsonb_build_object('registration_id', registration_id, 'event_id', p_event,
                                   'ticket_type_id', p_ticket_type));
            status := 'confirmed';
        END IF;
    END IF;

    IF p_idem_key IS NOT NULL THEN
        UPDATE api_idempotency i SET status = usher_register.status,
                                     registration_id = usher_register.registration_id
        WHERE i.scope = p_idem_scope AND i.key = p_idem_key;
    END IF;
END $$;
