-- The audit trail's background work (issue 12), in two parts: chaining in
-- batches, and writing accepted commits out as entries after their commit.

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
-- Entries take their places in the order their accepting transactions
-- began (`recorded_at`), then the order they were appended: a change's
-- entries are written out after its commit (below), so a decision taken
-- meanwhile is appended first but chained after it.
--
-- The hash is unchanged (`audit_entry_hash`), so chains made before this
-- migration verify as they did. Only this function writes the log: the
-- service's role may not insert into it (0009), so no trigger is needed to
-- chain an insert made some other way.

CREATE INDEX audit_pending_order_idx ON audit_pending (recorded_at, id);

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
        WHERE id IN (SELECT id FROM audit_pending ORDER BY recorded_at, id LIMIT batch)
        RETURNING *
    )
    SELECT coalesce(array_agg(taken ORDER BY territory_id, recorded_at, id), '{}') INTO picked
    FROM taken;
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

-- Commits of notebook changes not yet written out as audit entries: one row
-- per document commit, inserted by the transaction that accepts it (so an
-- acknowledged change is in the trail whatever happens to the process
-- after), and turned into one `audit_pending` entry per change and record
-- by `audit::trail::write_out`, in the background like the chaining.
-- Reading a change's fields back is automerge work and storing them a row
-- per record: done in the accepting transaction, they slowed a storm of
-- reconnecting phones by a fifth (docs/PERFORMANCE.md). The entries are
-- computed from the commit's own chunk and the document at the commit's
-- heads, both stored with it and never rewritten, so they are what the
-- commit would have computed; who delivered each change is its receipt
-- (`change_receipts`, written in the same transaction).
CREATE TABLE audit_commits_pending (
    id            bigserial PRIMARY KEY,
    territory_id  uuid NOT NULL REFERENCES territories (id),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    doc_id        text COLLATE "C" NOT NULL REFERENCES documents (doc_id),
    -- `automerge_chunks.key` of the chunk holding the commit's changes.
    chunk_key     text NOT NULL,
    -- The document's heads once the commit's changes were applied.
    heads         text[] NOT NULL,
    -- The changes the commit accepted, in the order they were received.
    changes       text[] NOT NULL
);
