-- Chaining a batch of pending audit entries (migration 0009) in one pass:
-- each territory's head row is read and locked once per batch and written
-- once, and the batch's entries go into the log in one statement.
--
-- 0009's row trigger read, locked and rewrote the head for every entry. In
-- one transaction those rewrites of the same row pile up as versions no one
-- can prune until it commits, so each entry's lookup of its head walked past
-- every version the batch had made before it: a storm's chaining did work
-- growing with the square of its batch.
--
-- The hash is unchanged (`audit_entry_hash`), so chains made before this
-- migration verify as they did. Only this function writes the log: the
-- service's role may not insert into it (0009), so no trigger is needed to
-- chain an insert made some other way.

DROP TRIGGER audit_log_chain ON audit_log;
DROP FUNCTION audit_log_chain();

CREATE OR REPLACE FUNCTION audit_chain_pending(batch integer) RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    picked audit_pending[];
    pending audit_pending;
    head audit_chain_heads;
    entry audit_log;
    chained audit_log[] := '{}';
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('fieldnotes audit chaining')) THEN
        RETURN 0;
    END IF;
    WITH taken AS (
        DELETE FROM audit_pending
        WHERE id IN (SELECT id FROM audit_pending ORDER BY id LIMIT batch)
        RETURNING *
    )
    SELECT coalesce(array_agg(taken ORDER BY territory_id, id), '{}') INTO picked FROM taken;
    FOREACH pending IN ARRAY picked LOOP
        IF head.territory_id IS DISTINCT FROM pending.territory_id THEN
            IF head.territory_id IS NOT NULL THEN
                UPDATE audit_chain_heads SET seq = head.seq, hash = head.hash
                WHERE territory_id = head.territory_id;
            END IF;
            INSERT INTO audit_chain_heads (territory_id, seq, hash)
            VALUES (pending.territory_id, 0, '') ON CONFLICT (territory_id) DO NOTHING;
            SELECT * INTO head FROM audit_chain_heads
            WHERE territory_id = pending.territory_id FOR UPDATE;
        END IF;
        entry.territory_id := pending.territory_id;
        entry.seq := head.seq + 1;
        entry.recorded_at := pending.recorded_at;
        entry.action := pending.action;
        entry.actor_id := pending.actor_id;
        entry.device_id := pending.device_id;
        entry.session_id := pending.session_id;
        entry.doc_id := pending.doc_id;
        entry.record_id := pending.record_id;
        entry.record_kind := pending.record_kind;
        entry.change_hash := pending.change_hash;
        entry.before := pending.before;
        entry.after := pending.after;
        entry.detail := pending.detail;
        entry.prev_hash := head.hash;
        entry.hash := audit_entry_hash(head.hash, entry);
        chained := array_append(chained, entry);
        head.seq := entry.seq;
        head.hash := entry.hash;
    END LOOP;
    IF head.territory_id IS NOT NULL THEN
        UPDATE audit_chain_heads SET seq = head.seq, hash = head.hash
        WHERE territory_id = head.territory_id;
    END IF;
    INSERT INTO audit_log SELECT * FROM unnest(chained);
    RETURN cardinality(picked);
END $$;
