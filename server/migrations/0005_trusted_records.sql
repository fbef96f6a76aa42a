-- Records can be trusted (issue 7).
--
-- A sighting's occurrenceID is `urn:uuid:<id>` (schemas::Sighting), and ids are
-- unique, so occurrence identifiers are too; the index makes it a guarantee
-- of the database, not only of the validation.
CREATE UNIQUE INDEX sightings_occurrence_id_key ON sightings (occurrence_id);

-- Plausibility warnings sum a volunteer's hours per day.
CREATE INDEX timesheet_entries_volunteer_day_idx ON timesheet_entries (volunteer_id, work_date);

-- Who delivered each change, as the server knows it from the connection's
-- credential (not the `deviceId` a record claims): written in the transaction
-- that stores the change.
CREATE TABLE change_receipts (
    doc_id       text COLLATE "C" NOT NULL REFERENCES documents (doc_id),
    change_hash  text NOT NULL,
    account_id   uuid NOT NULL,
    device_id    uuid,
    session_id   uuid,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (doc_id, change_hash),
    CHECK ((device_id IS NULL) <> (session_id IS NULL))
);
