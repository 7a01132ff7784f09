-- The platform's data that the job handlers and the API read and write:
-- organizers and their events, ticket types with capacity, sessions,
-- registrations, door scans, generated documents, attendee notifications,
-- webhook endpoints and their deliveries, and per-minute analytics.
--
-- Ticket codes are not stored: a code is the signature of (event id,
-- registration id) under a per-event key (engine/ticket.c), so it is derived
-- when needed and checked at the door without a lookup.

CREATE TYPE usher_event_tier AS ENUM ('small', 'medium', 'large', 'mega');

CREATE TABLE organizers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organizer_id bigint NOT NULL REFERENCES organizers (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
    venue        text NOT NULL DEFAULT '',
    timezone     text NOT NULL DEFAULT 'UTC',
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    tier         usher_event_tier NOT NULL DEFAULT 'small',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at >= starts_at)
);
CREATE INDEX events_organizer ON events (organizer_id);

-- sold is taken with a conditional UPDATE (... SET sold = sold + 1 WHERE
-- sold < capacity), so a seat is never sold twice; the CHECK is the last line
-- of defence. fillfactor leaves room for HOT updates of this hot row.
CREATE TABLE ticket_types (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   bigint NOT NULL REFERENCES events (id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    capacity   integer NOT NULL CHECK (capacity >= 0),
    sold       integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (sold BETWEEN 0 AND capacity)
) WITH (fillfactor = 70);
CREATE INDEX ticket_types_event ON ticket_types (event_id);

CREATE TABLE sessions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   bigint NOT NULL REFERENCES events (id),
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    abstract   text NOT NULL DEFAULT '',
    speakers   text[] NOT NULL DEFAULT '{}',
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    capacity   integer CHECK (capacity IS NULL OR capacity >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at >= starts_at)
);
CREATE INDEX sessions_event ON sessions (event_id);

CREATE TYPE usher_registration_status AS ENUM ('confirmed', 'cancelled');

CREATE TABLE registrations (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       bigint NOT NULL REFERENCES events (id),
    ticket_type_id bigint NOT NULL REFERENCES ticket_types (id),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    status         usher_registration_status NOT NULL DEFAULT 'confirmed',
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registrations_event ON registrations (event_id);
CREATE INDEX registrations_email ON registrations (lower(email));

-- Every scan at the door, failed ones too. The partial unique index admits a
-- registration once: of two scanners racing, one insert wins and the other
-- finds the first check-in.
CREATE TABLE scans (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        bigint,
    registration_id bigint,
    gate            text NOT NULL DEFAULT '',
    nonce           text,
    result          text NOT NULL CHECK (result IN ('ok', 'already_checked_in', 'unknown_ticket',
                                                    'cancelled', 'wrong_event', 'invalid_code')),
    scanned_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX scans_admitted_once ON scans (registration_id) WHERE result = 'ok';
CREATE UNIQUE INDEX scans_nonce ON scans (nonce) WHERE nonce IS NOT NULL;
CREATE INDEX scans_event_time ON scans (event_id, scanned_at);

-- Generated files (tickets, badges, reports) and uploaded session content,
-- stored by content hash in the document store directory.
CREATE TABLE documents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('ticket', 'badges', 'report', 'content')),
    event_id        bigint REFERENCES events (id),
    registration_id bigint REFERENCES registrations (id),
    session_id      bigint REFERENCES sessions (id),
    job_id          bigint,
    filename        text NOT NULL,
    content_type    text NOT NULL,
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size            bigint NOT NULL CHECK (size >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_event ON documents (event_id);
CREATE UNIQUE INDEX documents_ticket ON documents (registration_id) WHERE kind = 'ticket';

-- The attendee inbox (notify.inbox), read through the API.
CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registration_id bigint NOT NULL REFERENCES registrations (id),
    title           text NOT NULL,
    body            text NOT NULL DEFAULT '',
    job_id          bigint UNIQUE, -- a retried job never writes two notifications
    created_at      timestamptz NOT NULL DEFAULT now(),
    read_at         timestamptz
);
CREATE INDEX notifications_registration ON notifications (registration_id, created_at DESC);

-- Organizers' webhook endpoints. The secret signs deliveries (HMAC-SHA256),
-- so it is kept as is; the API shows it once, at creation.
CREATE TABLE webhook_endpoints (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organizer_id    bigint NOT NULL REFERENCES organizers (id),
    url             text NOT NULL CHECK (url ~ '^https?://'),
    events          text[] NOT NULL DEFAULT '{}',
    secret          text NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_organizer ON webhook_endpoints (organizer_id);

-- Every delivery attempt, so they can be listed and replayed.
CREATE TABLE webhook_deliveries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id bigint NOT NULL REFERENCES webhook_endpoints (id),
    job_id      bigint,
    attempt     integer NOT NULL,
    event       text NOT NULL,
    payload     jsonb NOT NULL,
    status_code integer,
    latency_ms  integer,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);

-- Per-event, per-minute counters folded by analytics.rollup.
CREATE TABLE analytics_minute (
    event_id bigint NOT NULL REFERENCES events (id),
    minute   timestamptz NOT NULL,
    metric   text NOT NULL CHECK (metric IN ('registration', 'checkin', 'session_access')),
    count    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, minute, metric)
);
