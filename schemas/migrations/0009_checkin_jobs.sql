-- Check-ins enqueue their jobs once per batch, and the enqueue helpers keep
-- their plans.
--
-- Measured on the dev cluster (6,400 scans in batches of 64, one session):
-- the two LANGUAGE sql helpers of 0007 cost ~120 us per scan, because a SQL
-- function called from PL/pgSQL is planned again on every call; as PL/pgSQL
-- their plans are cached per connection (1,040 ms -> 274 ms for the 6,400).
-- A batch of scans now also writes one analytics job per event and metric
-- (with its count) instead of one per admitted ticket, and one webhook insert
-- for all its admissions.

-- A template's payload as enqueued: id_field (if any) set to p_id, and
-- at_field (if any) to the transaction's time in RFC 3339 UTC, so a job
-- that counts an event (analytics) dates it when it happened, not when a
-- worker got to it.
CREATE FUNCTION usher_template_payload(j jsonb, p_id bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(j -> 'payload', '{}')
           || CASE WHEN j ? 'id_field' THEN jsonb_build_object(j ->> 'id_field', p_id)
                   ELSE '{}' END
           || CASE WHEN j ? 'at_field'
                   THEN jsonb_build_object(j ->> 'at_field',
                            to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                   ELSE '{}' END
$$;

CREATE OR REPLACE FUNCTION usher_enqueue_templates(p_jobs jsonb, p_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usher_jobs (queue, kind, priority, payload, max_attempts, timeout_ms)
    SELECT j ->> 'queue', j ->> 'kind', (j ->> 'priority')::smallint,
           usher_template_payload(j, p_id),
           (j ->> 'max_attempts')::integer, (j ->> 'timeout_ms')::integer
    FROM jsonb_array_elements(p_jobs) j;
END $$;

CREATE OR REPLACE FUNCTION usher_enqueue_webhooks(p_hook jsonb, p_event bigint, p_name text,
                                                  p_data jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_hook IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO usher_jobs (queue, kind, priority, payload, max_attempts, timeout_ms)
    SELECT p_hook ->> 'queue', p_hook ->> 'kind', (p_hook ->> 'priority')::smallint,
           jsonb_build_object('endpoint_id', w.id, 'event', p_name, 'data', p_data),
           (p_hook ->> 'max_attempts')::integer, (p_hook ->> 'timeout_ms')::integer
    FROM events e JOIN webhook_endpoints w ON w.organizer_id = e.organizer_id
    WHERE e.id = p_event AND w.enabled AND p_name = ANY (w.events);
END $$;

DROP FUNCTION IF EXISTS usher_checkin_batch(jsonb, jsonb);
DROP FUNCTION IF EXISTS usher_checkin(bigint, bigint, bigint, bigint, text, text, jsonb, jsonb);

-- One door scan, as in 0007 but without its jobs: admitted is true when this
-- very scan admitted the ticket (not a replay of its nonce), and the caller
-- enqueues what an admission sets off.
CREATE FUNCTION usher_checkin(p_event bigint, p_registration bigint, p_scope_org bigint,
                              p_scope_event bigint, p_gate text, p_nonce text,
                              OUT result text, OUT first_at timestamptz, OUT first_gate text,
                              OUT admitted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_reg_id bigint;
    v_reg_event bigint;
    v_status usher_registration_status;
    v_org bigint;
    v_id bigint;
    v_first text;
    v_nonce text := p_nonce;
BEGIN
    admitted := false;
    SELECT r.id, r.event_id, r.status, e.organizer_id INTO v_reg_id, v_reg_event, v_status, v_org
    FROM registrations r JOIN events e ON e.id = r.event_id WHERE r.id = p_registration;
    IF v_reg_id IS NULL OR v_reg_event <> p_event THEN
        result := 'unknown_ticket';
    ELSIF (p_scope_org IS NOT NULL AND v_org <> p_scope_org)
          OR (p_scope_event IS NOT NULL AND p_event <> p_scope_event) THEN
        result := 'wrong_event';
    ELSIF v_status = 'cancelled' THEN
        result := 'cancelled';
    ELSE
        result := 'ok';
    END IF;

    IF p_nonce IS NOT NULL AND result IN ('ok', 'cancelled') THEN
        SELECT s.result INTO v_first FROM scans s
        WHERE s.nonce = p_nonce AND s.registration_id = p_registration;
        IF FOUND THEN
            result := v_first; -- the same scan again: its first answer
        END IF;
    END IF;
    IF v_first IS NULL THEN
        -- A nonce another ticket already used is not recorded a second time.
        IF p_nonce IS NOT NULL AND EXISTS (SELECT 1 FROM scans s WHERE s.nonce = p_nonce) THEN
            v_nonce := NULL;
        END IF;
        -- No conflict target: either unique index (admitted once, nonce) may
        -- refuse the row. An admission returns its own time and gate.
        INSERT INTO scans (event_id, registration_id, gate, nonce, result)
        VALUES (p_event, p_registration, p_gate, v_nonce, result)
        ON CONFLICT DO NOTHING RETURNING id, scanned_at, gate INTO v_id, first_at, first_gate;
        IF v_id IS NULL AND v_nonce IS NOT NULL THEN
            -- The same scan, sent twice at once?
            SELECT s.result INTO v_first FROM scans s
            WHERE s.nonce = v_nonce AND s.registration_id = p_registration;
        END IF;
        IF v_first IS NOT NULL THEN
            result := v_first;
        ELSIF v_id IS NULL THEN
            IF result = 'ok' AND EXISTS (SELECT 1 FROM scans s
                    WHERE s.registration_id = p_registration AND s.result = 'ok') THEN
                result := 'already_checked_in'; -- another scanner admitted it first
            END IF;
            INSERT INTO scans (event_id, registration_id, gate, nonce, result)
            VALUES (p_event, p_registration, p_gate, v_nonce, result)
            ON CONFLICT DO NOTHING RETURNING id INTO v_id;
            IF v_id IS NULL THEN
                result := 'already_checked_in';
                INSERT INTO scans (event_id, registration_id, gate, nonce, result)
                VALUES (p_event, p_registration, p_gate, NULL, result);
            END IF;
        END IF;
    END IF;

    IF result = 'ok' AND v_id IS NOT NULL AND v_first IS NULL THEN
        admitted := true;
        RETURN; -- this scan admitted it: first_at and first_gate are its own
    END IF;
    first_at := NULL;
    first_gate := NULL;
    IF result IN ('ok', 'already_checked_in') THEN
        SELECT s.scanned_at, s.gate INTO first_at, first_gate FROM scans s
        WHERE s.registration_id = p_registration AND s.result = 'ok';
    END IF;
END $$;

-- Several door scans in one statement and one commit: usher-api gathers the
-- check-ins a loop thread read in one turn (api/checkin_batch.c). Each item
-- is {event, registration, scope_org, scope_event, gate, nonce, jobs,
-- counted}; they run in registration order, so two batches in flight never
-- wait on each other's tickets in opposite orders. idx is the item's place in
-- p_items.
--
-- For the scans that admitted their ticket, after the loop: each template of
-- an item's "jobs" becomes one job per admission (id_field set to the
-- registration, as usher_enqueue_templates does); the templates of "counted"
-- become one job per distinct template, its payload's "count" the number of
-- admissions that carried it (analytics: one job per event and batch; their
-- at_field is the batch's time); and
-- p_hook (NULL: none) one checkin.created notify.webhook job per admission
-- and subscribed endpoint.
CREATE FUNCTION usher_checkin_batch(p_items jsonb, p_hook jsonb)
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

    INSERT INTO usher_jobs (queue, kind, priority, payload, max_attempts, timeout_ms)
    SELECT j ->> 'queue', j ->> 'kind', (j ->> 'priority')::smallint,
           usher_template_payload(j, (a ->> 'registration')::bigint),
           (j ->> 'max_attempts')::integer, (j ->> 'timeout_ms')::integer
    FROM unnest(v_admitted) a, jsonb_array_elements(coalesce(a -> 'jobs', '[]')) j;

    INSERT INTO usher_jobs (queue, kind, priority, payload, max_attempts, timeout_ms)
    SELECT j ->> 'queue', j ->> 'kind', (j ->> 'priority')::smallint,
           usher_template_payload(j, NULL) || jsonb_build_object('count', count(*)),
           (j ->> 'max_attempts')::integer, (j ->> 'timeout_ms')::integer
    FROM unnest(v_admitted) a, jsonb_array_elements(coalesce(a -> 'counted', '[]')) j
    GROUP BY j;

    IF p_hook IS NOT NULL THEN
        INSERT INTO usher_jobs (queue, kind, priority, payload, max_attempts, timeout_ms)
        SELECT p_hook ->> 'queue', p_hook ->> 'kind', (p_hook ->> 'priority')::smallint,
               jsonb_build_object('endpoint_id', w.id, 'event', 'checkin.created',
                                  'data', jsonb_build_object(
                                      'registration_id', (a ->> 'registration')::bigint,
                                      'event_id', (a ->> 'event')::bigint,
                                      'gate', coalesce(a ->> 'gate', ''))),
               (p_hook ->> 'max_attempts')::integer, (p_hook ->> 'timeout_ms')::integer
        FROM unnest(v_admitted) a
        JOIN events e ON e.id = (a ->> 'event')::bigint
        JOIN webhook_endpoints w ON w.organizer_id = e.organizer_id
        WHERE w.enabled AND 'checkin.created' = ANY (w.events);
    END IF;
END $$;
