-- Removing what was made by mistake, and cancelling a session (issue 15):
-- an event that never sold a ticket can be deleted, with its ticket types,
-- sessions, materials and reports; a session can be deleted while its event
-- has no registrations, and cancelled at any time (its doors then refuse
-- every ticket). Each is audited (usher_audit, 0014).

ALTER TABLE sessions ADD COLUMN cancelled_at timestamptz;

-- status: 'deleted', 'not_found' (no such event within p_scope_org; NULL:
-- any) or 'has_sales' (a registration was ever made, even one cancelled
-- since: cancel the event instead). The ticket types are locked first, so
-- a sale in flight either commits before (and the event has sales) or
-- fails after (unknown event). p_event_jobs and p_session_jobs are the
-- index.document templates (events, sessions) that take the deleted rows
-- out of the search index.
CREATE FUNCTION usher_event_delete(p_event bigint, p_scope_org bigint, p_actor jsonb,
                                   p_event_jobs jsonb, p_session_jobs jsonb, OUT status text)
LANGUAGE plpgsql AS $$
DECLARE
    v_before jsonb;
    v_sessions bigint[];
BEGIN
    SELECT to_jsonb(e) INTO v_before FROM events e
    WHERE e.id = p_event AND (p_scope_org IS NULL OR e.organizer_id = p_scope_org)
    FOR UPDATE;
    IF NOT FOUND THEN
        status := 'not_found';
        RETURN;
    END IF;
    PERFORM 1 FROM ticket_types t WHERE t.event_id = p_event ORDER BY t.id FOR UPDATE;
    IF EXISTS (SELECT 1 FROM registrations r WHERE r.event_id = p_event) THEN
        status := 'has_sales';
        RETURN;
    END IF;
    v_sessions := ARRAY(SELECT s.id FROM sessions s WHERE s.event_id = p_event);
    DELETE FROM reports r WHERE r.event_id = p_event;
    DELETE FROM documents d WHERE d.event_id = p_event OR d.session_id = ANY (v_sessions);
    DELETE FROM sessions s WHERE s.event_id = p_event;
    DELETE FROM ticket_types t WHERE t.event_id = p_event; -- stripes cascade
    DELETE FROM analytics_minute a WHERE a.event_id = p_event;
    DELETE FROM scans s WHERE s.event_id = p_event;
    DELETE FROM api_tokens k WHERE k.event_id = p_event; -- scanners narrowed to it
    DELETE FROM events e WHERE e.id = p_event;
    PERFORM usher_enqueue_templates(p_event_jobs, p_event);
    PERFORM usher_enqueue_templates(p_session_jobs, s) FROM unnest(v_sessions) s;
    PERFORM usher_audit(p_actor, 'event.delete', 'event', p_event, v_before, NULL);
    status := 'deleted';
END $$;

-- status: 'deleted', 'not_found' or 'in_use' (its event has registrations:
-- their holders may have been let in; cancel the session instead). Its
-- materials go with it.
CREATE FUNCTION usher_session_delete(p_session bigint, p_scope_org bigint, p_actor jsonb,
                                     p_jobs jsonb, OUT status text)
LANGUAGE plpgsql AS $$
DECLARE
    v_before jsonb;
    v_event bigint;
BEGIN
    SELECT to_jsonb(s), s.event_id INTO v_before, v_event
    FROM sessions s JOIN events e ON e.id = s.event_id
    WHERE s.id = p_session AND (p_scope_org IS NULL OR e.organizer_id = p_scope_org)
    FOR UPDATE OF s;
    IF NOT FOUND THEN
        status := 'not_found';
        RETURN;
    END IF;
    PERFORM 1 FROM ticket_types t WHERE t.event_id = v_event ORDER BY t.id FOR UPDATE;
    IF EXISTS (SELECT 1 FROM registrations r WHERE r.event_id = v_event) THEN
        status := 'in_use';
        RETURN;
    END IF;
    DELETE FROM documents d WHERE d.session_id = p_session;
    DELETE FROM sessions s WHERE s.id = p_session;
    PERFORM usher_enqueue_templates(p_jobs, p_session);
    PERFORM usher_audit(p_actor, 'session.delete', 'session', p_session, v_before, NULL);
    status := 'deleted';
END $$;

-- status: 'cancelled' (this call), 'already_cancelled' or 'not_found'.
CREATE FUNCTION usher_session_cancel(p_session bigint, p_scope_org bigint, p_actor jsonb,
                                     p_jobs jsonb, OUT status text, OUT event_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_before jsonb;
    v_after jsonb;
BEGIN
    SELECT to_jsonb(s), s.event_id INTO v_before, event_id
    FROM sessions s JOIN events e ON e.id = s.event_id
    WHERE s.id = p_session AND (p_scope_org IS NULL OR e.organizer_id = p_scope_org)
    FOR UPDATE OF s;
    IF NOT FOUND THEN
        status := 'not_found';
        RETURN;
    END IF;
    IF v_before ->> 'cancelled_at' IS NOT NULL THEN
        status := 'already_cancelled';
        RETURN;
    END IF;
    UPDATE sessions s SET cancelled_at = now() WHERE s.id = p_session
    RETURNING to_jsonb(s) INTO v_after;
    PERFORM usher_enqueue_templates(p_jobs, p_session);
    PERFORM usher_audit(p_actor, 'session.cancel', 'session', p_session, v_before, v_after);
    status := 'cancelled';
END $$;
