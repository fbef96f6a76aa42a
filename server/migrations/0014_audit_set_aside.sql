-- Queued commits the audit write-out could not write (issue 22).
--
-- A commit is queued for the audit trail by the transaction that accepts it
-- (0013) and written out as entries afterwards. A commit whose entries cannot
-- be stored — a field name or value holding U+0000, which jsonb cannot hold,
-- accepted before the sync judge refused such characters — failed the
-- write-out on every retry, and every later commit stayed queued behind it:
-- one volunteer stopped the trail of every territory. Such a commit is now
-- moved here with its reason, in the write-out's transaction, and the rest of
-- the trail goes on; verification lists the territory's set-aside commits
-- and /health counts them. The changes themselves stay stored (the commit's
-- chunk, its receipts): nothing accepted is lost, only its audit entries are
-- missing, and that is said, not hidden.

CREATE TABLE audit_commits_set_aside (
    -- The commit's id in audit_commits_pending.
    id bigint PRIMARY KEY,
    territory_id uuid NOT NULL,
    doc_id text NOT NULL,
    chunk_key text NOT NULL,
    heads text[] NOT NULL,
    changes text[] NOT NULL,
    -- When the accepting transaction began.
    recorded_at timestamptz NOT NULL,
    reason text NOT NULL,
    set_aside_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_commits_set_aside_territory_idx ON audit_commits_set_aside (territory_id, id);
