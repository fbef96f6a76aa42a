-- One-time password resets an admin issues for a person who forgot theirs:
-- the code is shown once (to pass on by a channel the admin trusts) and kept
-- as its SHA-256, like every other secret. Redeeming sets the new password
-- and `used_at` in one conditional UPDATE, so a code works once; issuing a
-- new one for the account withdraws the ones still unused.
CREATE TABLE password_resets (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id),
    code_hash   text NOT NULL UNIQUE,
    issued_by   uuid NOT NULL REFERENCES accounts (id),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    withdrawn_at timestamptz
);
CREATE INDEX password_resets_account_idx ON password_resets (account_id);
