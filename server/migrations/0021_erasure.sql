-- Erasing a person (RGPD art. 17, issue 25): their account pseudonymised,
-- their notebooks replaced by history-free copies without their personal
-- fields, and those fields redacted from the audit trail without breaking
-- its verification (`server::personal_data::erasure`).

-- An erased account keeps its row (records, decisions and the audit trail
-- point to it by id) under a pseudonym, with no email, password, roles or
-- phones.
ALTER TABLE accounts
    ADD COLUMN erased_at timestamptz,
    ADD COLUMN erased_by uuid REFERENCES accounts (id);

-- A notebook replaced at an erasure: its chunks are deleted, its row stays
-- (receipts point to it) as `retired`, naming the copy that replaced it. No
-- peer reads or writes a retired document.
ALTER TABLE documents DROP CONSTRAINT documents_kind_check;
ALTER TABLE documents ADD CONSTRAINT documents_kind_check
    CHECK (kind IN ('unknown', 'notebook', 'review', 'species_list', 'species_list_inactive',
                    'retired'));
ALTER TABLE documents
    ADD COLUMN replaced_by text COLLATE "C" REFERENCES documents (doc_id),
    ADD COLUMN retired_at timestamptz;

-- The audit trail stays append-only but for one thing: an erasure replaces
-- personal values in entries' `before`, `after` and `detail` by a marker
-- `{"erased": <erasure id>}`. Each such entry keeps its hash (so the next
-- entry still follows it); the erasure's own entry, appended to the chain
-- in the same transaction, commits to every redacted entry's hash before
-- and after (`detail.redacted`: [seq, hash, redacted hash]), and
-- verification checks a redacted entry against that (`audit::verify`).
-- Only `audit_erase` switches the redaction on, for its own transaction.
CREATE FUNCTION audit_log_redaction_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('fieldnotes.audit_redaction', true) IS DISTINCT FROM 'on'
       OR (NEW.territory_id, NEW.seq, NEW.recorded_at, NEW.action, NEW.actor_id, NEW.device_id,
           NEW.session_id, NEW.doc_id, NEW.record_id, NEW.record_kind, NEW.change_hash,
           NEW.prev_hash, NEW.hash)
          IS DISTINCT FROM
          (OLD.territory_id, OLD.seq, OLD.recorded_at, OLD.action, OLD.actor_id, OLD.device_id,
           OLD.session_id, OLD.doc_id, OLD.record_id, OLD.record_kind, OLD.change_hash,
           OLD.prev_hash, OLD.hash) THEN
        RAISE EXCEPTION 'audit_log is append-only: UPDATE refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_rewrite();
CREATE TRIGGER audit_log_redaction_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_redaction_only();

-- `obj` with the value of each of `fields` it has replaced by `marker`.
CREATE FUNCTION audit_erase_keys(obj jsonb, fields text[], marker jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(key, CASE WHEN key = ANY(fields) THEN marker ELSE value END),
                    '{}'::jsonb)
    FROM jsonb_each(obj)
$$;

-- Erases from `territory`'s trail the personal fields (`recordedBy`,
-- `notes`: fixed here, not chosen by the caller) of the records of
-- `doc_ids` (the person's notebooks) and of the conflicts resolved on them
-- (`record_ids`), then appends the erasure's entry, and returns its seq.
-- Everything pending is chained first, so that no entry about those
-- records comes after the erasure unredacted; commits of those notebooks
-- not yet written out as entries make it fail (the caller writes them out
-- and tries again). Runs as the migrations' role: the service may not
-- update the log itself, and every call leaves its entry in the chain.
CREATE FUNCTION audit_erase(territory uuid, erasure uuid, subject uuid, erased_by uuid,
                            erased_in_session uuid, doc_ids text[], record_ids uuid[],
                            summary jsonb) RETURNS bigint LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    fields constant text[] := ARRAY['recordedBy', 'notes'];
    marker constant jsonb := jsonb_build_object('erased', erasure);
    entry audit_log;
    original bytea;
    redacted jsonb := '[]';
    head audit_chain_heads;
    erasure_entry audit_log;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('fieldnotes audit chaining'));
    WHILE audit_chain_pending(10000) > 0 LOOP
    END LOOP;
    IF EXISTS (SELECT 1 FROM audit_commits_pending WHERE doc_id = ANY(doc_ids)) THEN
        RAISE EXCEPTION 'commits of these notebooks are not written out to the audit trail yet'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM set_config('fieldnotes.audit_redaction', 'on', true);
    FOR entry IN
        SELECT * FROM audit_log a
        WHERE a.territory_id = territory
          AND ((a.doc_id = ANY(doc_ids) AND (a.before ?| fields OR a.after ?| fields))
               OR (a.action = 'conflict_resolution' AND a.record_id = ANY(record_ids)
                   AND a.detail #>> '{detail,field}' = ANY(fields)))
        ORDER BY a.seq FOR UPDATE
    LOOP
        original := entry.hash;
        entry.before := audit_erase_keys(entry.before, fields, marker);
        entry.after := audit_erase_keys(entry.after, fields, marker);
        IF entry.action = 'conflict_resolution' THEN
            -- The chosen value is the status; every value is in the detail.
            entry.detail := entry.detail || jsonb_build_object('status', marker, 'detail',
                audit_erase_keys(entry.detail -> 'detail', ARRAY['value', 'values'], marker));
        END IF;
        UPDATE audit_log SET before = entry.before, after = entry.after, detail = entry.detail
        WHERE audit_log.territory_id = territory AND seq = entry.seq;
        redacted := redacted || jsonb_build_array(jsonb_build_array(
            entry.seq, encode(original, 'hex'), encode(audit_entry_hash(entry.prev_hash, entry), 'hex')));
    END LOOP;
    PERFORM set_config('fieldnotes.audit_redaction', 'off', true);

    UPDATE review_history
    SET status = NULL,
        detail = audit_erase_keys(detail, ARRAY['value', 'values'], marker)
    WHERE action = 'conflict_resolution' AND record_id = ANY(record_ids)
      AND detail ->> 'field' = ANY(fields);

    INSERT INTO audit_chain_heads (territory_id, seq, hash)
    VALUES (territory, 0, '') ON CONFLICT (territory_id) DO NOTHING;
    SELECT * INTO head FROM audit_chain_heads WHERE territory_id = territory FOR UPDATE;
    erasure_entry.territory_id := territory;
    erasure_entry.seq := head.seq + 1;
    erasure_entry.recorded_at := now();
    erasure_entry.action := 'erasure';
    erasure_entry.actor_id := erased_by;
    erasure_entry.session_id := erased_in_session;
    erasure_entry.before := '{}';
    erasure_entry.after := '{}';
    erasure_entry.detail := summary || jsonb_build_object(
        'erasureId', erasure, 'subject', subject, 'fields', to_jsonb(fields),
        'redacted', redacted);
    erasure_entry.prev_hash := head.hash;
    erasure_entry.hash := audit_entry_hash(head.hash, erasure_entry);
    INSERT INTO audit_log SELECT erasure_entry.*;
    UPDATE audit_chain_heads SET seq = erasure_entry.seq, hash = erasure_entry.hash
    WHERE audit_chain_heads.territory_id = territory;
    RETURN erasure_entry.seq;
END $$;
