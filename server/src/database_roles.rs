//! The cluster-wide role the service's rights hang on. Roles belong to the
//! cluster, not to a database: migration 0009 creates `fieldnotes_service`
//! when it may, migration 0020 grants it its rights, and a new cluster
//! (the embedded one, or the target of a restore) gets it here first.

/// Creates `fieldnotes_service` unless the cluster holds it (another
/// process may create it at the same moment). A role that may not create
/// roles leaves it to the cluster's administrator (docs/DEPLOYMENT.md): a
/// notice, not an error. Migration 0009 holds the same statement; released
/// migrations are not edited.
pub const CREATE_SERVICE_ROLE: &str = "DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldnotes_service') THEN
        BEGIN
            CREATE ROLE fieldnotes_service NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create role fieldnotes_service: the service keeps its login role';
END $$";
