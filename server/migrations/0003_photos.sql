-- Photos attached to records, addressed by the SHA-256 of their bytes (what a
-- record's `photos` field holds), and the partial uploads that lead to them.
--
-- Kept in PostgreSQL, not a second store: one database to back up, replicate
-- and restore, and a photo commits or not with its row. Photos reach the
-- server already shrunk by the phone (about 0.5 MB), which bytea holds well.

CREATE TABLE photos (
    sha256        text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- Filed under one territory of the uploader; who may see it follows from it.
    territory_id  uuid NOT NULL REFERENCES territories (id),
    uploaded_by   uuid NOT NULL REFERENCES accounts (id),
    -- The phone it came from; NULL when uploaded with a web session.
    device_id     uuid REFERENCES devices (id),
    size          integer NOT NULL CHECK (size > 0),
    width         integer NOT NULL,
    height        integer NOT NULL,
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png')),
    data          bytea NOT NULL,
    -- Made by the server from `data`, never taken from the client.
    thumbnail     bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX photos_territory_idx ON photos (territory_id);

-- An upload in progress: one per photo and uploader, so one person's
-- interrupted upload never mixes with another's.
CREATE TABLE photo_uploads (
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    account_id     uuid NOT NULL REFERENCES accounts (id),
    territory_id   uuid NOT NULL REFERENCES territories (id),
    device_id      uuid REFERENCES devices (id),
    expected_size  integer NOT NULL CHECK (expected_size > 0),
    started_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sha256, account_id)
);
CREATE INDEX photo_uploads_updated_idx ON photo_uploads (updated_at);

-- The chunks received so far, in order: appending a row per chunk keeps an
-- upload linear (concatenating into one bytea would rewrite it each time).
CREATE TABLE photo_upload_chunks (
    sha256      text NOT NULL,
    account_id  uuid NOT NULL,
    byte_offset integer NOT NULL,
    data        bytea NOT NULL,
    PRIMARY KEY (sha256, account_id, byte_offset),
    FOREIGN KEY (sha256, account_id) REFERENCES photo_uploads (sha256, account_id) ON DELETE CASCADE
);
