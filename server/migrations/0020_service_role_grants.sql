-- The service's rights, given here once rather than by the server at every
-- start: `fieldnotes_service` (migration 0009) may read and write every
-- table but rewrite the audit trail, the review history and the issued
-- reports. Tables later migrations create get the same rights by default
-- (`ALTER DEFAULT PRIVILEGES`, for the role that runs the migrations — the
-- schema's owner); a later append-only table revokes what it must in its
-- own migration.
--
-- The service then logs in (DATABASE_URL) as a role that is a member of
-- `fieldnotes_service` and of nothing else, while the migrations run as the
-- owner (DATABASE_OWNER_URL; the embedded cluster does both by itself): a
-- compromised service process cannot `RESET ROLE` to a role that may
-- rewrite the trail. An installation whose service still logs in as the
-- owner keeps working as before (it takes `fieldnotes_service` with
-- `SET ROLE` on each connection).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldnotes_service') THEN
        RAISE NOTICE 'role fieldnotes_service is missing: no grants';
        RETURN;
    END IF;
    GRANT USAGE ON SCHEMA public TO fieldnotes_service;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO fieldnotes_service;
    GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO fieldnotes_service;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO fieldnotes_service;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO fieldnotes_service;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_log FROM fieldnotes_service;
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_pending, audit_commits_set_aside, issued_reports,
        review_history FROM fieldnotes_service;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_chain_heads FROM fieldnotes_service;
    -- The migrations' own bookkeeping: read by `/ready`, written by no one
    -- but the owner.
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _sqlx_migrations FROM fieldnotes_service;
END $$;
