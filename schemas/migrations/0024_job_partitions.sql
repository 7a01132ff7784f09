-- Every job that works for an organizer carries its partition key
-- ('org:ORGANIZER'), so the fair claim of 0020 (usher_claim) interleaves
-- organizers: one organizer's 50,000-message announcement does not stand in
-- front of another organizer's confirmations (issue 15, "Beyond every
-- queue", item 1).
--
-- A job's organizer follows from what its payload names: an event
-- (event_id), a registration, a webhook endpoint, a report, a message to
-- attendees (message_id), or for index.document the event, session or
-- attendee it indexes. Rather than each of the many statements that enqueue
-- (the API's, the SQL functions of 0007..0022, the handlers' chains)
-- passing the key, a trigger fills it in on insert when the enqueuer gave
-- none. An enqueuer that knows the key sets it and the trigger does nothing
-- (pdf.ticket's confirmation email takes its ticket job's; a benchmark sets
-- one key for all to turn fairness off). The WHEN clause is checked without
-- calling the function, so a job whose payload names none of these (the
-- test kinds, a periodic job over every event, a mail to an address) costs
-- one jsonb key test. The lookups never raise: an id that is not a
-- whole number or names no row leaves the key '' (nobody in particular).

-- A payload's field k when it is a whole number that fits a bigint, else
-- NULL (not every kind has a schema that the enqueue checks).
CREATE FUNCTION usher_payload_bigint(p jsonb, k text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(p -> k) = 'number' AND (p ->> k) ~ '^[1-9][0-9]{0,17}$'
                THEN (p ->> k)::bigint END
$$;

-- The organizer of a payload of kind, or NULL. VOLATILE (the default) on
-- purpose: each lookup takes a fresh snapshot, so it sees the registration
-- or message that the enqueuing statement inserted in an earlier part of
-- itself (a data-modifying WITH before usher_enqueue_templates).
CREATE FUNCTION usher_job_organizer_of(p jsonb, p_kind text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_org bigint;
    v_event bigint := usher_payload_bigint(p, 'event_id');
    v_reg bigint := usher_payload_bigint(p, 'registration_id');
    v_endpoint bigint := usher_payload_bigint(p, 'endpoint_id');
    v_report bigint := usher_payload_bigint(p, 'report_id');
    v_message bigint := usher_payload_bigint(p, 'message_id');
    v_id bigint := usher_payload_bigint(p, 'id');
BEGIN
    IF p_kind = 'index.document' AND v_id IS NOT NULL THEN
        CASE p ->> 'type'
            WHEN 'event' THEN v_event := v_id;
            WHEN 'session' THEN SELECT s.event_id INTO v_event FROM sessions s WHERE s.id = v_id;
            WHEN 'attendee' THEN v_reg := v_id;
            ELSE NULL;
        END CASE;
    END IF;
    IF v_event IS NOT NULL THEN
        SELECT e.organizer_id INTO v_org FROM events e WHERE e.id = v_event;
    END IF;
    IF v_org IS NULL AND v_reg IS NOT NULL THEN
        SELECT e.organizer_id INTO v_org FROM registrations r JOIN events e ON e.id = r.event_id
        WHERE r.id = v_reg;
    END IF;
    IF v_org IS NULL AND v_endpoint IS NOT NULL THEN
        SELECT w.organizer_id INTO v_org FROM webhook_endpoints w WHERE w.id = v_endpoint;
    END IF;
    IF v_org IS NULL AND v_report IS NOT NULL THEN
        SELECT e.organizer_id INTO v_org FROM reports x JOIN events e ON e.id = x.event_id
        WHERE x.id = v_report;
    END IF;
    IF v_org IS NULL AND v_message IS NOT NULL THEN
        SELECT e.organizer_id INTO v_org FROM event_messages m JOIN events e ON e.id = m.event_id
        WHERE m.id = v_message;
    END IF;
    RETURN v_org;
END $$;

CREATE FUNCTION usher_jobs_partition() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_org bigint := usher_job_organizer_of(NEW.payload, NEW.kind);
BEGIN
    IF v_org IS NOT NULL THEN
        NEW.partition_key := 'org:' || v_org;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER usher_jobs_partition BEFORE INSERT ON usher_jobs
    FOR EACH ROW
    WHEN (NEW.partition_key = ''
          AND (NEW.payload ?| ARRAY['event_id', 'registration_id', 'endpoint_id', 'report_id',
                                    'message_id']
               OR NEW.kind = 'index.document'))
    EXECUTE FUNCTION usher_jobs_partition();
