-- A registration's two foreign keys (0004: event_id -> events, ticket_type_id
-- -> ticket_types) become one: (ticket_type_id, event_id) -> ticket_types
-- (id, event_id). Each foreign key costs every inserted row a lookup of the
-- parent row FOR KEY SHARE, and a sale's event row is the hottest row the
-- registrations touch; the ticket type's own key names its event
-- (ticket_types.event_id -> events), so the event stays guaranteed, and the
-- new key also holds what the two did not: a registration's event is its
-- ticket type's event.
--
-- Measured (issue 17 goal 4, session 15): pgbench, 4 clients, each
-- transaction usher_register_batch of 10 registrations into one ticket type
-- (the sale's two job templates, its counted analytics template and webhook
-- template, as usher-api sends them), 8 s per run, the two forms alternated
-- on one database, 4 pairs: 772 / 726 / 616 / 703 batches/s with the two keys,
-- 806 / 743 / 734 / 749 with the one (per-pair ratios 1.04-1.19, median 1.05).
-- Through usher-api (bench/api register_16, 4 alternated pairs) no
-- difference showed: 5,267 / 5,752 / 5,852 / 5,437 requests/s against
-- 5,153 / 5,678 / 5,600 / 5,707 (ratios 0.96-1.05), the API's own CPU and
-- the commits' waits hiding it. It stays for the key it adds. Checked at
-- commit as below, 4 more pairs on a fresh database: 774 / 898 / 849 / 858
-- against 941 / 703 / 802 / 813 with the two keys (median ratio 1.06).
--
-- The key is checked at commit (DEFERRABLE INITIALLY DEFERRED), so a sale
-- still locks its event (0032's statement trigger, FOR KEY SHARE at the end
-- of the INSERT) before its ticket type (the key's check), the order
-- usher_event_delete (0015: the event, then its ticket types, FOR UPDATE)
-- takes them in; checked at once, the key would lock the ticket type first
-- and a sale could deadlock with the deletion of its event. A sale whose
-- ticket type a deletion took away fails at its commit (23503), as its
-- statement failed before.
--
-- The three tables are locked first, in the order a sale reads them: the
-- key's ADD and the DROPs need these locks anyway, and taking them one by
-- one while sales run could deadlock the migration with a sale (it holds
-- events and waits for registrations, the migration the other way round).
-- Sales wait for the migration: the key's check of every registration, a
-- probe of ticket_types_id_event each.
LOCK TABLE events, ticket_types, registrations IN ACCESS EXCLUSIVE MODE;

CREATE UNIQUE INDEX ticket_types_id_event ON ticket_types (id, event_id);

ALTER TABLE registrations
    ADD CONSTRAINT registrations_ticket_type_event_fkey
        FOREIGN KEY (ticket_type_id, event_id) REFERENCES ticket_types (id, event_id)
        DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE registrations
    DROP CONSTRAINT registrations_event_id_fkey,
    DROP CONSTRAINT registrations_ticket_type_id_fkey;
