-- usher_claim (0020) without the fill step's second look at a pair the fair
-- step emptied. The fair step takes each ready pair's oldest jobs up to its
-- quota; a pair that gave fewer has no more runnable rows a claim could take
-- (the rest are locked by other claims, which SKIP LOCKED passes anyway), yet
-- the fill step probed it again, and that probe reads back the rows this very
-- claim has just locked (SKIP LOCKED does not skip one's own locks), each
-- compared with the whole batch (`j.id <> ALL (v_ids)`): an extra statement
-- in every pickup of one job (issue 17 goal 2: the claim's round trip), and
-- work that grows with the square of the batch at the end of a burst, when a
-- queue holds fewer runnable jobs than a pool has room for (an adaptive pool
-- claims up to 256 jobs per child). The fill step now skips such a pair.
-- Everything else is 0020's.

CREATE OR REPLACE FUNCTION usher_claim(p_queues text[], p_max integer, p_worker text, p_grace_ms bigint,
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
    f_short boolean[];           -- per ready pair: the fair step found fewer than its quota
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
            f_short[v_pairs[i]] := coalesce(cardinality(v_got), 0) < v_quota;
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
            CONTINUE WHEN coalesce(f_short[i], false);
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
