-- Mail in the event's language (issue 15): an event has a locale (en, de
-- or fr; 'en' by default), a registration may carry the attendee's own,
-- which wins. email.send renders the templates of that locale
-- (conf/templates/<locale>/, English at the top) and formats dates and
-- times for it in the event's time zone with usher_format_time: day and
-- month names from a small table per locale, since a fresh Debian has no
-- C or ICU locales for the server's to_char to use.

ALTER TABLE events ADD COLUMN locale text NOT NULL DEFAULT 'en'
    CHECK (locale IN ('en', 'de', 'fr'));
ALTER TABLE registrations ADD COLUMN locale text CHECK (locale IN ('en', 'de', 'fr'));

-- p_at in time zone p_tz, written for p_locale, the zone named after it:
-- en "Sat 04 May 2030, 15:00 (Europe/Berlin)", de "Sa., 4. Mai 2030,
-- 15:00 Uhr (Europe/Berlin)", fr "sam. 4 mai 2030 à 15:00 (Europe/Berlin)".
CREATE FUNCTION usher_format_time(p_at timestamptz, p_tz text, p_locale text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE p_locale
        WHEN 'de' THEN (ARRAY['So.', 'Mo.', 'Di.', 'Mi.', 'Do.', 'Fr.', 'Sa.'])[extract(dow FROM l)::int + 1]
                       || ', ' || extract(day FROM l)::int || '. '
                       || (ARRAY['Januar', 'Februar', 'März', 'April', 'Mai', 'Juni', 'Juli', 'August',
                                 'September', 'Oktober', 'November', 'Dezember'])[extract(month FROM l)::int]
                       || ' ' || to_char(l, 'YYYY, HH24:MI') || ' Uhr'
        WHEN 'fr' THEN (ARRAY['dim.', 'lun.', 'mar.', 'mer.', 'jeu.', 'ven.', 'sam.'])[extract(dow FROM l)::int + 1]
                       || ' ' || extract(day FROM l)::int || ' '
                       || (ARRAY['janvier', 'février', 'mars', 'avril', 'mai', 'juin', 'juillet', 'août',
                                 'septembre', 'octobre', 'novembre', 'décembre'])[extract(month FROM l)::int]
                       || ' ' || to_char(l, 'YYYY') || ' à ' || to_char(l, 'HH24:MI')
        ELSE to_char(l, 'Dy DD Mon YYYY, HH24:MI')
    END || ' (' || p_tz || ')'
    FROM (SELECT p_at AT TIME ZONE p_tz AS l) x
$$;

-- The attendee's locale for usher_register: the 10-argument form sets it
-- for the transaction, and this trigger writes it into the row the
-- 9-argument form inserts.
CREATE FUNCTION usher_registration_locale() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.locale IS NULL THEN
        NEW.locale := nullif(current_setting('usher.registration_locale', true), '');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER registrations_locale BEFORE INSERT ON registrations
    FOR EACH ROW EXECUTE FUNCTION usher_registration_locale();

CREATE FUNCTION usher_register(p_event bigint, p_ticket_type bigint, p_name text, p_email text,
                               p_jobs jsonb, p_idem_scope text, p_idem_key text,
                               p_request_hash text, p_hook jsonb, p_locale text,
                               OUT status text, OUT registration_id bigint,
                               OUT replayed boolean)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('usher.registration_locale', coalesce(p_locale, ''), true);
    SELECT g.status, g.registration_id, g.replayed INTO status, registration_id, replayed
    FROM usher_register(p_event, p_ticket_type, p_name, p_email, p_jobs, p_idem_scope, p_idem_key,
                        p_request_hash, p_hook) g;
    PERFORM set_config('usher.registration_locale', '', true);
END $$;
