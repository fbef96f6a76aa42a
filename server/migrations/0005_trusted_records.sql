-- Records can be trusted (issue 7).
--
-- A sighting's occurrenceID is `urn:uuid:<id>` (schemas::Sighting), and ids are
-- unique, so occurrence identifiers are too; the index makes it a guarantee
-- of the database, not only of the validation.
CREATE UNIQUE INDEX sightings_occurrence_id_key ON sightings (occurrence_id);

-- Plausibility warnings sum a volunteer's hours per day.
CREATE INDEX timesheet_entries_volunteer_day_idx ON timesheet_entries (volunteer_id, work_date);
