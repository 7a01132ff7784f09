-- What usher-api needs: bearer tokens, idempotency keys, striped seat
-- counts, and the two statements that the hot paths (registration and
-- check-in) run as one round trip each.

-- Bearer tokens, stored as their BLAKE2b hash: a leaked table grants
-- nothing. An organizer token is scoped to its organizer's events; a scanner
-- token to its organizer's events and, when event_id is set, to that event.
CREATE TYPE usher_role AS ENUM ('admin', 'organizer', 'scanner');

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    role         usher_role NOT NULL,
    organizer_id bigint REFERENCES organizers (id),
    event_id     bigint REFERENCES events (id),
    name         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CHECK (role = 'admin' OR organizer_id IS NOT NULL)
);

-- A retried request with the same Idempotency-Key (per client scope) gets
-- the first answer; the same key with another body is refused, so a
-- guessed key never reveals someone else's registration. Rows older than a day are pruned by the API.
CREATE TABLE api_idempotency (
    scope           text NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash    text NOT NULL, -- a key reused for another request is refused
    status          text,
    registration_id bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX api_idempotency_created ON api_idempotency (created_at);

-- Seats are counted on up to 16 stripes per ticket type. One row per ticket
-- type would serialise every sale of an event on that row's lock, held until
-- the commit is flushed; stripes let concurrent sales commit together (and
-- share a flush). Each stripe's CHECK keeps it from selling past its share,
-- so the sum never passes the capacity.
CREATE TABLE ticket_stripes (
    ticket_type_id bigint NOT NULL REFERENCES ticket_types (id) ON DELETE CASCADE,
    stripe         smallint NOT NULL,
    capacity       integer NOT NULL CHECK (capacity >= 0),
    sold           integer NOT NULL DEFAULT 0,
    PRIMARY KEY (ticket_type_id, stripe),
    CHECK (sold BETWEEN 0 AND capacity)
) WITH (fillfactor = 50);

-- Splits a ticket type's capacity over its stripes and marks `sold` seats of
-- it taken, filling stripes in order. Used for new ticket types (sold 0), the
-- seats sold before this migration, and the demo seed.
CREATE FUNCTION usher_ticket_stripes_set(p_ticket_type bigint, p_capacity integer,
                                         p_sold integer) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM ticket_stripes WHERE ticket_type_id = p_ticket_type;
    WITH s AS (
        SELECT g AS stripe,
               p_capacity / n + CASE WHEN g < p_capacity % n THEN 1 ELSE 0 END AS capacity
        FROM (SELECT greatest(1, least(16, p_capacity)) AS n) k, generate_series(0, k.n - 1) g),
    c AS (SELECT stripe, capacity,
                 sum(capacity) OVER (ORDER BY stripe) - capacity AS before FROM s)
    INSERT INTO ticket_stripes (ticket_type_id, stripe, capacity, sold)
    SELECT p_ticket_type, stripe, capacity, least(capacity, greatest(0, p_sold - before))
    FROM c;
$$;

CREATE FUNCTION usher_ticket_stripes_create() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM usher_ticket_stripes_set(NEW.id, NEW.capacity, 0);
    RETURN NULL;
END $$;

SELECT usher_ticket_stripes_set(id, capacity, sold) FROM ticket_types;
ALTER TABLE ticket_types DROP COLUMN sold;

CREATE TRIGGER ticket_types_stripes AFTER INSERT ON ticket_types
    FOR EACH ROW EXECUTE FUNCTION usher_ticket_stripes_create();

-- Live availability per ticket type.
CREATE VIEW ticket_availability AS
    SELECT ticket_type_id, sum(capacity)::integer AS capacity, sum(sold)::integer AS sold
    FROM ticket_stripes GROUP BY ticket_type_id;

-- Enqueues the jobs described by p_jobs, a JSON array of {queue, kind,
-- priority, max_attempts, timeout_ms, payload, id_field?}: when id_field is
-- set, p_id is added to the payload under that name. It does not NOTIFY:
-- a NOTIFY serialises the commits of every transaction that sends one, so
-- usher-api wakes the queues' workers from a timer, after its commits
-- (api/wake.c), with one short statement per window.
CREATE FUNCTION usher_enqueue_templates(p_jobs jsonb, p_id bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO usher_jobs (queue, kind, priority, payload, max_attempts, timeout_ms)
    SELECT j ->> 'queue', j ->> 'kind', (j ->> 'priority')::smallint,
           coalesce(j -> 'payload', '{}') ||
               CASE WHEN j ? 'id_field' THEN jsonb_build_object(j ->> 'id_field', p_id)
                    ELSE '{}' END,
           (j ->> 'max_attempts')::integer, (j ->> 'timeout_ms')::integer
    FROM jsonb_array_elements(p_jobs) j;
$$;

-- One notify.webhook job per enabled endpoint of the event's organizer that
-- subscribed to p_name, from p_hook = {queue, kind, priority, max_attempts,
-- timeout_ms} (NULL: none), with payload {endpoint_id, event, data}.
CREATE FUNCTION usher_enqueue_webhooks(p_hook jsonb, p_event bigint, p_name text, p_data jsonb)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO usher_jobs (queue, kind, priority, payload, max_attempts, timeout_ms)
    SELECT p_hook ->> 'queue', p_hook ->> 'kind', (p_hook ->> 'priority')::smallint,
           jsonb_build_object('endpoint_id', w.id, 'event', p_name, 'data', p_data),
           (p_hook ->> 'max_attempts')::integer, (p_hook ->> 'timeout_ms')::integer
    FROM events e JOIN webhook_endpoints w ON w.organizer_id = e.organizer_id
    WHERE p_hook IS NOT NULL AND e.id = p_event AND w.enabled AND p_name = ANY (w.events);
$$;

-- A registration: takes a seat on a free stripe (another one when its stripe
-- is locked by a concurrent sale; looking again shortly when every stripe with
-- seats left is locked), writes the registration and enqueues its jobs, all in the
-- caller's one statement. status: 'confirmed', 'sold_out', 'unknown_event',
-- 'unknown_ticket_type' or 'idempotency_key_reused'. With an idempotency key, a repeated key returns the
-- first call's answer (replayed) and changes nothing.
CREATE FUNCTION usher_register(p_event bigint, p_ticket_type bigint, p_name text, p_email text,
                               p_jobs jsonb, p_idem_scope text, p_idem_key text,
                               p_request_hash text, p_hook jsonb,
                               OUT status text, OUT registration_id bigint,
                               OUT replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_stripe smallint;
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

    PERFORM 1 FROM events e WHERE e.id = p_event;
    IF NOT FOUND THEN
        status := 'unknown_event';
    ELSIF NOT EXISTS (SELECT 1 FROM ticket_types t
                      WHERE t.id = p_ticket_type AND t.event_id = p_event) THEN
        status := 'unknown_ticket_type';
    ELSE
        LOOP
            SELECT s.stripe INTO v_stripe FROM ticket_stripes s
            WHERE s.ticket_type_id = p_ticket_type AND s.sold < s.capacity
            ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED;
            EXIT WHEN FOUND;
            -- Every stripe with seats left is locked by a sale in flight (or
            -- none is left). Waiting on one of those locks could deadlock: a
            -- FOR UPDATE whose row filled up meanwhile returns nothing but
            -- keeps the lock. So look again after a moment instead; the
            -- holders commit within milliseconds.
            PERFORM 1 FROM ticket_stripes s
            WHERE s.ticket_type_id = p_ticket_type AND s.sold < s.capacity;
            IF NOT FOUND THEN
                v_stripe := NULL;
                EXIT;
            END IF;
            PERFORM pg_sleep(0.0005);
        END LOOP;
        IF v_stripe IS NULL THEN
            status := 'sold_out';
        ELSE
            UPDATE ticket_stripes s SET sold = s.sold + 1
            WHERE s.ticket_type_id = p_ticket_type AND s.stripe = v_stripe;
            INSERT INTO registrations (event_id, ticket_type_id, name, email)
            VALUES (p_event, p_ticket_type, p_name, p_email)
            RETURNING id INTO registration_id;
            PERFORM usher_enqueue_templates(p_jobs, registration_id);
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

-- A door scan of a ticket whose signature the API has verified. Every scan
-- is recorded. A repeated nonce for the same ticket (a scanner retrying)
-- returns the first scan's answer; a nonce is never looked up across
-- tickets, so reusing one cannot borrow another ticket's answer. Of two
-- scanners racing on one ticket, the partial unique index admits one; the
-- other reads 'already_checked_in'. p_scope_org / p_scope_event narrow which
-- events the scanner may admit (NULL = any).
CREATE FUNCTION usher_checkin(p_event bigint, p_registration bigint, p_scope_org bigint,
                              p_scope_event bigint, p_gate text, p_nonce text,
                              p_jobs jsonb, p_hook jsonb,
                              OUT result text, OUT first_at timestamptz, OUT first_gate text)
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
        IF v_id IS NOT NULL AND result = 'ok' THEN
            PERFORM usher_enqueue_templates(p_jobs, p_registration);
            PERFORM usher_enqueue_webhooks(p_hook, p_event, 'checkin.created',
                jsonb_build_object('registration_id', p_registration, 'event_id', p_event,
                                   'gate', p_gate));
        END IF;
    END IF;

    IF result = 'ok' AND v_id IS NOT NULL AND v_first IS NULL THEN
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
-- is {event, registration, scope_org, scope_event, gate, nonce, jobs}; they
-- run in registration order, so two batches in flight never wait on each
-- other's tickets in opposite orders. idx is the item's place in p_items.
CREATE FUNCTION usher_checkin_batch(p_items jsonb, p_hook jsonb)
RETURNS TABLE (idx integer, result text, first_at timestamptz, first_gate text)
LANGUAGE plpgsql AS $$
DECLARE
    v record;
BEGIN
    FOR v IN
        SELECT (i.ord - 1)::integer AS ord, i.item
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i(item, ord)
        ORDER BY (i.item ->> 'registration')::bigint, i.ord
    LOOP
        idx := v.ord;
        SELECT c.result, c.first_at, c.first_gate INTO result, first_at, first_gate
        FROM usher_checkin((v.item ->> 'event')::bigint, (v.item ->> 'registration')::bigint,
                           (v.item ->> 'scope_org')::bigint, (v.item ->> 'scope_event')::bigint,
                           coalesce(v.item ->> 'gate', ''), v.item ->> 'nonce', v.item -> 'jobs',
                           p_hook) c;
        RETURN NEXT;
    END LOOP;
END $$;
