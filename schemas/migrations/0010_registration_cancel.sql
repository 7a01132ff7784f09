-- Cancelling a registration (POST /v1/registrations/{id}/cancel): the seat
-- goes back on sale, check-ins and session doors refuse the ticket from then
-- on, the attendee leaves the search index, and subscribed webhooks hear of
-- it, in one statement.

-- status: 'cancelled' (this call cancelled it), 'already_cancelled' or
-- 'not_found' (no such registration within p_scope_org; NULL: any
-- organizer). sessions: the event's session ids, whose cached door answers
-- for this registration the caller drops. p_jobs are enqueued with the
-- registration's id (usher_enqueue_templates); p_hook as in
-- usher_enqueue_webhooks.
CREATE FUNCTION usher_cancel_registration(p_registration bigint, p_scope_org bigint,
                                          p_jobs jsonb, p_hook jsonb,
                                          OUT status text, OUT event_id bigint,
                                          OUT sessions bigint[])
LANGUAGE plpgsql AS $$
DECLARE
    v_status usher_registration_status;
    v_ticket_type bigint;
    v_stripe smallint;
BEGIN
    SELECT r.status, r.event_id, r.ticket_type_id INTO v_status, event_id, v_ticket_type
    FROM registrations r JOIN events e ON e.id = r.event_id
    WHERE r.id = p_registration AND (p_scope_org IS NULL OR e.organizer_id = p_scope_org)
    FOR NO KEY UPDATE OF r; -- check-ins' KEY SHARE on the row goes on meanwhile
    IF NOT FOUND THEN
        status := 'not_found';
        event_id := NULL;
        RETURN;
    END IF;
    sessions := ARRAY(SELECT s.id FROM sessions s WHERE s.event_id = usher_cancel_registration.event_id
                      ORDER BY s.id);
    IF v_status = 'cancelled' THEN
        status := 'already_cancelled';
        RETURN;
    END IF;

    UPDATE registrations r SET status = 'cancelled' WHERE r.id = p_registration;
    -- The seat back on any stripe that sold one. Like usher_register, never
    -- wait on a stripe's lock (a sale holds it until its commit): take a
    -- free one, or look again shortly.
    LOOP
        SELECT s.stripe INTO v_stripe FROM ticket_stripes s
        WHERE s.ticket_type_id = v_ticket_type AND s.sold > 0
        ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED;
        EXIT WHEN FOUND;
        PERFORM 1 FROM ticket_stripes s WHERE s.ticket_type_id = v_ticket_type AND s.sold > 0;
        IF NOT FOUND THEN
            v_stripe := NULL; -- nothing counted as sold: nothing to give back
            EXIT;
        END IF;
        PERFORM pg_sleep(0.0005);
    END LOOP;
    IF v_stripe IS NOT NULL THEN
        UPDATE ticket_stripes s SET sold = s.sold - 1
        WHERE s.ticket_type_id = v_ticket_type AND s.stripe = v_stripe;
    END IF;
    PERFORM usher_enqueue_templates(p_jobs, p_registration);
    PERFORM usher_enqueue_webhooks(p_hook, event_id, 'registration.cancelled',
        jsonb_build_object('registration_id', p_registration, 'event_id', event_id,
                           'ticket_type_id', v_ticket_type));
    status := 'cancelled';
END $$;
