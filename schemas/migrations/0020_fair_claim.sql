-- Fair and deadline-aware claims (issue 15, "Beyond every queue", items 1
-- and 3). engine/claim.c has the claim statement that reads these.
--
-- partition_key: who a job works for (an organizer: 'org:42'); '' is a job
-- that works for nobody in particular. Within a queue and a priority the
-- claim serves the partitions that have runnable jobs in turn, so one
-- organizer's 50,000 messages do not stand in front of another organizer's
-- confirmations. A constant default: adding the column rewrites nothing.
--
-- deadline: when the job is worthless or late. A job whose deadline is
-- near ([engine] deadline_lead_ms) is claimed before the other jobs of its
-- priority; one claimed after its deadline is counted
-- (usher_jobs_deadline_missed_total) and, for the kinds that say so
-- ([kind.NAME] deadline_drop), cancelled instead of run.
ALTER TABLE usher_jobs
    ADD COLUMN partition_key text NOT NULL DEFAULT '',
    ADD COLUMN deadline timestamptz;

-- The fair claim walks this index: the distinct (priority, partition)
-- pairs of a queue, one probe each, then each pair's oldest runnable jobs.
-- usher_jobs_claim (queue, priority, run_at, id) stays for the readers that
-- want a queue's oldest job or its depth without partitions.
CREATE INDEX usher_jobs_claim_fair ON usher_jobs (queue, priority, partition_key, run_at, id)
    WHERE state = 'available';

-- Jobs with a deadline, per priority in deadline order: the claim's first
-- look (is any of them near its deadline?) costs a probe per priority.
-- Jobs without one never enter it.
CREATE INDEX usher_jobs_deadline ON usher_jobs (queue, priority, deadline, id)
    WHERE state = 'available' AND deadline IS NOT NULL;

-- As in 0019, with two more template fields: partition_key (text) and
-- deadline_ms (the deadline, that long after now()).
CREATE OR REPLACE FUNCTION usher_enqueue_templates(p_jobs jsonb, p_id bigint DEFAULT NULL)
RETURNS TABLE (id bigint, queue text, unique_key text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    INSERT INTO usher_jobs AS u (queue, kind, priority, payload, max_attempts, timeout_ms,
                                 run_at, unique_key, request_id, partition_key, deadline)
    SELECT j ->> 'queue', j ->> 'kind', (j ->> 'priority')::int2,
           usher_template_payload(j, p_id),
           (j ->> 'max_attempts')::int4, (j ->> 'timeout_ms')::int4,
           CASE WHEN j ->> 'run_at_us' IS NOT NULL
                THEN 'epoch'::timestamptz + (j ->> 'run_at_us')::int8 * interval '1 microsecond'
                ELSE now() + coalesce((j ->> 'delay_ms')::int8, 0) * interval '1 millisecond'
           END,
           j ->> 'unique_key', j ->> 'request_id',
           coalesce(j ->> 'partition_key', ''),
           now() + (j ->> 'deadline_ms')::int8 * interval '1 millisecond'
    FROM jsonb_array_elements(p_jobs) WITH ORDINALITY AS e(j, o)
    ORDER BY o
    ON CONFLICT (queue, unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING
    RETURNING u.id, u.queue, u.unique_key;
END $$;

-- The claim (engine/claim.c calls it for every batch). PL/pgSQL so that
-- each step is a small statement whose plan is cached once per connection
-- (force_generic_plan: a custom plan per call would cost more to plan than
-- to run), and so that each step knows what the ones before it took:
--
--   walk    the (priority, partition) pairs of each unpaused queue, one
--           probe of usher_jobs_claim_fair per pair (a loose index scan),
--           at most 100 per queue; a pair is ready when its oldest job's
--           run_at has come; the best priority is the highest ready one;
--   urgent  jobs of the best priority (or higher) whose deadline is within
--           p_lead_ms (usher_jobs_deadline), earliest deadline first;
--   fair    the ready pairs of the best priority (as many as there is room
--           for, picked at random when there are more) share the room
--           left: ceil(room / pairs) oldest jobs each, interleaved in the
--           batch round by round (one of each pair, then the next...);
--   fill    the room a pair with fewer jobs left unused goes to the ready
--           pairs that have more, best priority first, in random order;
--   fifo    only when a walk stopped at 100 pairs: what room is left, in
--           plain (priority, run_at, id) order (usher_jobs_claim), so no
--           partition beyond the walk waits for ever.
--
-- Every step locks with SKIP LOCKED as it reads, so concurrent claimers
-- pass each other, and skips the rows the steps before it took. The rows
-- are then leased in one UPDATE; a row past its deadline whose kind is in
-- p_drop is cancelled instead ("deadline passed: dropped"). Returns the
-- claimed rows with their place in the batch (ord), whether each was late
-- and whether it was dropped.
CREATE FUNCTION usher_claim(p_queues text[], p_max integer, p_worker text, p_grace_ms bigint,
                            p_lead_ms bigint, p_drop text[])
RETURNS TABLE (id bigint, queue text, kind text, priority smallint, attempt integer,
               max_attempts integer, timeout_ms integer, payload text, run_at_us bigint,
               request_id text, ord bigint, late boolean, dropped boolean, partition_key text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_queues text[];
    v_queue text;
    v_ids bigint[] := '{}';      -- the batch so far, in claim order
    v_got bigint[];
    r_queue text[] := '{}';      -- the ready pairs
    r_prio smallint[] := '{}';
    r_key text[] := '{}';
    v_prio smallint;
    v_key text;
    v_at timestamptz;
    v_best smallint;
    v_walked integer;
    v_cut boolean := false;      -- a walk stopped at its limit
    v_room integer;
    v_pairs integer[];
    v_quota integer;
    f_id bigint[] := '{}';       -- the fair step's rows, their round and pair
    f_round integer[] := '{}';
    f_pair integer[] := '{}';
    i integer;
BEGIN
    SELECT array_agg(q.name) INTO v_queues FROM unnest(p_queues) AS q(name)
    WHERE NOT EXISTS (SELECT 1 FROM usher_queues p WHERE p.name = q.name AND p.paused);
    IF v_queues IS NULL OR p_max < 1 THEN
        RETURN;
    END IF;

    -- walk
    FOREACH v_queue IN ARRAY v_queues LOOP
        v_prio := -1;
        v_key := '';
        v_walked := 0;
        LOOP
            SELECT j.priority, j.partition_key, j.run_at INTO v_prio, v_key, v_at
            FROM usher_jobs j
            WHERE j.queue = v_queue AND j.state = 'available'
              AND (j.priority, j.partition_key) > (v_prio, v_key)
            ORDER BY j.priority, j.partition_key, j.run_at LIMIT 1;
            EXIT WHEN NOT FOUND;
            IF v_at <= now() THEN
                r_queue := r_queue || v_queue;
                r_prio := r_prio || v_prio;
                r_key := r_key || v_key;
            END IF;
            v_walked := v_walked + 1;
            IF v_walked >= 100 THEN
                v_cut := true;
                EXIT;
            END IF;
        END LOOP;
    END LOOP;
    SELECT min(p) INTO v_best FROM unnest(r_prio) p;

    -- urgent
    IF v_best IS NOT NULL THEN
        SELECT coalesce(array_agg(x.id ORDER BY x.priority, x.deadline, x.id), '{}') INTO v_ids
        FROM unnest(v_queues) AS q(name) CROSS JOIN LATERAL (
            SELECT j.id, j.priority, j.deadline FROM usher_jobs j
            WHERE j.queue = q.name AND j.state = 'available' AND j.deadline IS NOT NULL
              AND j.priority <= v_best
              AND j.deadline <= now() + p_lead_ms * interval '1 millisecond'
              AND j.run_at <= now()
            ORDER BY j.priority, j.deadline, j.id LIMIT p_max FOR UPDATE SKIP LOCKED) x;
    END IF;

    -- fair
    v_room := p_max - cardinality(v_ids);
    IF v_best IS NOT NULL AND v_room > 0 THEN
        SELECT array_agg(n ORDER BY random()) INTO v_pairs
        FROM generate_subscripts(r_prio, 1) n WHERE r_prio[n] = v_best;
        v_pairs := v_pairs[1:v_room];
        v_quota := ceil(v_room::numeric / cardinality(v_pairs));
        FOR i IN 1 .. cardinality(v_pairs) LOOP
            SELECT array_agg(x.id ORDER BY x.run_at, x.id) INTO v_got FROM (
                SELECT j.id, j.run_at FROM usher_jobs j
                WHERE j.queue = r_queue[v_pairs[i]] AND j.state = 'available'
                  AND j.priority = v_best AND j.partition_key = r_key[v_pairs[i]]
                  AND j.run_at <= now() AND j.id <> ALL (v_ids)
                ORDER BY j.run_at, j.id LIMIT v_quota FOR UPDATE SKIP LOCKED) x;
            IF v_got IS NOT NULL THEN
                f_id := f_id || v_got;
                f_round := f_round || ARRAY(SELECT generate_series(1, cardinality(v_got)));
                f_pair := f_pair || array_fill(i, ARRAY[cardinality(v_got)]);
            END IF;
        END LOOP;
        v_ids := v_ids || coalesce((SELECT array_agg(t.id ORDER BY t.round, t.pair)
                                    FROM unnest(f_id, f_round, f_pair) AS t(id, round, pair)),
                                   '{}');
    END IF;

    -- fill
    v_room := p_max - cardinality(v_ids);
    IF v_room > 0 AND cardinality(r_prio) > 0 THEN
        FOR i IN SELECT n FROM generate_subscripts(r_prio, 1) n ORDER BY r_prio[n], random() LOOP
            SELECT array_agg(x.id ORDER BY x.run_at, x.id) INTO v_got FROM (
                SELECT j.id, j.run_at FROM usher_jobs j
                WHERE j.queue = r_queue[i] AND j.state = 'available'
                  AND j.priority = r_prio[i] AND j.partition_key = r_key[i]
                  AND j.run_at <= now() AND j.id <> ALL (v_ids)
                ORDER BY j.run_at, j.id LIMIT v_room FOR UPDATE SKIP LOCKED) x;
            v_ids := v_ids || coalesce(v_got, '{}');
            v_room := p_max - cardinality(v_ids);
            EXIT WHEN v_room <= 0;
        END LOOP;
    END IF;

    -- fifo
    IF v_cut AND v_room > 0 THEN
        SELECT v_ids || coalesce(array_agg(x.id ORDER BY x.priority, x.run_at, x.id), '{}')
        INTO v_ids FROM unnest(v_queues) AS q(name) CROSS JOIN LATERAL (
            SELECT j.id, j.priority, j.run_at FROM usher_jobs j
            WHERE j.queue = q.name AND j.state = 'available' AND j.run_at <= now()
              AND j.id <> ALL (v_ids)
            ORDER BY j.priority, j.run_at, j.id LIMIT v_room FOR UPDATE SKIP LOCKED) x;
    END IF;

    IF cardinality(v_ids) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE usher_jobs u SET
        state = CASE WHEN u.deadline < now() AND u.kind = ANY (p_drop)
                     THEN 'cancelled' ELSE 'running' END::usher_job_state,
        attempt = u.attempt + 1, locked_by = p_worker, attempted_at = now(),
        locked_until = now() + (u.timeout_ms + p_grace_ms) * interval '1 millisecond',
        finished_at = CASE WHEN u.deadline < now() AND u.kind = ANY (p_drop)
                           THEN now() ELSE u.finished_at END,
        errors = CASE WHEN u.deadline < now() AND u.kind = ANY (p_drop)
                      THEN u.errors || jsonb_build_object('attempt', u.attempt + 1, 'at', now(),
                               'error', 'deadline passed: dropped', 'worker', p_worker)
                      ELSE u.errors END
    FROM unnest(v_ids[1:p_max]) WITH ORDINALITY AS b(id, ord)
    WHERE u.id = b.id
    RETURNING u.id, u.queue, u.kind, u.priority, u.attempt, u.max_attempts, u.timeout_ms,
        u.payload::text, (extract(epoch FROM u.run_at) * 1000000)::int8, u.request_id, b.ord,
        coalesce(u.deadline < now(), false), u.state = 'cancelled', u.partition_key;
END $$;
