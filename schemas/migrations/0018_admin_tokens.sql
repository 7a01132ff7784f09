-- Tokens and organizers managed through the API by admins (issue 15):
-- created, listed and revoked with every write in audit_log, as usherctl
-- does them too (platform/token.c runs these functions for both).

-- When a token last authenticated a request: usher-api sets it when its
-- cache misses and the value is more than a minute old (api/auth.c), so it
-- is right to about a minute plus api.token_cache_ms. NULL: never since
-- this column exists.
ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;

-- A token as the API and usherctl show it: never its hash.
CREATE FUNCTION usher_token_json(t api_tokens) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', t.id, 'role', t.role, 'organizer_id', t.organizer_id,
                              'event_id', t.event_id, 'name', t.name,
                              'created_at', t.created_at, 'last_used_at', t.last_used_at,
                              'revoked_at', t.revoked_at, 'revoked', t.revoked_at IS NOT NULL);
$$;

-- An organizer with its counts of events and live tokens.
CREATE FUNCTION usher_organizer_json(o organizers) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', o.id, 'name', o.name, 'created_at', o.created_at,
        'events', (SELECT count(*) FROM events e WHERE e.organizer_id = o.id),
        'live_tokens', (SELECT count(*) FROM api_tokens k
                        WHERE k.organizer_id = o.id AND k.revoked_at IS NULL));
$$;

-- Stores a token's hash with its role and scope, audited for p_actor.
-- status: 'created'; 'no_organizer' (p_organizer names none); 'no_event'
-- (p_event is not one of p_organizer's events). The caller checks the
-- combination of role, organizer and event (api/routes/admin_tokens.c).
CREATE FUNCTION usher_token_create(p_hash bytea, p_role usher_role, p_organizer bigint,
                                   p_event bigint, p_name text, p_actor jsonb,
                                   OUT status text, OUT token jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t api_tokens;
BEGIN
    IF p_organizer IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM organizers o WHERE o.id = p_organizer) THEN
        status := 'no_organizer';
        RETURN;
    END IF;
    IF p_event IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e
                                           WHERE e.id = p_event
                                             AND e.organizer_id = p_organizer) THEN
        status := 'no_event';
        RETURN;
    END IF;
    INSERT INTO api_tokens (token_hash, role, organizer_id, event_id, name)
    VALUES (p_hash, p_role, p_organizer, p_event, coalesce(p_name, ''))
    RETURNING * INTO t;
    token := usher_token_json(t);
    PERFORM usher_audit(p_actor, 'token.create', 'token', t.id, NULL, token);
    status := 'created';
END $$;

-- Revokes token p_id, audited for p_actor; the NOTIFY (at commit) empties
-- usher-api's token caches. status: 'revoked', 'already_revoked' (nothing
-- changes, nothing is recorded) or 'not_found'.
CREATE FUNCTION usher_token_revoke(p_id bigint, p_actor jsonb,
                                   OUT status text, OUT token jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t api_tokens;
    v_before jsonb;
BEGIN
    SELECT * INTO t FROM api_tokens k WHERE k.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        status := 'not_found';
        RETURN;
    END IF;
    token := usher_token_json(t);
    IF t.revoked_at IS NOT NULL THEN
        status := 'already_revoked';
        RETURN;
    END IF;
    v_before := token;
    UPDATE api_tokens k SET revoked_at = now() WHERE k.id = p_id RETURNING * INTO t;
    token := usher_token_json(t);
    PERFORM pg_notify('usher_tokens', p_id::text);
    PERFORM usher_audit(p_actor, 'token.revoke', 'token', p_id, v_before, token);
    status := 'revoked';
END $$;

-- Creates an organizer, audited for p_actor.
CREATE FUNCTION usher_organizer_create(p_name text, p_actor jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    o organizers;
    v_after jsonb;
BEGIN
    INSERT INTO organizers (name) VALUES (p_name) RETURNING * INTO o;
    v_after := usher_organizer_json(o);
    PERFORM usher_audit(p_actor, 'organizer.create', 'organizer', o.id, NULL, v_after);
    RETURN v_after;
END $$;
