-- A coordinator retires a site (a pond filled in, a garden closed): the
-- phones stop offering it for new records, while the records that already
-- name it stay as they are (a phone offline for a week may still send some).
-- Reactivating clears both columns.
ALTER TABLE sites
    ADD COLUMN deactivated_at timestamptz,
    ADD COLUMN deactivated_by uuid REFERENCES accounts (id);

-- Who disabled an account (`disabled_at` exists since 0002): its sessions
-- are ended and its phones refused until an admin enables it again.
ALTER TABLE accounts
    ADD COLUMN disabled_by uuid REFERENCES accounts (id);
