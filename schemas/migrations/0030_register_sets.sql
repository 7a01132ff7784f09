-- usher_register_batch (0029) registers the items without an
-- Idempotency-Key set-wise: per ticket type it checks the event and the
-- sales once, takes the seats of all its items from as few stripes as hold
-- them, and writes every registration, every job and every webhook of the
-- batch in one statement each. At a sale's rates the per-item function
-- calls, stripe searches and single-row inserts of 0029 spent three
-- quarters of a registration's database time (measured: 0.3 ms an item).
-- Items with a key still go one by one through usher_register(): a key
-- may be repeated within the batch or held by another transaction, and its
-- replay must answer exactly as the first did.
--
-- The seats of a ticket type's items go to the first items in the batch's
-- order; the others are sold_out only when no stripe has a seat left. A
-- stripe with seats that another transaction holds is waited for, as
-- usher_register waits: only while this transaction holds no stripe, 2 s at
-- most, and otherwise the batch fails with UE503 (usher-api then sends its
-- items alone), so two batches never wait for each other.
CREATE FUNCTION usher_take_seats(p_ticket_type bigint, p_want integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_taken smallint[] := '{}';
    v_got integer := 0;
    v_stripe smallint;
    v_free integer;
    v_take integer;
    v_waited integer := 0;
BEGIN
    WHILE v_got < p_want LOOP
        SELECT s.stripe, s.capacity - s.sold INTO v_stripe, v_free FROM ticket_stripes s
        WHERE s.ticket_type_id = p_ticket_type AND s.sold < s.capacity
          AND s.stripe <> ALL (v_taken)
        ORDER BY random() LIMIT 1
        FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            PERFORM 1 FROM ticket_stripes s
            WHERE s.ticket_type_id = p_ticket_type AND s.sold < s.capacity
              AND s.stripe <> ALL (v_taken);
            EXIT WHEN NOT FOUND; -- sold out: what was taken is all there is
            IF coalesce(current_setting('usher.register_stripe', true), '') <> ''
               OR cardinality(v_taken) > 0 OR v_waited >= 4000 THEN
                RAISE EXCEPTION 'every stripe with seats of ticket type % is taken', p_ticket_type
                    USING ERRCODE = 'UE503',
                          HINT = 'a batch does not wait: send its registrations alone';
            END IF;
            v_waited := v_waited + 1;
            PERFORM pg_sleep(0.0005);
            CONTINUE;
        END IF;
        v_take := least(v_free, p_want - v_got);
        UPDATE ticket_stripes s SET sold = s.sold + v_take
        WHERE s.ticket_type_id = p_ticket_type AND s.stripe = v_stripe;
        v_taken := v_taken || v_stripe;
        v_got := v_got + v_take;
    END LOOP;
    IF v_got > 0 THEN
        -- usher_register (0029) prefers this stripe for the batch's keyed items.
        PERFORM set_config('usher.register_stripe', p_ticket_type || ':' || v_taken[1], true);
    END IF;
    RETURN v_got;
END $$;

CREATE OR REPLACE FUNCTION usher_register_batch(p_items jsonb)
RETURNS TABLE (idx integer, status text, registration_id bigint, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v record;
    g record;
    k record;
    v_sold jsonb[] := '{}';
    v_ords integer[];
    v_items jsonb[];
    v_ids bigint[];
    v_got integer;
    v_org bigint;
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
        SELECT t.sales_open INTO v_open FROM ticket_types t
        WHERE t.id = k.tt AND t.event_id = k.event;
        SELECT e.organizer_id INTO v_org FROM events e WHERE e.id = k.event;
        v_status := CASE WHEN v_org IS NULL THEN 'unknown_event'
                         WHEN v_open IS NULL THEN 'unknown_ticket_type'
                         WHEN NOT v_open THEN 'sales_closed' END;
        IF v_status IS NULL THEN
            v_got := usher_take_seats(k.tt, cardinality(v_ords));
        END IF;

        -- The first v_got items are sold: their rows, jobs and webhooks, a statement each.
        IF v_got > 0 THEN
            SELECT array_agg(nextval('registrations_id_seq') ORDER BY n) INTO v_ids
            FROM generate_series(1, v_got) n;
            INSERT INTO registrations (id, event_id, ticket_type_id, name, email, locale)
            OVERRIDING SYSTEM VALUE
            SELECT v_ids[n], k.event, k.tt, v_items[n] ->> 'name', v_items[n] ->> 'email',
                   v_items[n] ->> 'locale'
            FROM generate_series(1, v_got) n;
            PERFORM usher_enqueue_templates(usher_templates_keyed(
                        jsonb_agg((j - 'id_field' - 'at_field')
                                  || jsonb_build_object('payload',
                                                        usher_template_payload(j, v_ids[n]))
                                  ORDER BY n, o),
                        'org:' || v_org), NULL)
            FROM generate_series(1, v_got) n,
                 jsonb_array_elements(coalesce(v_items[n] -> 'jobs', '[]')) WITH ORDINALITY
                     AS e(j, o);
            PERFORM usher_enqueue_templates(usher_templates_keyed(
                        jsonb_agg((v_items[n] -> 'hook') || jsonb_build_object('payload',
                            jsonb_build_object('endpoint_id', w.id,
                                               'event', 'registration.created',
                                               'data', jsonb_build_object(
                                                   'registration_id', v_ids[n],
                                                   'event_id', k.event,
                                                   'ticket_type_id', k.tt)))
                                  ORDER BY n, w.id),
                        'org:' || v_org), NULL)
            FROM generate_series(1, v_got) n
            JOIN webhook_endpoints w ON w.organizer_id = v_org
            WHERE jsonb_typeof(v_items[n] -> 'hook') = 'object' AND w.enabled
              AND 'registration.created' = ANY (w.events);
            v_sold := v_sold || v_items[1:v_got];
        END IF;
        RETURN QUERY
        SELECT v_ords[n], coalesce(v_status, CASE WHEN n <= v_got THEN 'confirmed'
                                                  ELSE 'sold_out' END),
               CASE WHEN n <= v_got THEN v_ids[n] END, false
        FROM generate_series(1, cardinality(v_ords)) n;
    END LOOP;

    -- The items with a key, one by one, in the key's order (0029).
    FOR v IN
        SELECT (i.ord - 1)::integer AS ord, i.item
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i(item, ord)
        WHERE i.item ->> 'key' IS NOT NULL
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
