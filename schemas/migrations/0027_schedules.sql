-- Schedules anchored to an event or a session (issue 15): "reminder 24 h
-- before the event", "survey 2 h after the session ends", "door list to the
-- organizer 1 h before doors". A schedule is an offset from its anchor (the
-- start or the end of its event, or of one of the event's sessions), and a
-- schedule.fire job due at anchor + offset (workers/handlers/schedule_fire.c).
--
--   * The anchor moves (PATCH of the event or the session): a trigger moves
--     the due time and the job's run_at with it, in the same transaction.
--   * The event or the session is cancelled: a trigger cancels the schedule
--     and its job. Deleted: the schedule goes with it (cascade), and a
--     trigger cancels its job.
--   * The job runs: usher_schedule_fire locks the event, the session and the
--     schedule (the order every writer here takes them in), and fires only
--     a schedule still 'scheduled' whose job is this one and whose due time
--     has come, marking it 'fired' in the same transaction as what it does
--     (a message to the attendees through usher_message_create, 0022's, or
--     a report for the door list) and as the job's completion. However many
--     workers, hosts, retries or stray jobs, a schedule fires at most once.
--     A job that finds its schedule moved later (the move raced its claim)
--     leaves a new job at the new time instead.

-- The engine's SQL side (0012) for a job that is waiting: moved to another
-- run_at, or cancelled as engine/admin.c cancels one. A running, dead or
-- cancelled job is left alone. True when the job changed.
CREATE FUNCTION usher_job_move(p_job bigint, p_run_at timestamptz) RETURNS boolean
LANGUAGE sql AS $$
    WITH m AS (UPDATE usher_jobs SET run_at = p_run_at
               WHERE id = p_job AND state = 'available' RETURNING 1)
    SELECT count(*) > 0 FROM m
$$;

CREATE FUNCTION usher_job_cancel(p_job bigint) RETURNS boolean
LANGUAGE sql AS $$
    WITH c AS (UPDATE usher_jobs SET state = 'cancelled', finished_at = now()
               WHERE id = p_job AND state = 'available' RETURNING 1)
    SELECT count(*) > 0 FROM c
$$;

-- action 'reminder': a message to the attendees (of the event, or of the
-- session's event for a session's schedule), with subject and body given or
-- written at firing time from the event's name, time, zone and venue;
-- 'message': the same with the organizer's subject and body (a survey link);
-- 'door_list': the attendee report (format csv or pdf) for the organizer.
-- state: 'scheduled' until it fires ('fired'), is skipped ('skipped': found
-- too late, reason says why) or cancelled ('cancelled': its event or
-- session was). job_id is the live schedule.fire job; generation counts
-- the jobs it had (their unique key is schedule:ID:GENERATION).
CREATE TABLE event_schedules (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    bigint NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    session_id  bigint REFERENCES sessions (id) ON DELETE CASCADE,
    anchor      text NOT NULL CHECK (anchor IN ('start', 'end')),
    offset_s    integer NOT NULL CHECK (offset_s BETWEEN -31622400 AND 31622400),
    action      text NOT NULL CHECK (action IN ('reminder', 'message', 'door_list')),
    subject     text CHECK (length(subject) BETWEEN 1 AND 200),
    body        text CHECK (length(body) <= 20000),
    format      text CHECK (format IN ('csv', 'pdf')),
    state       text NOT NULL DEFAULT 'scheduled'
                CHECK (state IN ('scheduled', 'fired', 'skipped', 'cancelled')),
    due_at      timestamptz NOT NULL,
    job_id      bigint,
    generation  integer NOT NULL DEFAULT 0,
    fired_at    timestamptz,
    message_id  bigint REFERENCES event_messages (id) ON DELETE SET NULL,
    report_id   bigint REFERENCES reports (id) ON DELETE SET NULL,
    reason      text,
    created_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (action <> 'message' OR (subject IS NOT NULL AND body IS NOT NULL)),
    CHECK ((action = 'door_list') = (format IS NOT NULL))
);
CREATE INDEX event_schedules_event ON event_schedules (event_id, id);
CREATE INDEX event_schedules_session ON event_schedules (session_id) WHERE session_id IS NOT NULL;

-- The time s's anchor is at now: its session's start or end, else its event's.
CREATE FUNCTION usher_schedule_anchor_at(s event_schedules) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE s.anchor WHEN 'start' THEN a.starts_at ELSE a.ends_at END
    FROM (SELECT x.starts_at, x.ends_at FROM sessions x WHERE x.id = s.session_id
          UNION ALL
          SELECT e.starts_at, e.ends_at FROM events e
          WHERE e.id = s.event_id AND s.session_id IS NULL) a
$$;

CREATE FUNCTION usher_schedule_due(s event_schedules) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT usher_schedule_anchor_at(s) + s.offset_s * interval '1 second'
$$;

-- A schedule as the API shows it, with its job while it lives.
CREATE FUNCTION usher_schedule_json(p_schedule bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', s.id, 'event_id', s.event_id, 'session_id', s.session_id, 'anchor', s.anchor,
        'offset_s', s.offset_s, 'action', s.action, 'subject', s.subject, 'body', s.body,
        'format', s.format, 'state', s.state, 'due_at', s.due_at, 'fired_at', s.fired_at,
        'reason', s.reason, 'message_id', s.message_id, 'report_id', s.report_id,
        'job', (SELECT jsonb_build_object('id', j.id, 'state', j.state, 'run_at', j.run_at)
                FROM usher_jobs j WHERE j.id = s.job_id),
        'created_by', s.created_by, 'created_at', s.created_at)
    FROM event_schedules s WHERE s.id = p_schedule
$$;

-- Moves the scheduled schedules anchored to event p_event itself (p_session
-- NULL) or to session p_session, and their jobs, to their due times now.
CREATE FUNCTION usher_schedules_move(p_event bigint, p_session bigint) RETURNS integer
LANGUAGE sql AS $$
    WITH moved AS (
        UPDATE event_schedules s SET due_at = usher_schedule_due(s)
        WHERE s.state = 'scheduled'
          AND CASE WHEN p_session IS NULL THEN s.event_id = p_event AND s.session_id IS NULL
                   ELSE s.session_id = p_session END
        RETURNING s.job_id, s.due_at)
    SELECT count(*) FILTER (WHERE usher_job_move(job_id, due_at))::integer FROM moved
$$;

-- Cancels the scheduled schedules of event p_event (all of them, its
-- sessions' too) or of session p_session, and their jobs.
CREATE FUNCTION usher_schedules_cancel(p_event bigint, p_session bigint, p_reason text)
RETURNS integer
LANGUAGE sql AS $$
    WITH gone AS (
        UPDATE event_schedules s SET state = 'cancelled', reason = p_reason
        WHERE s.state = 'scheduled'
          AND CASE WHEN p_session IS NULL THEN s.event_id = p_event
                   ELSE s.session_id = p_session END
        RETURNING s.job_id)
    SELECT count(*) FILTER (WHERE usher_job_cancel(job_id))::integer FROM gone
$$;

CREATE FUNCTION usher_schedules_follow_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.cancelled_at IS NOT NULL AND OLD.cancelled_at IS NULL THEN
        PERFORM usher_schedules_cancel(NEW.id, NULL, 'the event was cancelled');
    ELSIF NEW.starts_at IS DISTINCT FROM OLD.starts_at OR NEW.ends_at IS DISTINCT FROM OLD.ends_at
    THEN
        PERFORM usher_schedules_move(NEW.id, NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_schedules AFTER UPDATE OF starts_at, ends_at, cancelled_at ON events
    FOR EACH ROW EXECUTE FUNCTION usher_schedules_follow_event();

CREATE FUNCTION usher_schedules_follow_session() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.cancelled_at IS NOT NULL AND OLD.cancelled_at IS NULL THEN
        PERFORM usher_schedules_cancel(NEW.event_id, NEW.id, 'the session was cancelled');
    ELSIF NEW.starts_at IS DISTINCT FROM OLD.starts_at OR NEW.ends_at IS DISTINCT FROM OLD.ends_at
    THEN
        PERFORM usher_schedules_move(NEW.event_id, NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_schedules AFTER UPDATE OF starts_at, ends_at, cancelled_at ON sessions
    FOR EACH ROW EXECUTE FUNCTION usher_schedules_follow_session();

-- A schedule deleted (by the API, or with its event or session) takes its
-- waiting job with it.
CREATE FUNCTION usher_schedule_gone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'scheduled' AND OLD.job_id IS NOT NULL THEN
        PERFORM usher_job_cancel(OLD.job_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER event_schedules_gone AFTER DELETE ON event_schedules
    FOR EACH ROW EXECUTE FUNCTION usher_schedule_gone();

-- Enqueues s's next schedule.fire job (template p_fire, its payload's
-- schedule_id filled in) at s's due time and records it. Returns the job.
-- The job works for the event's organizer: its partition key (0024's,
-- whose trigger knows no schedule_id) is set here, so the fair claim
-- serves it in that organizer's turn.
CREATE FUNCTION usher_schedule_arm(p_schedule bigint, p_fire jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_gen integer;
    v_due timestamptz;
    v_org bigint;
    v_job bigint;
BEGIN
    UPDATE event_schedules s SET generation = s.generation + 1
    WHERE s.id = p_schedule RETURNING s.generation, s.due_at INTO v_gen, v_due;
    SELECT e.organizer_id INTO v_org
    FROM event_schedules s JOIN events e ON e.id = s.event_id WHERE s.id = p_schedule;
    SELECT j.id INTO v_job FROM usher_enqueue_templates(jsonb_build_array(p_fire || jsonb_build_object(
        'unique_key', 'schedule:' || p_schedule || ':' || v_gen,
        'run_at_us', (extract(epoch FROM v_due) * 1000000)::int8,
        'partition_key', 'org:' || v_org)), p_schedule) j;
    UPDATE event_schedules s SET job_id = v_job WHERE s.id = p_schedule;
    RETURN v_job;
END $$;

-- Creates a schedule of event p_event (within organizer p_scope_org; NULL:
-- any), anchored to session p_session if not NULL, with its first job
-- (template p_fire), audited for p_actor. The event (and session) are
-- share-locked, so a move or a cancellation in flight either committed
-- before (and the due time is the new one) or waits for this one (and its
-- trigger sees this schedule). status: 'created', 'not_found', 'unknown_session',
-- 'event_cancelled', 'session_cancelled', or 'past' (the due time, in
-- schedule's due_at, has gone by).
CREATE FUNCTION usher_schedule_create(p_event bigint, p_scope_org bigint, p_session bigint,
                                      p_anchor text, p_offset_s integer, p_action text,
                                      p_subject text, p_body text, p_format text,
                                      p_created_by text, p_fire jsonb, p_actor jsonb,
                                      OUT status text, OUT schedule jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_event events%ROWTYPE;
    v_session sessions%ROWTYPE;
    v_new event_schedules%ROWTYPE;
    v_due timestamptz;
BEGIN
    SELECT * INTO v_event FROM events e
    WHERE e.id = p_event AND (p_scope_org IS NULL OR e.organizer_id = p_scope_org) FOR SHARE;
    IF NOT FOUND THEN
        status := 'not_found';
        RETURN;
    END IF;
    IF p_session IS NOT NULL THEN
        SELECT * INTO v_session FROM sessions x WHERE x.id = p_session AND x.event_id = p_event
        FOR SHARE;
        IF NOT FOUND THEN
            status := 'unknown_session';
            RETURN;
        END IF;
    END IF;
    IF v_event.cancelled_at IS NOT NULL THEN
        status := 'event_cancelled';
        RETURN;
    END IF;
    IF v_session.cancelled_at IS NOT NULL THEN
        status := 'session_cancelled';
        RETURN;
    END IF;
    v_due := CASE WHEN p_session IS NULL
                  THEN CASE p_anchor WHEN 'start' THEN v_event.starts_at ELSE v_event.ends_at END
                  ELSE CASE p_anchor WHEN 'start' THEN v_session.starts_at ELSE v_session.ends_at END
             END + p_offset_s * interval '1 second';
    IF v_due <= now() THEN
        status := 'past';
        schedule := jsonb_build_object('due_at', v_due);
        RETURN;
    END IF;
    INSERT INTO event_schedules (event_id, session_id, anchor, offset_s, action, subject, body,
                                 format, due_at, created_by)
    VALUES (p_event, p_session, p_anchor, p_offset_s, p_action, p_subject, p_body,
            CASE WHEN p_action = 'door_list' THEN coalesce(p_format, 'pdf') END, v_due,
            coalesce(p_created_by, ''))
    RETURNING * INTO v_new;
    PERFORM usher_schedule_arm(v_new.id, p_fire);
    schedule := usher_schedule_json(v_new.id);
    PERFORM usher_audit(p_actor, 'schedule.create', 'schedule', v_new.id, NULL, schedule);
    status := 'created';
END $$;

-- Deletes schedule p_schedule (of an event of p_scope_org; NULL: any),
-- audited; its waiting job is cancelled by the trigger. status: 'deleted'
-- or 'not_found'.
CREATE FUNCTION usher_schedule_delete(p_schedule bigint, p_scope_org bigint, p_actor jsonb,
                                      OUT status text)
LANGUAGE plpgsql AS $$
DECLARE
    v_before jsonb;
BEGIN
    PERFORM 1 FROM events e
    WHERE e.id = (SELECT s.event_id FROM event_schedules s WHERE s.id = p_schedule)
      AND (p_scope_org IS NULL OR e.organizer_id = p_scope_org) FOR SHARE;
    IF FOUND THEN
        PERFORM 1 FROM event_schedules s WHERE s.id = p_schedule FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        status := 'not_found';
        RETURN;
    END IF;
    v_before := usher_schedule_json(p_schedule);
    DELETE FROM event_schedules s WHERE s.id = p_schedule;
    PERFORM usher_audit(p_actor, 'schedule.delete', 'schedule', p_schedule, v_before, NULL);
    status := 'deleted';
END $$;

-- The reminder's words when the organizer gave none, in the event's
-- language (0021: en, de or fr), when and where in its time zone as the
-- mail templates write times (usher_format_time): "Reminder: NAME" and
-- "NAME starts on Sat 04 May 2030, 15:00 (Europe/Berlin), Hall 1.";
-- "Erinnerung: ..." / "... beginnt am ..."; "Rappel : ..." / "... commence
-- le ...". A session's reminder names the session and its event.
CREATE FUNCTION usher_schedule_reminder_text(e events, x sessions, OUT subject text,
                                             OUT body text)
LANGUAGE sql STABLE AS $$
    SELECT left(w.reminder || coalesce(x.title || ' (' || e.name || ')', e.name), 200),
           coalesce(x.title || ' (' || e.name || ')', e.name) || w.starts
           || usher_format_time(coalesce(x.starts_at, e.starts_at), e.timezone, e.locale)
           || CASE WHEN e.venue <> '' THEN ', ' || e.venue ELSE '' END || '.'
    FROM (SELECT CASE e.locale WHEN 'de' THEN 'Erinnerung: ' WHEN 'fr' THEN 'Rappel : '
                               ELSE 'Reminder: ' END AS reminder,
                 CASE e.locale WHEN 'de' THEN ' beginnt am ' WHEN 'fr' THEN ' commence le '
                               ELSE ' starts on ' END AS starts) w
$$;

-- Fires schedule p_schedule from its job p_job, in the caller's
-- transaction (with the job's completion). p_self is the schedule.fire
-- template, p_fanout message.fanout's (usher_message_create), p_hook
-- notify.webhook's (schedule.fired, to the organizer's endpoints), and a
-- schedule found more than p_late_limit_s past its due time is skipped, as
-- is one due before its anchor once the anchor has passed (a reminder for
-- an event that has begun). status:
--   'gone'      no such schedule (deleted): nothing to do;
--   'stale'     it is no longer scheduled, or another job is its own;
--   'cancelled' its event or session is cancelled (marked so);
--   'moved'     its due time is later than now: a new job waits for it;
--   'skipped'   too late (marked so, reason says why);
--   'fired'     done; message_id is the message sent; for a door list the
--               caller creates the report and calls usher_schedule_reported.
CREATE FUNCTION usher_schedule_fire(p_schedule bigint, p_job bigint, p_self jsonb,
                                    p_fanout jsonb, p_hook jsonb, p_late_limit_s integer,
                                    OUT status text, OUT action text, OUT event_id bigint,
                                    OUT message_id bigint, OUT format text)
LANGUAGE plpgsql AS $$
DECLARE
    s event_schedules%ROWTYPE;
    e events%ROWTYPE;
    x sessions%ROWTYPE;
    v_session bigint;
    v_due timestamptz;
    v_anchor timestamptz;
    v_subject text;
    v_body text;
    v_status text;
BEGIN
    SELECT t.event_id, t.session_id INTO event_id, v_session
    FROM event_schedules t WHERE t.id = p_schedule;
    IF NOT FOUND THEN
        status := 'gone';
        RETURN;
    END IF;
    SELECT * INTO e FROM events t WHERE t.id = event_id FOR NO KEY UPDATE;
    IF v_session IS NOT NULL THEN
        SELECT * INTO x FROM sessions t WHERE t.id = v_session FOR SHARE;
    END IF;
    SELECT * INTO s FROM event_schedules t WHERE t.id = p_schedule FOR UPDATE;
    IF NOT FOUND THEN
        status := 'gone';
        RETURN;
    END IF;
    action := s.action;
    format := s.format;
    IF s.state <> 'scheduled' OR s.job_id IS DISTINCT FROM p_job THEN
        status := 'stale';
        RETURN;
    END IF;
    IF e.cancelled_at IS NOT NULL OR x.cancelled_at IS NOT NULL THEN
        UPDATE event_schedules t SET state = 'cancelled',
            reason = CASE WHEN e.cancelled_at IS NOT NULL THEN 'the event was cancelled'
                          ELSE 'the session was cancelled' END
        WHERE t.id = p_schedule;
        status := 'cancelled';
        RETURN;
    END IF;
    v_anchor := usher_schedule_anchor_at(s);
    v_due := v_anchor + s.offset_s * interval '1 second';
    IF v_due > now() THEN
        UPDATE event_schedules t SET due_at = v_due WHERE t.id = p_schedule;
        PERFORM usher_schedule_arm(p_schedule, p_self);
        status := 'moved';
        RETURN;
    END IF;
    IF (s.offset_s < 0 AND now() >= v_anchor) OR now() > v_due + p_late_limit_s * interval '1 second'
    THEN
        UPDATE event_schedules t SET state = 'skipped', due_at = v_due,
            reason = CASE WHEN s.offset_s < 0 AND now() >= v_anchor
                          THEN 'its anchor had passed when it came to fire'
                          ELSE 'more than ' || p_late_limit_s || ' s late' END
        WHERE t.id = p_schedule;
        status := 'skipped';
        RETURN;
    END IF;
    IF s.action IN ('reminder', 'message') THEN
        SELECT r.subject, r.body INTO v_subject, v_body FROM usher_schedule_reminder_text(e, x) r;
        SELECT m.status, m.message_id INTO v_status, message_id
        FROM usher_message_create(e.id, NULL, 'message', coalesce(s.subject, v_subject),
                                  coalesce(s.body, v_body),
                                  CASE WHEN s.session_id IS NULL THEN '{}'::jsonb
                                       ELSE jsonb_build_object('session_ids',
                                                               jsonb_build_array(s.session_id))
                                  END,
                                  'schedule:' || s.id, p_fanout, NULL) m;
        IF v_status <> 'created' THEN
            RAISE EXCEPTION 'schedule %: the message was refused (%)', s.id, v_status;
        END IF;
    END IF;
    UPDATE event_schedules t SET state = 'fired', fired_at = now(), due_at = v_due,
        message_id = usher_schedule_fire.message_id
    WHERE t.id = p_schedule;
    IF s.action <> 'door_list' THEN
        PERFORM usher_schedule_reported(p_schedule, NULL, p_hook);
    END IF;
    status := 'fired';
END $$;

-- After a fired schedule's work: records the door list's report (p_report,
-- NULL for a message) and tells the organizer's endpoints (schedule.fired).
CREATE FUNCTION usher_schedule_reported(p_schedule bigint, p_report bigint, p_hook jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s event_schedules%ROWTYPE;
BEGIN
    UPDATE event_schedules t SET report_id = coalesce(p_report, t.report_id)
    WHERE t.id = p_schedule RETURNING * INTO s;
    PERFORM usher_enqueue_webhooks(p_hook, s.event_id, 'schedule.fired', jsonb_build_object(
        'schedule_id', s.id, 'event_id', s.event_id, 'session_id', s.session_id,
        'action', s.action, 'due_at', s.due_at, 'message_id', s.message_id,
        'report_id', s.report_id,
        'report', CASE WHEN s.report_id IS NOT NULL THEN '/v1/reports/' || s.report_id END));
END $$;
