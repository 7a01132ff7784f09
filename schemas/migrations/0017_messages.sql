-- Messages to attendees (POST /v1/events/{id}/messages) and event
-- cancellation (POST /v1/events/{id}/cancel), which is a message of its own
-- kind that also cancels each registration it reaches.
--
-- A message is fanned out by message.fanout jobs, one batch of
-- registrations (by id, after the message's cursor) per job: each batch, in
-- one transaction with its job's completion (usher_handler_commit), records
-- one ledger row per attendee in message_deliveries, writes one inbox entry
-- and enqueues one email.send job for each row it inserted, moves the
-- cursor and enqueues the next batch. The ledger's primary key (message,
-- registration) is what makes a batch run again (a worker killed before its
-- commit, a lost reply) mail nobody twice: only rows this transaction
-- inserted get an inbox entry and an email.

ALTER TABLE events ADD COLUMN cancelled_at timestamptz;

-- kind 'message' is an organizer's message; 'event_cancelled' the event's
-- cancellation (at most one per event). state: 'queued' until the first
-- batch, 'sending', then 'done'; 'cancelled' when the organizer stopped it
-- (no more batches, and its emails not yet sent are skipped). audience:
-- {} for every confirmed attendee, else any of ticket_type_ids (an array
-- of ids), session_ids (an array of ids; every confirmed registration of
-- the event admits to each of its sessions) and checked_in (true or
-- false), all of which must hold.
CREATE TABLE event_messages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     bigint NOT NULL REFERENCES events (id) ON DELETE CASCADE, -- usher_event_delete
    kind         text NOT NULL DEFAULT 'message' CHECK (kind IN ('message', 'event_cancelled')),
    subject      text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    body         text NOT NULL DEFAULT '' CHECK (length(body) <= 20000),
    audience     jsonb NOT NULL DEFAULT '{}',
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'sending', 'done', 'cancelled')),
    cursor_id    bigint NOT NULL DEFAULT 0, -- the last registration a batch looked at
    batches      integer NOT NULL DEFAULT 0,
    created_by   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    cancelled_at timestamptz
);
CREATE INDEX event_messages_event ON event_messages (event_id, id);
CREATE UNIQUE INDEX event_messages_one_cancellation ON event_messages (event_id)
    WHERE kind = 'event_cancelled';

-- The ledger: one row per (message, attendee) ever mailed. job_id is the
-- email.send job; sent_at is set by that job once the relay took the mail,
-- skipped_at when the message was cancelled before it went.
CREATE TABLE message_deliveries (
    message_id      bigint NOT NULL REFERENCES event_messages (id) ON DELETE CASCADE,
    registration_id bigint NOT NULL REFERENCES registrations (id),
    job_id          bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    skipped_at      timestamptz,
    PRIMARY KEY (message_id, registration_id)
);
CREATE INDEX message_deliveries_job ON message_deliveries (job_id);

-- No registration for a cancelled event: usher_register's insert fails
-- with SQLSTATE UE410, which usher-api answers with 410. Whatever the
-- statement took before (a seat, an idempotency key) rolls back with it.
CREATE FUNCTION usher_registration_event_open() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM events e WHERE e.id = NEW.event_id AND e.cancelled_at IS NOT NULL) THEN
        RAISE EXCEPTION 'event % is cancelled', NEW.event_id USING ERRCODE = 'UE410';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER registrations_event_open BEFORE INSERT ON registrations
    FOR EACH ROW EXECUTE FUNCTION usher_registration_event_open();

-- Does message audience a select registration r (of the message's event)?
CREATE FUNCTION usher_message_selects(a jsonb, r registrations) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (NOT (a ? 'ticket_type_ids')
            OR r.ticket_type_id IN (SELECT x::bigint
                                    FROM jsonb_array_elements_text(a -> 'ticket_type_ids') x))
       AND (NOT (a ? 'session_ids')
            OR EXISTS (SELECT 1 FROM sessions s
                       WHERE s.event_id = r.event_id
                         AND s.id IN (SELECT x::bigint
                                      FROM jsonb_array_elements_text(a -> 'session_ids') x)))
       AND (NOT (a ? 'checked_in')
            OR EXISTS (SELECT 1 FROM scans s WHERE s.registration_id = r.id AND s.result = 'ok')
               = (a ->> 'checked_in')::boolean)
$$;

-- One batch of message p_message, at most p_batch registrations after its
-- cursor. p_email is the email.send template (its payload becomes
-- {registration_id, message_id, template}: event_message, or
-- event_cancelled for a cancellation), p_next the message.fanout template of
-- the next batch, p_cancel the jobs usher_cancel_registration enqueues for
-- each registration an event cancellation cancels, p_hook the
-- notify.webhook template. status: 'not_found', 'done' or 'cancelled'
-- (nothing more to do), or 'sent' (this batch; more follow when it was
-- full). mailed: ledger rows this call inserted.
CREATE FUNCTION usher_message_fanout(p_message bigint, p_batch integer, p_email jsonb,
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
    v_template := CASE m.kind WHEN 'event_cancelled' THEN 'event_cancelled' ELSE 'event_message' END;
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

-- An organizer's message or an event's cancellation, recorded with its
-- first message.fanout job (p_fanout, whose payload gets message_id).
-- For kind 'event_cancelled' the event is marked cancelled and p_hook
-- fires event.cancelled. status: 'created', 'not_found' (no such event
-- within p_scope_org; NULL: any organizer), 'event_cancelled' (a message
-- to a cancelled event is refused), 'already_cancelled' (the
-- cancellation exists: message_id is it, nothing changes), or
-- 'unknown_ticket_type' / 'unknown_session' (the audience names one that
-- is not the event's).
CREATE FUNCTION usher_message_create(p_event bigint, p_scope_org bigint, p_kind text,
                                     p_subject text, p_body text, p_audience jsonb,
                                     p_created_by text, p_fanout jsonb, p_hook jsonb,
                                     OUT status text, OUT message_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_cancelled timestamptz;
    v_name text;
BEGIN
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
