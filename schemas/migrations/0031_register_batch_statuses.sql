-- usher_register_batch (0030) answers per item two things that failed the
-- whole batch, each of whose 64 registrations usher-api then sent again
-- alone (one POST to the public route made 64 statements):
--
-- * A cancelled event's items answer event_cancelled (usher-api: 410, as
--   for UE410) and take and write nothing. The event's cancelled_at is read
--   with its organizer; a keyed item of a cancelled event whose key was used
--   before the cancellation replays that answer, as usher_register would.
--   0017's trigger stays for a cancellation that commits after this read:
--   it still fails the batch (UE410), which then goes alone.
-- * A ticket type whose stripes with seats another transaction holds makes
--   its items busy (usher_take_seats answers got and busy instead of
--   raising UE503), and the rest of the batch commits; usher-api sends the
--   busy items alone, where they wait for a stripe as a lone registration
--   does. The wait rules are 0030's, none while the transaction holds a
--   stripe, 2 s at most otherwise (by the clock now, not a count of rounds
--   that a loaded machine stretches), and a batch waits once: after a busy
--   ticket type (p_wait false) the next one does not wait either, nor does a
--   keyed item's usher_register, which raises UE503 at once (the batch then
--   goes alone).
-- * Both statuses go only to a usher-api that says it knows them ("v": 2 in
--   its items); an older one gets 0030's whole-batch UE410 and UE503, so a
--   host not yet upgraded answers right against the migrated database.
--
-- And usher_take_seats records the last stripe it took as the preferred one
-- (usher.register_stripe): the stripes before it were emptied, only the
-- last may still hold seats for the batch's keyed items.
DROP FUNCTION usher_take_seats(bigint, integer);
CREATE FUNCTION usher_take_seats(p_ticket_type bigint, p_want integer, p_wait boolean,
                                 OUT got integer, OUT busy boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_taken smallint[] := '{}';
    v_stripe smallint;
    v_free integer;
    v_take integer;
    v_until timestamptz := clock_timestamp() + interval '2 s';
BEGIN
    got := 0;
    busy := false;
    WHILE got < p_want LOOP
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
            busy := NOT p_wait OR cardinality(v_taken) > 0 OR clock_timestamp() >= v_until
                    OR coalesce(current_setting('usher.register_stripe', true), '') <> '';
            EXIT WHEN busy;
            PERFORM pg_sleep(0.0005);
            CONTINUE;
        END IF;
        v_take := least(v_free, p_want - got);
        UPDATE ticket_stripes s SET sold = s.sold + v_take
        WHERE s.ticket_type_id = p_ticket_type AND s.stripe = v_stripe;
        v_taken := v_taken || v_stripe;
        got := got + v_take;
    END LOOP;
    IF got > 0 THEN
        PERFORM set_config('usher.register_stripe',
                           p_ticket_type || ':' || v_taken[cardinality(v_taken)], true);
    END IF;
END $$;

-- An item of usher_register_batch registered by usher_register (0021's
-- 10-argument form), as 0029 did inline.
CREATE FUNCTION usher_register_item(p_item jsonb, OUT status text, OUT registration_id bigint,
                                    OUT replayed boolean)
LANGUAGE sql AS $$
    SELECT r.status, r.registration_id, r.replayed
    FROM usher_register((p_item ->> 'event')::bigint, (p_item ->> 'ticket_type')::bigint,
                        p_item ->> 'name', p_item ->> 'email', p_item -> 'jobs',
                        p_item ->> 'scope', p_item ->> 'key', p_item ->> 'hash',
                        p_item -> 'hook', p_item ->> 'locale') r
$$;

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
        SELECT t.sales_open INTO v_open FROM ticket_types t
        WHERE t.id = k.tt AND t.event_id = k.event;
        SELECT e.organizer_id, e.cancelled_at IS NOT NULL INTO v_org, v_cancelled
        FROM events e WHERE e.id = k.event;
        v_status := CASE WHEN v_org IS NULL THEN 'unknown_event'
                         WHEN v_open IS NULL THEN 'unknown_ticket_type'
                         WHEN NOT v_open THEN 'sales_closed'
                         WHEN v_cancelled THEN 'event_cancelled' END;
        IF v_status IS NULL THEN
            SELECT s.got, s.busy INTO v_got, v_busy
            FROM usher_take_seats(k.tt, cardinality(v_ords), NOT v_was_busy) s;
            IF v_busy AND coalesce(current_setting('usher.register_stripe', true), '') = '' THEN
                -- The batch has waited once: a keyed item's usher_register must
                -- not wait again (it raises UE503 at once when this is set; no
                -- ticket type has id 0, so no stripe is preferred by it).
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
            -- A key used before the cancellation replays its answer, as
            -- usher_register would; otherwise nothing is taken or written.
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
        END IF;
        idx := v.ord;
        status := g.status;
        registration_id := g.registration_id;
        replayed := g.replayed;
        RETURN NEXT;
    END LOOP;

    -- A usher-api from before 0031 does not know these two statuses (its items
    -- carry no "v": 2): it would take them for a reused Idempotency-Key. It gets
    -- 0030's answer instead, the batch failing as a whole (UE410, UE503), so that
    -- it sends each registration alone. This keeps a host not yet upgraded right
    -- while the others run the new usher-api on the migrated database.
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
