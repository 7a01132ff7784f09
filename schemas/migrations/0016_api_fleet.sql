-- The API fleet's scaling inputs (engine/api_scale.h, api/fleet.c). Each
-- usher-api writes its own row every 5 s (CPU and memory use, requests in
-- flight) and reads the averages of the rows heard from in the last 15 s,
-- so every instance computes the same desired instance count. Rows silent
-- for an hour are deleted by the next writer.
CREATE TABLE usher_api_hosts (
    id           text PRIMARY KEY,          -- host:pid
    cpu          real NOT NULL,             -- 0..1 of the instance
    mem          real NOT NULL,             -- 0..1 of the instance
    queue        real NOT NULL,             -- requests in flight
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- An event's registration launch (its on-sale time, as announced): the API
-- fleet does not scale in from [api] launch_hold_before_min before it to
-- launch_hold_after_min after it.
ALTER TABLE events ADD COLUMN launch_at timestamptz;
CREATE INDEX events_launch_at ON events (launch_at) WHERE launch_at IS NOT NULL;
