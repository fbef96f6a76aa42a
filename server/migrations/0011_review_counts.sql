-- The dashboard's counts without counting (issue 9): records by territory,
-- kind, status and conflict, kept by statement triggers on the inventory
-- tables. A trigger only appends its statement's net change to
-- `review_count_deltas` (no row is locked, so concurrent commits of one
-- territory never wait on a counter); `review::counts::fold` moves the
-- deltas into `review_counts` now and then. A count is the sum of both.

CREATE TABLE review_counts (
    territory_id  uuid NOT NULL,
    kind          text NOT NULL,
    status        text NOT NULL,
    conflicted    boolean NOT NULL,
    records       bigint NOT NULL,
    minutes       bigint NOT NULL,
    PRIMARY KEY (territory_id, kind, status, conflicted)
);

CREATE TABLE review_count_deltas (
    territory_id  uuid NOT NULL,
    kind          text NOT NULL,
    status        text NOT NULL,
    conflicted    boolean NOT NULL,
    records       bigint NOT NULL,
    minutes       bigint NOT NULL
);
CREATE INDEX review_count_deltas_territory_idx ON review_count_deltas (territory_id);

-- One function per table (the status column differs); each sees the
-- statement's rows as transition tables and appends their net change.
CREATE FUNCTION sightings_count_deltas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO review_count_deltas
        SELECT territory_id, 'sighting', validation_status::text, has_conflicts, count(*), 0
        FROM new_rows GROUP BY 1, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO review_count_deltas
        SELECT territory_id, 'sighting', validation_status::text, has_conflicts, -count(*), 0
        FROM old_rows GROUP BY 1, 3, 4;
    ELSE
        INSERT INTO review_count_deltas
        SELECT territory_id, 'sighting', status, conflicted, sum(n), 0
        FROM (SELECT territory_id, validation_status::text AS status, has_conflicts AS conflicted, 1 AS n FROM new_rows
              UNION ALL
              SELECT territory_id, validation_status::text, has_conflicts, -1 FROM old_rows) c
        GROUP BY 1, 3, 4 HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION degradation_reports_count_deltas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO review_count_deltas
        SELECT territory_id, 'degradation_report', status, has_conflicts, count(*), 0
        FROM new_rows GROUP BY 1, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO review_count_deltas
        SELECT territory_id, 'degradation_report', status, has_conflicts, -count(*), 0
        FROM old_rows GROUP BY 1, 3, 4;
    ELSE
        INSERT INTO review_count_deltas
        SELECT territory_id, 'degradation_report', status, conflicted, sum(n), 0
        FROM (SELECT territory_id, status, has_conflicts AS conflicted, 1 AS n FROM new_rows
              UNION ALL
              SELECT territory_id, status, has_conflicts, -1 FROM old_rows) c
        GROUP BY 1, 3, 4 HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION timesheet_entries_count_deltas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO review_count_deltas
        SELECT territory_id, 'timesheet_entry', approval_status, has_conflicts, count(*), sum(duration_minutes)
        FROM new_rows GROUP BY 1, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO review_count_deltas
        SELECT territory_id, 'timesheet_entry', approval_status, has_conflicts, -count(*), -sum(duration_minutes)
        FROM old_rows GROUP BY 1, 3, 4;
    ELSE
        INSERT INTO review_count_deltas
        SELECT territory_id, 'timesheet_entry', status, conflicted, sum(n), sum(minutes)
        FROM (SELECT territory_id, approval_status AS status, has_conflicts AS conflicted, 1 AS n,
                     duration_minutes::bigint AS minutes FROM new_rows
              UNION ALL
              SELECT territory_id, approval_status, has_conflicts, -1, -duration_minutes::bigint FROM old_rows) c
        GROUP BY 1, 3, 4 HAVING sum(n) <> 0 OR sum(minutes) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER sightings_counted_insert AFTER INSERT ON sightings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sightings_count_deltas();
CREATE TRIGGER sightings_counted_update AFTER UPDATE ON sightings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sightings_count_deltas();
CREATE TRIGGER sightings_counted_delete AFTER DELETE ON sightings
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sightings_count_deltas();
CREATE TRIGGER degradation_reports_counted_insert AFTER INSERT ON degradation_reports
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION degradation_reports_count_deltas();
CREATE TRIGGER degradation_reports_counted_update AFTER UPDATE ON degradation_reports
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION degradation_reports_count_deltas();
CREATE TRIGGER degradation_reports_counted_delete AFTER DELETE ON degradation_reports
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION degradation_reports_count_deltas();
CREATE TRIGGER timesheet_entries_counted_insert AFTER INSERT ON timesheet_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION timesheet_entries_count_deltas();
CREATE TRIGGER timesheet_entries_counted_update AFTER UPDATE ON timesheet_entries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION timesheet_entries_count_deltas();
CREATE TRIGGER timesheet_entries_counted_delete AFTER DELETE ON timesheet_entries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION timesheet_entries_count_deltas();

-- What is already there.
INSERT INTO review_counts
SELECT territory_id, 'sighting', validation_status::text, has_conflicts, count(*), 0
FROM sightings GROUP BY 1, 3, 4;
INSERT INTO review_counts
SELECT territory_id, 'degradation_report', status, has_conflicts, count(*), 0
FROM degradation_reports GROUP BY 1, 3, 4;
INSERT INTO review_counts
SELECT territory_id, 'timesheet_entry', approval_status, has_conflicts, count(*), sum(duration_minutes)
FROM timesheet_entries GROUP BY 1, 3, 4;
