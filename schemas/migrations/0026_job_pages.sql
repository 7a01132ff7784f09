-- The dashboard's job pages (issue 16): which job chained which, and whose
-- work a job is. How long each attempt ran needs no schema: engine/fate.c
-- writes the attempt's start (started_at) beside its end (at) in the job's
-- errors history, which goes with the job when it is deleted or pruned.

-- The job whose handler enqueued this one (a ticket's pdf.ticket job for its
-- confirmation email), if any. No foreign key: the parent usually completed,
-- and so was deleted, in the transaction that enqueued its child. The index
-- holds only chained jobs and none of its columns ever changes.
ALTER TABLE usher_jobs ADD COLUMN parent_id bigint;
CREATE INDEX usher_jobs_parent ON usher_jobs (parent_id) WHERE parent_id IS NOT NULL;

-- 0020's usher_enqueue_templates (0012's one INSERT of the SQL side, with
-- 0019's request_id and 0020's partition_key and deadline_ms), with a
-- template's parent_id (the enqueuing job) written to the new column; the
-- rules are unchanged.
CREATE OR REPLACE FUNCTION usher_enqueue_templates(p_jobs jsonb, p_id bigint DEFAULT NULL)
RETURNS TABLE (id bigint, queue text, unique_key text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    INSERT INTO usher_jobs AS u (queue, kind, priority, payload, max_attempts, timeout_ms,
                                 run_at, unique_key, request_id, partition_key, deadline,
                                 parent_id)
    SELECT j ->> 'queue', j ->> 'kind', (j ->> 'priority')::int2,
           usher_template_payload(j, p_id),
           (j ->> 'max_attempts')::int4, (j ->> 'timeout_ms')::int4,
           CASE WHEN j ->> 'run_at_us' IS NOT NULL
                THEN 'epoch'::timestamptz + (j ->> 'run_at_us')::int8 * interval '1 microsecond'
                ELSE now() + coalesce((j ->> 'delay_ms')::int8, 0) * interval '1 millisecond'
           END,
           j ->> 'unique_key', j ->> 'request_id',
           coalesce(j ->> 'partition_key', ''),
           now() + (j ->> 'deadline_ms')::int8 * interval '1 millisecond',
           (j ->> 'parent_id')::int8
    FROM jsonb_array_elements(p_jobs) WITH ORDINALITY AS e(j, o)
    ORDER BY o
    ON CONFLICT (queue, unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING
    RETURNING u.id, u.queue, u.unique_key;
END $$;

-- A payload's id field k when it is a whole number that fits a bigint, else NULL
-- (payloads are checked against their kind's schema, but not every kind has one).
CREATE FUNCTION usher_json_id(p jsonb, k text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(p -> k) = 'number' AND (p ->> k) ~ '^[1-9][0-9]{0,17}$'
                THEN (p ->> k)::bigint END
$$;

-- The organizer whose work a job is, read from what its payload names: an
-- event (event_id), a registration, a webhook endpoint or a report; NULL when
-- it names none of them (a periodic job over every event, a mail to an
-- address). The admins' job list filters on it (engine/admin.c).
CREATE FUNCTION usher_job_organizer(p jsonb) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (SELECT e.organizer_id FROM events e WHERE e.id = usher_json_id(p, 'event_id')),
        (SELECT e.organizer_id FROM registrations r JOIN events e ON e.id = r.event_id
          WHERE r.id = usher_json_id(p, 'registration_id')),
        (SELECT w.organizer_id FROM webhook_endpoints w
          WHERE w.id = usher_json_id(p, 'endpoint_id')),
        (SELECT e.organizer_id FROM reports x JOIN events e ON e.id = x.event_id
          WHERE x.id = usher_json_id(p, 'report_id')))
$$;
