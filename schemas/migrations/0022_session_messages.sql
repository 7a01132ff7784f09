-- Attendees told of session changes, and the cancel race (issue 15).
--
-- A session's cancellation (usher_session_cancel, 0015) and a change of its
-- times (PATCH /v1/sessions/{id}) each record a message of their own kind,
-- session_cancelled or session_changed, with the message.fanout job that
-- the route passes: the same fan-out as an organizer's message (ledger
-- keyed by message and registration, so a retried batch mails nobody
-- twice), to the session's attendees, which are the event's confirmed
-- registrations (each admits to every session of its event,
-- session_access.c), each with its own template.
--
-- The race: a registration whose trigger read "not cancelled" just before
-- an event's cancellation committed could commit after the fan-out had
-- passed it, keeping a seat at a cancelled event, untold. The trigger now
-- reads the event row FOR KEY SHARE with the condition, and the
-- cancellation takes it FOR UPDATE: a registration either commits before
-- the cancellation locks the row (and the fan-out, which starts after the
-- cancellation's commit, cancels and tells it) or waits for that commit,
-- re-reads the row and is refused (410).

ALTER TABLE event_messages DROP CONSTRAINT event_messages_kind_check;
ALTER TABLE event_messages ADD CONSTRAINT event_messages_kind_check
    CHECK (kind IN ('message', 'event_cancelled', 'session_cancelled', 'session_changed'));
ALTER TABLE event_messages ADD COLUMN session_id bigint REFERENCES sessions (id) ON DELETE SET NULL;
CREATE INDEX event_messages_session ON event_messages (session_id) WHERE session_id IS NOT NULL;

CREATE OR REPLACE FUNCTION usher_registration_event_open() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM events e WHERE e.id = NEW.event_id AND e.cancelled_at IS NULL FOR KEY SHARE;
    IF NOT FOUND AND EXISTS (SELECT 1 FROM events e WHERE e.id = NEW.event_id) THEN
        RAISE EXCEPTION 'event % is cancelled', NEW.event_id USING ERRCODE = 'UE410';
    END IF;
    RETURN NEW;
END $$;

-- A session's message of kind p_kind ('session_cancelled' or
-- 'session_changed') with its first message.fanout job (p_fanout); none
-- for a session of a cancelled event (its attendees are told of that).
-- The inbox text gives the times for the event's locale (0021). Returns
-- the message's id, or NULL.
CREATE FUNCTION usher_session_message(p_session bigint, p_kind text, p_fanout jsonb)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO event_messages (event_id, kind, session_id, subject, body, audience, created_by)
    SELECT s.event_id, p_kind, s.id,
           left(CASE p_kind WHEN 'session_cancelled' THEN 'Session cancelled: '
                            ELSE 'New time: ' END || s.title, 200),
           CASE p_kind
               WHEN 'session_cancelled' THEN format('The session "%s" will not take place.', s.title)
               ELSE format('The session "%s" has a new time: %s to %s.', s.title,
                           usher_format_time(s.starts_at, e.timezone, e.locale),
                           usher_format_time(s.ends_at, e.timezone, e.locale))
           END,
           jsonb_build_object('session_ids', jsonb_build_array(s.id)), 'system'
    FROM sessions s JOIN events e ON e.id = s.event_id
    WHERE s.id = p_session AND e.cancelled_at IS NULL
    RETURNING id INTO v_id;
    IF v_id IS NOT NULL THEN
        PERFORM usher_enqueue_templates(jsonb_build_array(p_fanout || jsonb_build_object(
            'unique_key', 'message.fanout:' || v_id || ':0')), v_id);
    END IF;
    RETURN v_id;
END $$;

-- usher_session_cancel of 0015, and the attendees told (p_fanout).
CREATE FUNCTION usher_session_cancel(p_session bigint, p_scope_org bigint, p_actor jsonb,
                                     p_jobs jsonb, p_fanout jsonb,
                                     OUT status text, OUT event_id bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.status, c.event_id INTO status, event_id
    FROM usher_session_cancel(p_session, p_scope_org, p_actor, p_jobs) c;
    IF status = 'cancelled' THEN
        PERFORM usher_session_message(p_session, 'session_cancelled', p_fanout);
    END IF;
END $$;

-- The fan-out of 0017, each kind with its own template: event_message for
-- an organizer's message, else the kind's name.
CREATE OR REPLACE FUNCTION usher_message_fanout(p_message bigint, p_batch integer, p_email jsonb,
                                     p_next jsonb, p_cancel jsonb, p_hook jsonb,
                                     OUT status text, OUT mailed integer, OUT cursor_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    m event_messages%ROWTYPE;
    v_rows bigint[];
    v_fresh bigint[];
    v_n integer;
    v_reg bigint;
    v_template text;
    v_email jsonb;
BEGIN
    mailed := 0;
    SELECT * INTO m FROM event_messages e WHERE e.id = p_message FOR UPDATE;
    IF NOT FOUND THEN
        status := 'not_found';
        RETURN;
    END IF;
    cursor_id := m.cursor_id;
    IF m.state IN ('done', 'cancelled') THEN
        status := m.state;
        RETURN;
    END IF;
    -- An organizer's message goes at low priority, behind confirmations in
    -- the same queue; a cancellation at email.send's own.
    v_template := CASE m.kind WHEN 'message' THEN 'event_message' ELSE m.kind END;
    v_email := CASE m.kind WHEN 'message' THEN '{"priority": 2}'::jsonb ELSE '{}'::jsonb END;
    v_rows := ARRAY(SELECT r.id FROM registrations r
                    WHERE r.event_id = m.event_id AND r.id > m.cursor_id
                      AND r.status = 'confirmed' AND usher_message_selects(m.audience, r)
                    ORDER BY r.id LIMIT p_batch);
    v_n := coalesce(array_length(v_rows, 1), 0);
    WITH fresh AS (
        INSERT INTO message_deliveries (message_id, registration_id)
        SELECT p_message, x FROM unnest(v_rows) x
        ON CONFLICT DO NOTHING RETURNING registration_id)
    SELECT coalesce(array_agg(registration_id ORDER BY registration_id), '{}') INTO v_fresh
    FROM fresh;
    mailed := coalesce(array_length(v_fresh, 1), 0);

    IF m.kind = 'event_cancelled' THEN
        FOREACH v_reg IN ARRAY v_fresh LOOP
            PERFORM usher_cancel_registration(v_reg, NULL, p_cancel, p_hook);
        END LOOP;
    END IF;
    INSERT INTO notifications (registration_id, title, body)
    SELECT x, m.subject, m.body FROM unnest(v_fresh) x;
    IF mailed > 0 THEN
        WITH jobs AS (
            SELECT j.id, j.unique_key FROM usher_enqueue_templates(
                (SELECT jsonb_agg(p_email || v_email
                                  || jsonb_build_object('unique_key', 'message:' || p_message || ':' || x,
                                                        'payload', jsonb_build_object(
                                                            'registration_id', x,
                                                            'message_id', p_message,
                                                            'template', v_template))
                                  ORDER BY x)
                 FROM unnest(v_fresh) x)) j)
        UPDATE message_deliveries d SET job_id = jobs.id FROM jobs
        WHERE d.message_id = p_message
          AND jobs.unique_key = 'message:' || p_message || ':' || d.registration_id;
    END IF;

    IF v_n > 0 THEN
        cursor_id := v_rows[v_n];
    END IF;
    UPDATE event_messages e
    SET cursor_id = usher_message_fanout.cursor_id, batches = e.batches + 1,
        state = CASE WHEN v_n < p_batch THEN 'done' ELSE 'sending' END,
        finished_at = CASE WHEN v_n < p_batch THEN now() END
    WHERE e.id = p_message;
    IF v_n >= p_batch THEN
        PERFORM usher_enqueue_templates(jsonb_build_array(p_next || jsonb_build_object(
            'unique_key', 'message.fanout:' || p_message || ':' || cursor_id)));
    END IF;
    status := 'sent';
END $$;

-- 0017's, the cancellation taking the event row FOR UPDATE (see above).
CREATE OR REPLACE FUNCTION usher_message_create(p_event bigint, p_scope_org bigint, p_kind text,
                                     p_subject text, p_body text, p_audience jsonb,
                                     p_created_by text, p_fanout jsonb, p_hook jsonb,
                                     OUT status text, OUT message_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_cancelled timestamptz;
    v_name text;
BEGIN
    -- A cancellation takes the event row FOR UPDATE, which waits for every
    -- registration in flight (each holds FOR KEY SHARE on it, see
    -- usher_registration_event_open) and makes those that come after wait
    -- for this commit and then find the event cancelled.
    IF p_kind = 'event_cancelled' THEN
        PERFORM 1 FROM events e
        WHERE e.id = p_event AND (p_scope_org IS NULL OR e.organizer_id = p_scope_org)
        FOR UPDATE;
    END IF;
    SELECT e.cancelled_at, e.name INTO v_cancelled, v_name FROM events e
    WHERE e.id = p_event AND (p_scope_org IS NULL OR e.organizer_id = p_scope_org)
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        status := 'not_found';
        RETURN;
    END IF;
    IF v_cancelled IS NOT NULL THEN
        SELECT m.id INTO message_id FROM event_messages m
        WHERE m.event_id = p_event AND m.kind = 'event_cancelled';
        status := CASE WHEN p_kind = 'event_cancelled' THEN 'already_cancelled'
                       ELSE 'event_cancelled' END;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(p_audience -> 'ticket_type_ids',
                                                                 '[]')) x
               WHERE NOT EXISTS (SELECT 1 FROM ticket_types t
                                 WHERE t.id = x::bigint AND t.event_id = p_event)) THEN
        status := 'unknown_ticket_type';
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(p_audience -> 'session_ids', '[]')) x
               WHERE NOT EXISTS (SELECT 1 FROM sessions s
                                 WHERE s.id = x::bigint AND s.event_id = p_event)) THEN
        status := 'unknown_session';
        RETURN;
    END IF;
    IF p_kind = 'event_cancelled' THEN
        UPDATE events e SET cancelled_at = now(), updated_at = now() WHERE e.id = p_event;
        p_subject := coalesce(p_subject, left('Cancelled: ' || v_name, 200));
        PERFORM usher_enqueue_webhooks(p_hook, p_event, 'event.cancelled',
                                       jsonb_build_object('event_id', p_event));
    END IF;
    INSERT INTO event_messages (event_id, kind, subject, body, audience, created_by)
    VALUES (p_event, p_kind, p_subject, coalesce(p_body, ''), p_audience, p_created_by)
    RETURNING id INTO message_id;
    PERFORM usher_enqueue_templates(jsonb_build_array(p_fanout || jsonb_build_object(
        'unique_key', 'message.fanout:' || message_id || ':0')), message_id);
    status := 'created';
END $$;
