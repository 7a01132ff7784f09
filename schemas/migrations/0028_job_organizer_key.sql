-- One answer to "whose job is this": the partition key. 0024's trigger sets
-- 'org:<organizer>' on every job whose payload names an organizer's thing
-- (usher_job_organizer_of, which knows messages and index documents too),
-- and 0026 had written a second, narrower reader of the same payload ids
-- (usher_json_id, usher_job_organizer) for the admins' organizer filter.
-- The filter now compares partition_key (engine/admin.c), an indexed column
-- instead of up to four lookups per row; the jobs enqueued before 0024 get
-- their key here, so the filter still finds them.
UPDATE usher_jobs j
SET partition_key = 'org:' || o.org
FROM (SELECT id, usher_job_organizer_of(payload, kind) AS org
      FROM usher_jobs
      WHERE partition_key = ''
        AND (payload ?| ARRAY['event_id', 'registration_id', 'endpoint_id', 'report_id',
                              'message_id']
             OR kind = 'index.document')) o
WHERE j.id = o.id AND o.org IS NOT NULL;

DROP FUNCTION usher_job_organizer(jsonb);
DROP FUNCTION usher_json_id(jsonb, text);
