-- The X-Request-Id of the HTTP request that caused a job (issue 16), so
-- that one grep follows a registration from the access log to the worker's
-- lines of its ticket and of the email that ticket chained. Kept beside the
-- payload, not in it: payload schemas (schemas/jobs/) stay the handlers'
-- contract. NULL for jobs no request caused (periodic jobs, usherctl).
-- A column without a default: adding it rewrites nothing.
ALTER TABLE usher_jobs ADD COLUMN request_id text
    CHECK (request_id IS NULL OR length(request_id) BETWEEN 1 AND 64);

-- 0012's function, with a template's "request_id" written to the column.
CREATE OR REPLACE FUNCTION usher_enqueue_templates(p_jobs jsonb, p_id bigint DEFAULT NULL)
RETURNS TABLE (id bigint, queue text, unique_key text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    INSERT INTO usher_jobs AS u (queue, kind, priority, payload, max_attempts, timeout_ms,
                                 run_at, unique_key, request_id)
    SELECT j ->> 'queue', j ->> 'kind', (j ->> 'priority')::int2,
           usher_template_payload(j, p_id),
           (j ->> 'max_attempts')::int4, (j ->> 'timeout_ms')::int4,
           CASE WHEN j ->> 'run_at_us' IS NOT NULL
                THEN 'epoch'::timestamptz + (j ->> 'run_at_us')::int8 * interval '1 microsecond'
                ELSE now() + coalesce((j ->> 'delay_ms')::int8, 0) * interval '1 millisecond'
           END,
           j ->> 'unique_key', j ->> 'request_id'
    FROM jsonb_array_elements(p_jobs) WITH ORDINALITY AS e(j, o)
    ORDER BY o
    ON CONFLICT (queue, unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING
    RETURNING u.id, u.queue, u.unique_key;
END $$;
