-- The document store in the database, so that every host reads what any
-- host wrote without a shared filesystem (issue 14). platform/docstore_db.c
-- writes and reads these tables; [documents] store = directory keeps the
-- files of platform/docstore_dir.c instead.
--
-- A document's bytes are named by their SHA-256, as in the directory store:
-- documents.sha256 names one row of document_blobs, and the bytes are the
-- blob's chunks of chunk_size bytes (the last may be shorter), so a 20 MB
-- upload is 80 rows of 256 KiB, never one value, and a Range reads only the
-- chunks it covers. A blob and all its chunks are written in one
-- transaction, its row first: a concurrent writer of the same bytes waits
-- on that row's key and then finds it there (INSERT ... ON CONFLICT DO
-- NOTHING), so each content is stored once, and a reader never sees a blob
-- without all its chunks.
--
-- Not here: collecting blobs that no documents row names any more.

CREATE TABLE document_blobs (
    sha256     text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size       bigint NOT NULL CHECK (size >= 0),
    chunk_size integer NOT NULL CHECK (chunk_size > 0),
    chunks     integer NOT NULL CHECK (chunks >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (chunks = (size + chunk_size - 1) / chunk_size)
);

CREATE TABLE document_chunks (
    sha256 text NOT NULL REFERENCES document_blobs (sha256) ON DELETE CASCADE,
    seq    integer NOT NULL CHECK (seq >= 0),
    data   bytea NOT NULL,
    PRIMARY KEY (sha256, seq)
);

-- Out of line and not compressed: PDFs, images and slides are compressed
-- already, and substring() of an uncompressed TOAST value reads only the
-- TOAST pages it covers.
ALTER TABLE document_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
