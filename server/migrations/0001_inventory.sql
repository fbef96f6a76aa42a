-- The sync store (automerge chunks) and the relational inventory materialised from it.
-- Every inventory table carries territory_id: territories are the unit of access
-- control and of future partitioning when a region shares one PostgreSQL.

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE territories (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Documents whose header names no usable territory are filed here until a
-- coordinator sorts them out; nothing a phone sent is refused for lack of one.
INSERT INTO territories (id, name)
VALUES ('00000000-0000-0000-0000-000000000000', 'Default territory');

-- samod's key/value storage: keys are `<doc id>/incremental/<change hash>`,
-- `<doc id>/snapshot/<heads hash>` or `storage-adapter-id`. COLLATE "C" makes
-- prefix scans (load_range) a plain index range.
CREATE TABLE automerge_chunks (
    key        text COLLATE "C" PRIMARY KEY,
    doc_id     text COLLATE "C",
    data       bytea NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX automerge_chunks_doc_idx ON automerge_chunks (doc_id);

-- One row per automerge document the server holds. `revision` counts stored
-- chunks: a server process that sees a revision it did not write knows another
-- process changed the document and reloads it.
CREATE TABLE documents (
    doc_id         text COLLATE "C" PRIMARY KEY,
    territory_id   uuid NOT NULL REFERENCES territories (id),
    owner_id       uuid,
    kind           text NOT NULL DEFAULT 'unknown' CHECK (kind IN ('unknown', 'notebook')),
    revision       bigint NOT NULL DEFAULT 0,
    -- Why the document (not one record) cannot be used as it is: bad header,
    -- a change that rewrote the header, a record that could not be filed.
    problems       jsonb NOT NULL DEFAULT '[]',
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_territory_idx ON documents (territory_id);

CREATE TABLE sightings (
    id                           uuid PRIMARY KEY,
    territory_id                 uuid NOT NULL REFERENCES territories (id),
    doc_id                       text COLLATE "C" NOT NULL REFERENCES documents (doc_id),
    occurrence_id                text NOT NULL,
    scientific_name              text NOT NULL,
    taxon_id                     bigint,
    vernacular_name              text,
    event_date                   timestamptz NOT NULL,
    geom                         geometry(Point, 4326) NOT NULL,
    coordinate_uncertainty_m     double precision,
    individual_count             bigint,
    occurrence_status            text NOT NULL,
    basis_of_record              text NOT NULL,
    recorded_by                  text NOT NULL,
    site                         text,
    notes                        text,
    photos                       text[] NOT NULL DEFAULT '{}',
    author_id                    uuid NOT NULL,
    device_id                    text NOT NULL,
    created_at                   timestamptz NOT NULL,
    modified_at                  timestamptz NOT NULL,
    -- Fields two phones set concurrently: [{field, winner, values}]. The row
    -- holds the winner; every value is kept here for the coordinator.
    conflicts                    jsonb NOT NULL DEFAULT '[]',
    has_conflicts                boolean GENERATED ALWAYS AS (jsonb_array_length(conflicts) > 0) STORED,
    materialised_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sightings_geom_idx ON sightings USING gist (geom);
CREATE INDEX sightings_territory_idx ON sightings (territory_id);
CREATE INDEX sightings_doc_idx ON sightings (doc_id);

CREATE TABLE degradation_reports (
    id                           uuid PRIMARY KEY,
    territory_id                 uuid NOT NULL REFERENCES territories (id),
    doc_id                       text COLLATE "C" NOT NULL REFERENCES documents (doc_id),
    category                     text NOT NULL,
    category_detail              text,
    observed_at                  timestamptz NOT NULL,
    geom                         geometry(Point, 4326) NOT NULL,
    coordinate_uncertainty_m     double precision,
    description                  text NOT NULL,
    photos                       text[] NOT NULL DEFAULT '{}',
    site                         text,
    -- Follow-up, set by coordinators; history below.
    status                       text NOT NULL DEFAULT 'received',
    status_reason                text,
    author_id                    uuid NOT NULL,
    device_id                    text NOT NULL,
    created_at                   timestamptz NOT NULL,
    modified_at                  timestamptz NOT NULL,
    conflicts                    jsonb NOT NULL DEFAULT '[]',
    has_conflicts                boolean GENERATED ALWAYS AS (jsonb_array_length(conflicts) > 0) STORED,
    materialised_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX degradation_reports_geom_idx ON degradation_reports USING gist (geom);
CREATE INDEX degradation_reports_territory_idx ON degradation_reports (territory_id);
CREATE INDEX degradation_reports_doc_idx ON degradation_reports (doc_id);

-- Append-only: a report's follow-up as it happened. The first row is written
-- when the server first receives the report.
CREATE TABLE degradation_status_history (
    report_id     uuid NOT NULL REFERENCES degradation_reports (id) ON DELETE CASCADE,
    seq           integer NOT NULL,
    territory_id  uuid NOT NULL REFERENCES territories (id),
    status        text NOT NULL,
    reason        text,
    changed_by    uuid,
    changed_at    timestamptz NOT NULL,
    PRIMARY KEY (report_id, seq)
);

CREATE TABLE timesheet_entries (
    id                 uuid PRIMARY KEY,
    territory_id       uuid NOT NULL REFERENCES territories (id),
    doc_id             text COLLATE "C" NOT NULL REFERENCES documents (doc_id),
    volunteer_id       uuid NOT NULL,
    work_date          date NOT NULL,
    started_at         timestamptz,
    ended_at           timestamptz,
    duration_minutes   integer NOT NULL,
    activity           text NOT NULL,
    site               text,
    notes              text,
    -- Coordinator decision; volunteers' notebooks cannot carry it.
    approval_status    text NOT NULL DEFAULT 'pending',
    approved_by        uuid,
    approved_at        timestamptz,
    author_id          uuid NOT NULL,
    device_id          text NOT NULL,
    created_at         timestamptz NOT NULL,
    modified_at        timestamptz NOT NULL,
    conflicts          jsonb NOT NULL DEFAULT '[]',
    has_conflicts      boolean GENERATED ALWAYS AS (jsonb_array_length(conflicts) > 0) STORED,
    materialised_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX timesheet_entries_territory_idx ON timesheet_entries (territory_id);
CREATE INDEX timesheet_entries_doc_idx ON timesheet_entries (doc_id);

-- Records that failed validation: what the volunteer typed, kept whole, and
-- every problem with the field it concerns. A record is either here or in its
-- inventory table, never both.
CREATE TABLE invalid_records (
    doc_id        text COLLATE "C" NOT NULL REFERENCES documents (doc_id),
    kind          text NOT NULL CHECK (kind IN ('sighting', 'degradation_report', 'timesheet_entry')),
    record_key    text NOT NULL,
    territory_id  uuid NOT NULL REFERENCES territories (id),
    raw           jsonb NOT NULL,
    problems      jsonb NOT NULL,
    conflicts     jsonb NOT NULL DEFAULT '[]',
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (doc_id, kind, record_key)
);
CREATE INDEX invalid_records_territory_idx ON invalid_records (territory_id);
