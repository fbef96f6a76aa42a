-- Coordinators review the inventory (issue 9): decisions, their history,
-- duplicates, and the review documents that carry decisions to the phones.
--
-- Decisions live in `review_decisions`, one row per record and decision, and
-- outlive the record's inventory row (a record that turns invalid leaves its
-- table and comes back with its decisions). Each inventory row carries its
-- current decision in a column, kept by triggers, so the review table filters
-- and pages on indexed columns. `review_history` is append-only.

-- Review documents: one per volunteer and territory, created by the server
-- when the volunteer first asks for it or a decision concerns them. Its
-- `documents` row exists before any change is stored, so nobody can create
-- another document under its id.
ALTER TABLE documents DROP CONSTRAINT documents_kind_check;
ALTER TABLE documents ADD CONSTRAINT documents_kind_check
    CHECK (kind IN ('unknown', 'notebook', 'review'));
CREATE UNIQUE INDEX documents_review_idx ON documents (territory_id, owner_id)
    WHERE kind = 'review';

-- Duplicate proposals: same taxon, within this distance and time window.
ALTER TABLE territories
    ADD COLUMN duplicate_distance_m double precision NOT NULL DEFAULT 50
        CHECK (duplicate_distance_m > 0 AND duplicate_distance_m <= 10000),
    ADD COLUMN duplicate_window_hours double precision NOT NULL DEFAULT 2
        CHECK (duplicate_window_hours > 0 AND duplicate_window_hours <= 720);

-- `review_seq`: the order of the review table, assigned when a row is first
-- filed and never changed, so keyset pages stay stable while phones sync
-- (new rows come before the first page, edited rows keep their place).
ALTER TABLE sightings
    ADD COLUMN review_seq bigserial,
    ADD COLUMN validation_status smallint NOT NULL DEFAULT 0
        CHECK (validation_status BETWEEN 0 AND 6),
    ADD COLUMN duplicate_of uuid,
    -- Same taxon: the TAXREF id when there is one, else the name.
    ADD COLUMN taxon_key text GENERATED ALWAYS AS
        (COALESCE(taxon_id::text, lower(scientific_name))) STORED;
ALTER TABLE degradation_reports ADD COLUMN review_seq bigserial;
ALTER TABLE timesheet_entries
    ADD COLUMN review_seq bigserial,
    ADD COLUMN approval_reason text;

CREATE INDEX sightings_review_idx ON sightings (territory_id, review_seq);
CREATE INDEX sightings_review_status_idx ON sightings (territory_id, validation_status, review_seq);
CREATE INDEX sightings_review_taxon_idx ON sightings (territory_id, taxon_id, review_seq);
CREATE INDEX sightings_review_name_idx ON sightings (territory_id, lower(scientific_name), review_seq);
CREATE INDEX sightings_review_author_idx ON sightings (territory_id, author_id, review_seq);
CREATE INDEX sightings_review_conflicts_idx ON sightings (territory_id, review_seq)
    WHERE has_conflicts;
-- Duplicate proposals probe a taxon's sightings within the time window of
-- another, then the distance (server/src/review/filter.rs says how): the
-- columns the probe tests are covered, so it reads the index only. No
-- spatial index for it: the planner ANDs one in, and reads thousands of rows
-- per probe instead of the few dozen of the window (docs/PERFORMANCE.md).
CREATE INDEX sightings_duplicate_probe_idx ON sightings (territory_id, taxon_key, event_date)
    INCLUDE (id, duplicate_of, geom);
CREATE INDEX degradation_reports_review_idx ON degradation_reports (territory_id, review_seq);
CREATE INDEX degradation_reports_review_status_idx
    ON degradation_reports (territory_id, status, review_seq);
CREATE INDEX timesheet_entries_review_idx ON timesheet_entries (territory_id, review_seq);
CREATE INDEX timesheet_entries_review_status_idx
    ON timesheet_entries (territory_id, approval_status, review_seq);

-- The current decision of each kind on each record.
--   verification: status '0'..'6' (SINP validation), reason = comment
--   follow_up:    received | under_analysis | action_taken | closed
--   approval:     approved | returned
--   duplicate:    status = the reference record's id
CREATE TABLE review_decisions (
    record_id     uuid NOT NULL,
    decision      text NOT NULL CHECK (decision IN ('verification', 'follow_up', 'approval', 'duplicate')),
    territory_id  uuid NOT NULL REFERENCES territories (id),
    record_kind   text NOT NULL CHECK (record_kind IN ('sighting', 'degradation_report', 'timesheet_entry')),
    -- Whose record it is: the review document it reaches.
    volunteer_id  uuid NOT NULL,
    status        text NOT NULL,
    reason        text,
    decided_by    uuid NOT NULL REFERENCES accounts (id),
    decided_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (record_id, decision)
);
CREATE INDEX review_decisions_volunteer_idx ON review_decisions (territory_id, volunteer_id);

-- Every decision as it was taken, and every conflict resolved, duplicate
-- merged or dismissed. Never updated or deleted.
CREATE TABLE review_history (
    id            bigserial PRIMARY KEY,
    territory_id  uuid NOT NULL REFERENCES territories (id),
    record_id     uuid NOT NULL,
    record_kind   text NOT NULL,
    action        text NOT NULL CHECK (action IN ('verification', 'follow_up', 'approval',
                    'conflict_resolution', 'duplicate_merge', 'duplicate_dismissal')),
    status        text,
    previous      text,
    reason        text,
    -- What the action concerned: the field and values of a resolved conflict,
    -- the other record of a duplicate pair.
    detail        jsonb NOT NULL DEFAULT '{}',
    decided_by    uuid NOT NULL REFERENCES accounts (id),
    decided_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_history_record_idx ON review_history (record_id, id);
CREATE INDEX review_history_territory_idx ON review_history (territory_id, id);

-- Pairs a reviewer said are not duplicates: never proposed again.
CREATE TABLE duplicate_dismissals (
    record_a      uuid NOT NULL,
    record_b      uuid NOT NULL,
    territory_id  uuid NOT NULL REFERENCES territories (id),
    dismissed_by  uuid NOT NULL REFERENCES accounts (id),
    dismissed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (record_a, record_b),
    CHECK (record_a < record_b)
);

-- Volunteers whose review document lags their decisions: written in the
-- decision's transaction, deleted once the document holds `version`.
CREATE TABLE review_outbox (
    territory_id  uuid NOT NULL REFERENCES territories (id),
    volunteer_id  uuid NOT NULL,
    version       bigint NOT NULL DEFAULT 1,
    since         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (territory_id, volunteer_id)
);

-- A decision shows on its record's row.
CREATE FUNCTION review_decision_to_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.decision = 'verification' THEN
        UPDATE sightings SET validation_status = NEW.status::smallint WHERE id = NEW.record_id;
    ELSIF NEW.decision = 'duplicate' THEN
        UPDATE sightings SET duplicate_of = NEW.status::uuid WHERE id = NEW.record_id;
    ELSIF NEW.decision = 'follow_up' THEN
        UPDATE degradation_reports SET status = NEW.status, status_reason = NEW.reason
        WHERE id = NEW.record_id;
    ELSIF NEW.decision = 'approval' THEN
        UPDATE timesheet_entries SET approval_status = NEW.status, approval_reason = NEW.reason,
            approved_by = NEW.decided_by, approved_at = NEW.decided_at
        WHERE id = NEW.record_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER review_decisions_to_rows AFTER INSERT OR UPDATE ON review_decisions
    FOR EACH ROW EXECUTE FUNCTION review_decision_to_row();

-- A row filed (again) picks up the decisions its record already has.
CREATE FUNCTION review_decisions_of_new_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE d record;
BEGIN
    FOR d IN SELECT * FROM review_decisions WHERE record_id = NEW.id LOOP
        IF TG_TABLE_NAME = 'sightings' AND d.decision = 'verification' THEN
            NEW.validation_status := d.status::smallint;
        ELSIF TG_TABLE_NAME = 'sightings' AND d.decision = 'duplicate' THEN
            NEW.duplicate_of := d.status::uuid;
        ELSIF TG_TABLE_NAME = 'degradation_reports' AND d.decision = 'follow_up' THEN
            NEW.status := d.status;
            NEW.status_reason := d.reason;
        ELSIF TG_TABLE_NAME = 'timesheet_entries' AND d.decision = 'approval' THEN
            NEW.approval_status := d.status;
            NEW.approval_reason := d.reason;
            NEW.approved_by := d.decided_by;
            NEW.approved_at := d.decided_at;
        END IF;
    END LOOP;
    RETURN NEW;
END $$;
CREATE TRIGGER sightings_decisions BEFORE INSERT ON sightings
    FOR EACH ROW EXECUTE FUNCTION review_decisions_of_new_row();
CREATE TRIGGER degradation_reports_decisions BEFORE INSERT ON degradation_reports
    FOR EACH ROW EXECUTE FUNCTION review_decisions_of_new_row();
CREATE TRIGGER timesheet_entries_decisions BEFORE INSERT ON timesheet_entries
    FOR EACH ROW EXECUTE FUNCTION review_decisions_of_new_row();

-- A decision is about what the record said when it was taken: when the
-- volunteer changes what was decided on (the identification of a sighting,
-- the hours of an entry), the decision goes back to pending, in the
-- history, and the volunteer's phone is told.
CREATE FUNCTION review_decision_outdated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE TG_TABLE_NAME WHEN 'sightings' THEN 'verification' ELSE 'approval' END;
    pending text := CASE TG_TABLE_NAME WHEN 'sightings' THEN '0' ELSE 'pending' END;
    -- A timesheet entry's author is its volunteer (the sync judge sees to it).
    owner uuid := NEW.author_id;
    why text := CASE TG_TABLE_NAME
        WHEN 'sightings' THEN 'the identification changed after the decision'
        ELSE 'the hours changed after the decision' END;
    was text;
BEGIN
    SELECT status INTO was FROM review_decisions
    WHERE record_id = NEW.id AND decision = kind FOR UPDATE;
    IF was IS NULL OR was = pending THEN
        RETURN NULL;
    END IF;
    UPDATE review_decisions SET status = pending, reason = why, decided_by = owner, decided_at = now()
    WHERE record_id = NEW.id AND decision = kind;
    INSERT INTO review_history (territory_id, record_id, record_kind, action, status, previous, reason, decided_by)
    VALUES (NEW.territory_id, NEW.id,
            CASE TG_TABLE_NAME WHEN 'sightings' THEN 'sighting' ELSE 'timesheet_entry' END,
            kind, pending, was, why, owner);
    INSERT INTO review_outbox (territory_id, volunteer_id) VALUES (NEW.territory_id, owner)
    ON CONFLICT (territory_id, volunteer_id) DO UPDATE SET version = review_outbox.version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER sightings_identification_changed AFTER UPDATE ON sightings
    FOR EACH ROW WHEN (OLD.scientific_name IS DISTINCT FROM NEW.scientific_name
                       OR OLD.taxon_id IS DISTINCT FROM NEW.taxon_id)
    EXECUTE FUNCTION review_decision_outdated();
CREATE TRIGGER timesheet_entries_hours_changed AFTER UPDATE ON timesheet_entries
    FOR EACH ROW WHEN (OLD.duration_minutes IS DISTINCT FROM NEW.duration_minutes
                       OR OLD.work_date IS DISTINCT FROM NEW.work_date
                       OR OLD.activity IS DISTINCT FROM NEW.activity)
    EXECUTE FUNCTION review_decision_outdated();
