-- Live updates (issue 10): every change to what a coordinator's page shows
-- is announced on the channel `inventory_changed` (`server::live`), payload
-- `<territory id> <kind>`, kind as the API names it: `sighting`,
-- `degradation_report`, `timesheet_entry`, or `invalid_record`.
--
-- Triggers rather than a NOTIFY in the Rust code, so that every writer is
-- covered whatever its path: materialisation, decisions (whose own triggers
-- update the rows), conflict resolutions (a notebook change, materialised),
-- duplicate merges and dismissals, and a hand-made SQL fix. The NOTIFY is
-- sent only if the transaction commits (a savepoint rolled back drops its
-- own), and PostgreSQL delivers identical payloads of one transaction once:
-- a notebook of 500 records or a decision on 10 000 is one notification per
-- territory and kind, however many rows it touched.

CREATE FUNCTION live_inventory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- The kind, given where the trigger is created.
    kind text := TG_ARGV[0];
BEGIN
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('inventory_changed', NEW.territory_id::text || ' ' || kind);
    END IF;
    -- A row deleted, or moved to another territory: the one it left changed too.
    IF TG_OP <> 'INSERT' THEN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('inventory_changed', OLD.territory_id::text || ' ' || kind);
        ELSIF OLD.territory_id IS DISTINCT FROM NEW.territory_id THEN
            PERFORM pg_notify('inventory_changed', OLD.territory_id::text || ' ' || kind);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER sightings_live AFTER INSERT OR UPDATE OR DELETE ON sightings
    FOR EACH ROW EXECUTE FUNCTION live_inventory_changed('sighting');
CREATE TRIGGER degradation_reports_live AFTER INSERT OR UPDATE OR DELETE ON degradation_reports
    FOR EACH ROW EXECUTE FUNCTION live_inventory_changed('degradation_report');
CREATE TRIGGER timesheet_entries_live AFTER INSERT OR UPDATE OR DELETE ON timesheet_entries
    FOR EACH ROW EXECUTE FUNCTION live_inventory_changed('timesheet_entry');
CREATE TRIGGER invalid_records_live AFTER INSERT OR UPDATE OR DELETE ON invalid_records
    FOR EACH ROW EXECUTE FUNCTION live_inventory_changed('invalid_record');
-- A dismissed pair leaves the duplicate proposals, which are sightings'.
CREATE TRIGGER duplicate_dismissals_live AFTER INSERT OR UPDATE OR DELETE ON duplicate_dismissals
    FOR EACH ROW EXECUTE FUNCTION live_inventory_changed('sighting');

-- A decision usually shows on its record's row (0006's triggers update it,
-- which announces it), but not when the record is invalid just then (it has
-- no row), and a record's history changes either way: decisions are
-- announced themselves, under their record's kind (the same payload as the
-- row's, so still one notification).
CREATE FUNCTION live_decision_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('inventory_changed', NEW.territory_id::text || ' ' || NEW.record_kind);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('inventory_changed', OLD.territory_id::text || ' ' || OLD.record_kind);
        ELSIF OLD.territory_id IS DISTINCT FROM NEW.territory_id
              OR OLD.record_kind IS DISTINCT FROM NEW.record_kind THEN
            PERFORM pg_notify('inventory_changed', OLD.territory_id::text || ' ' || OLD.record_kind);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER review_decisions_live AFTER INSERT OR UPDATE OR DELETE ON review_decisions
    FOR EACH ROW EXECUTE FUNCTION live_decision_changed();
