-- Ticket types after their creation (issue 15): a new name or capacity, and
-- sales closed and reopened; and the audit log that records every write an
-- organizer or admin makes through usher-api.

-- Who changed what, and when: one row per write of an organizer or admin
-- (api/audit.h). actor is {token_id, role, organizer_id}; before and after
-- are the row as it was and as it became (an update has both, a creation
-- only after, a deletion only before). Webhook secrets never appear in it.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    token_id    bigint,
    role        text NOT NULL,
    organizer_id bigint,       -- the actor's organizer (NULL for an admin)
    action      text NOT NULL, -- e.g. 'ticket_type.update'
    target      text NOT NULL, -- e.g. 'ticket_type'
    target_id   bigint,
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_at ON audit_log (id DESC);
CREATE INDEX audit_log_target ON audit_log (target, target_id);

-- Records one write; p_actor is {token_id, role, organizer_id} (NULL: not an
-- organizer's or admin's write, nothing recorded). Returns the row's id.
CREATE FUNCTION usher_audit(p_actor jsonb, p_action text, p_target text, p_target_id bigint,
                            p_before jsonb, p_after jsonb) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO audit_log (token_id, role, organizer_id, action, target, target_id, before, after)
    SELECT (p_actor ->> 'token_id')::bigint, p_actor ->> 'role',
           (p_actor ->> 'organizer_id')::bigint, p_action, p_target, p_target_id,
           p_before, p_after
    WHERE p_actor IS NOT NULL
    RETURNING id;
$$;

ALTER TABLE ticket_types ADD COLUMN sales_open boolean NOT NULL DEFAULT true;

-- A ticket type as the API shows it: capacity and sold summed over its stripes.
CREATE FUNCTION usher_ticket_type_json(p_ticket_type bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', t.id, 'event_id', t.event_id, 'name', t.name,
                              'capacity', a.capacity, 'sold', a.sold,
                              'available', a.capacity - a.sold, 'sales_open', t.sales_open)
    FROM ticket_types t,
         LATERAL (SELECT coalesce(sum(s.capacity), 0)::int AS capacity,
                         coalesce(sum(s.sold), 0)::int AS sold
                  FROM ticket_stripes s WHERE s.ticket_type_id = t.id) a
    WHERE t.id = p_ticket_type;
$$;

-- Changes a ticket type of p_scope_org's events (NULL: any): a new name
-- (NULL: kept), a new capacity (NULL: kept), sales open or closed (NULL:
-- kept). A new capacity takes every stripe's lock (waiting for the sales in
-- flight, which hold one stripe each and never wait for another) and splits
-- capacity and sold over the stripes again; one below what is sold changes
-- nothing. status: 'updated', 'not_found' or 'below_sold' (sold says how
-- many are sold). The change is audited for p_actor.
CREATE FUNCTION usher_ticket_type_update(p_ticket_type bigint, p_scope_org bigint, p_name text,
                                         p_capacity integer, p_sales_open boolean,
                                         p_actor jsonb, p_action text,
                                         OUT status text, OUT event_id bigint, OUT sold integer,
                                         OUT ticket_type jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_before jsonb;
BEGIN
    SELECT t.event_id INTO event_id FROM ticket_types t JOIN events e ON e.id = t.event_id
    WHERE t.id = p_ticket_type AND (p_scope_org IS NULL OR e.organizer_id = p_scope_org)
    FOR NO KEY UPDATE OF t;
    IF NOT FOUND THEN
        status := 'not_found';
        RETURN;
    END IF;
    IF p_capacity IS NOT NULL THEN
        PERFORM 1 FROM ticket_stripes s WHERE s.ticket_type_id = p_ticket_type
        ORDER BY s.stripe FOR UPDATE;
    END IF;
    v_before := usher_ticket_type_json(p_ticket_type);
    sold := (v_before ->> 'sold')::int;
    IF p_capacity IS NOT NULL AND p_capacity < sold THEN
        status := 'below_sold';
        RETURN;
    END IF;
    UPDATE ticket_types t SET name = coalesce(p_name, t.name),
                              capacity = coalesce(p_capacity, t.capacity),
                              sales_open = coalesce(p_sales_open, t.sales_open)
    WHERE t.id = p_ticket_type;
    IF p_capacity IS NOT NULL THEN
        PERFORM usher_ticket_stripes_set(p_ticket_type, p_capacity, sold);
    END IF;
    ticket_type := usher_ticket_type_json(p_ticket_type);
    PERFORM usher_audit(p_actor, p_action, 'ticket_type', p_ticket_type, v_before, ticket_type);
    status := 'updated';
END $$;

-- As in 0007, and a ticket type whose sales are closed sells nothing:
-- status 'sales_closed'.
CREATE OR REPLACE FUNCTION usher_register(p_event bigint, p_ticket_type bigint, p_name text,
                                          p_email text, p_jobs jsonb, p_idem_scope text,
                                          p_idem_key text, p_request_hash text, p_hook jsonb,
                                          OUT status text, OUT registration_id bigint,
                                          OUT replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_stripe smallint;
    v_open boolean;
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

    SELECT t.sales_open INTO v_open FROM ticket_types t
    WHERE t.id = p_ticket_type AND t.event_id = p_event;
    IF NOT EXISTS (SELECT 1 FROM events e WHERE e.id = p_event) THEN
        status := 'unknown_event';
    ELSIF v_open IS NULL THEN
        status := 'unknown_ticket_type';
    ELSIF NOT v_open THEN
        status := 'sales_closed';
    ELSE
        LOOP
            SELECT s.stripe INTO v_stripe FROM ticket_stripes s
            WHERE s.ticket_type_id = p_ticket_type AND s.sold < s.capacity
            ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED;
            EXIT WHEN FOUND;
            -- As in 0007: never wait on a stripe's lock; look again shortly.
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
