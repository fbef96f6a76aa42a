-- The audit trail (issue 12): every accepted change to a record and every
-- review decision, appended in the transaction that accepts it, hash-chained
-- per territory so that an edited, deleted or reordered entry is found by
-- `audit::verify` (the `verify-audit` subcommand, `GET …/audit/verification`).
--
-- The transaction that accepts a change appends its entry to
-- `audit_pending` (an insert, no lock taken: a storm's commits never queue
-- on the chain); `audit_chain_pending()`, run every half second by the
-- service and before every verification, moves pending entries into
-- `audit_log` in the order they were appended, where the chain trigger
-- gives each its place. Entry `seq` of a territory carries `hash =
-- sha256(prev_hash || canonical text of the entry)`, `prev_hash` being
-- entry `seq - 1`'s hash (empty for the first). `audit_chain_heads` holds
-- each territory's last seq and hash: the row the chaining locks, so
-- territories chain independently, and what shows that entries were cut off
-- the end.

CREATE TABLE audit_chain_heads (
    territory_id  uuid PRIMARY KEY REFERENCES territories (id),
    seq           bigint NOT NULL,
    hash          bytea NOT NULL
);

CREATE TABLE audit_log (
    territory_id  uuid NOT NULL REFERENCES territories (id),
    seq           bigint NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    -- `change`: a change accepted into a notebook (through sync, or the
    -- server's own on a coordinator's behalf); otherwise a review action
    -- (`verification`, `follow_up`, `approval`, `conflict_resolution`,
    -- `duplicate_merge`, `duplicate_dismissal`).
    action        text NOT NULL,
    actor_id      uuid NOT NULL,
    -- The credential that delivered a change: a phone's device, or a web session.
    device_id     uuid,
    session_id    uuid,
    doc_id        text COLLATE "C",
    record_id     uuid,
    record_kind   text,
    change_hash   text,
    -- The fields the entry touched: their values before and after it.
    before        jsonb NOT NULL DEFAULT '{}',
    after         jsonb NOT NULL DEFAULT '{}',
    -- For a decision: status, previous status, reason, detail.
    detail        jsonb NOT NULL DEFAULT '{}',
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL,
    PRIMARY KEY (territory_id, seq)
);
CREATE INDEX audit_log_record_idx ON audit_log (record_id, recorded_at) WHERE record_id IS NOT NULL;

-- Entries appended and not chained yet (for half a second, normally): the
-- same columns but the chain's. `recorded_at` is when the accepting
-- transaction began.
CREATE TABLE audit_pending (
    id            bigserial PRIMARY KEY,
    territory_id  uuid NOT NULL REFERENCES territories (id),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    action        text NOT NULL,
    actor_id      uuid NOT NULL,
    device_id     uuid,
    session_id    uuid,
    doc_id        text COLLATE "C",
    record_id     uuid,
    record_kind   text,
    change_hash   text,
    before        jsonb NOT NULL DEFAULT '{}',
    after         jsonb NOT NULL DEFAULT '{}',
    detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_pending_record_idx ON audit_pending (record_id) WHERE record_id IS NOT NULL;

-- The canonical text an entry's hash covers: jsonb's text form is the same
-- whatever the session (keys sorted, the time in UTC).
CREATE FUNCTION audit_entry_hash(prev_hash bytea, e audit_log) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(prev_hash || convert_to(jsonb_build_object(
        'territory', e.territory_id, 'seq', e.seq,
        'recordedAt', e.recorded_at AT TIME ZONE 'UTC',
        'action', e.action, 'actor', e.actor_id, 'device', e.device_id, 'session', e.session_id,
        'doc', e.doc_id, 'record', e.record_id, 'kind', e.record_kind, 'change', e.change_hash,
        'before', e.before, 'after', e.after, 'detail', e.detail)::text, 'UTF8'))
$$;

-- Chains an entry whatever inserts it (only `audit_chain_pending` does: the
-- service's role may not insert into the log): the territory's head row is
-- locked until the chaining transaction ends, so entries of one territory
-- take their places one at a time, and other territories never wait. It
-- runs as the migrations' role, so the service's own role needs no right to
-- write the heads.
CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head audit_chain_heads;
BEGIN
    INSERT INTO audit_chain_heads (territory_id, seq, hash)
    VALUES (NEW.territory_id, 0, '') ON CONFLICT (territory_id) DO NOTHING;
    SELECT * INTO head FROM audit_chain_heads WHERE territory_id = NEW.territory_id FOR UPDATE;
    NEW.seq := head.seq + 1;
    NEW.prev_hash := head.hash;
    NEW.hash := audit_entry_hash(head.hash, NEW);
    UPDATE audit_chain_heads SET seq = NEW.seq, hash = NEW.hash
    WHERE territory_id = NEW.territory_id;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

-- Append-only, whoever asks: only a superuser who disables the triggers can
-- rewrite the log, and the chain then shows where.
CREATE FUNCTION audit_log_refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_rewrite();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_rewrite();
CREATE TRIGGER audit_chain_heads_no_rewind BEFORE DELETE OR TRUNCATE ON audit_chain_heads
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_rewrite();
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_chain_heads FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_pending FROM PUBLIC;

-- Moves up to `batch` pending entries into the log, oldest first, and says
-- how many it moved. One caller at a time (the advisory lock): two would
-- lock the territories' heads in different orders. Runs as the migrations'
-- role: the service may neither delete pending entries nor insert into the
-- log itself.
CREATE FUNCTION audit_chain_pending(batch integer) RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    moved integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('fieldnotes audit chaining')) THEN
        RETURN 0;
    END IF;
    WITH picked AS (
        DELETE FROM audit_pending
        WHERE id IN (SELECT id FROM audit_pending ORDER BY id LIMIT batch)
        RETURNING *
    )
    INSERT INTO audit_log (territory_id, seq, recorded_at, action, actor_id, device_id, session_id,
                           doc_id, record_id, record_kind, change_hash, before, after, detail,
                           prev_hash, hash)
    SELECT territory_id, 0, recorded_at, action, actor_id, device_id, session_id, doc_id,
           record_id, record_kind, change_hash, before, after, detail, '', ''
    FROM picked ORDER BY id;
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved;
END $$;

-- Review decisions are audited where they are written, whoever writes them
-- (the review's transactions, the sync core's commit of a resolution, the
-- trigger that sets a decision back to pending).
CREATE FUNCTION review_history_to_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_pending (territory_id, action, actor_id, record_id, record_kind, detail)
    VALUES (NEW.territory_id, NEW.action, NEW.decided_by, NEW.record_id, NEW.record_kind,
            jsonb_strip_nulls(jsonb_build_object('status', NEW.status, 'previous', NEW.previous,
                'reason', NEW.reason, 'detail', NEW.detail, 'historyId', NEW.id)));
    RETURN NULL;
END $$;
CREATE TRIGGER review_history_audited AFTER INSERT ON review_history
    FOR EACH ROW EXECUTE FUNCTION review_history_to_audit();

-- The role the service's queries run as (`connect_database` switches to it
-- when it may): everything on the tables but rewriting the audit trail.
-- Roles are shared by a cluster's databases, so a concurrent migration of
-- another database may have created it first.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldnotes_service') THEN
        BEGIN
            CREATE ROLE fieldnotes_service NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create role fieldnotes_service: the service keeps its login role';
END $$;
