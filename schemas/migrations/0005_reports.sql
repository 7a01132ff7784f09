-- Organizer reports (report.attendees, report.checkins): a CSV or PDF of an
-- event's registrations or door scans, built by a low-priority job and kept
-- as a document.
--
-- Completed jobs are deleted from usher_jobs, so the request and its outcome
-- live in `reports`; the job's own row only carries the progress of the
-- attempt that is running, for the dashboard.

-- Percent done of the running attempt, written by handlers that report it
-- (NULL: the handler does not say). Adding a nullable column without a
-- default only touches the catalog; the CHECK is added NOT VALID so that
-- the hot table is not scanned under an exclusive lock (every existing row
-- is NULL, which passes it anyway).
ALTER TABLE usher_jobs ADD COLUMN progress smallint;
ALTER TABLE usher_jobs ADD CONSTRAINT usher_jobs_progress_range
    CHECK (progress BETWEEN 0 AND 100) NOT VALID;

-- One row per report asked for. The job (job_id) fills progress, rows and
-- document_id; document_id is set once, in the same statement that inserts
-- the document, so a retried job never records a second file.
CREATE TABLE reports (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     bigint NOT NULL REFERENCES events (id),
    kind         text NOT NULL CHECK (kind IN ('attendees', 'checkins')),
    format       text NOT NULL CHECK (format IN ('csv', 'pdf')),
    job_id       bigint,
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'done', 'failed')),
    progress     smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    rows         bigint CHECK (rows >= 0),
    document_id  bigint REFERENCES documents (id),
    error        text,
    requested_by text NOT NULL DEFAULT '' CHECK (length(requested_by) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    CHECK (state <> 'done' OR document_id IS NOT NULL)
);
CREATE INDEX reports_event ON reports (event_id, created_at DESC);

-- The attendee report reads an event's registrations in pages ordered by id
-- (keyset pagination). An index on (event_id) alone returns them in heap
-- order, so every page would sort the whole event again; (event_id, id)
-- serves those pages and every lookup the old index served.
CREATE INDEX registrations_event_id ON registrations (event_id, id);
DROP INDEX registrations_event;
