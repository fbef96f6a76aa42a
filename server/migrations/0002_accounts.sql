-- Who may see and write what: accounts, their roles per territory, phones
-- enrolled through single-use invitations, and web sessions.
--
-- Secrets are never stored: passwords as argon2id PHC strings, random
-- credentials (session tokens, device credentials, invitation codes) as the
-- hex SHA-256 of the secret, looked up through a unique index. docs/SECURITY.md
-- explains why a fast hash is right for random secrets and wrong for passwords.

-- The boundary is the ecosystem or commune a régie or association looks after;
-- nullable because a territory is often created before anyone has drawn it.
ALTER TABLE territories
    ADD COLUMN description text,
    ADD COLUMN boundary    geometry(MultiPolygon, 4326);
CREATE INDEX territories_boundary_idx ON territories USING gist (boundary);

-- Named places inside a territory (a pond, a stretch of bank) that volunteers
-- pick instead of typing coordinates.
CREATE TABLE sites (
    id            uuid PRIMARY KEY,
    territory_id  uuid NOT NULL REFERENCES territories (id),
    name          text NOT NULL,
    geom          geometry(Point, 4326),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sites_territory_idx ON sites (territory_id);
CREATE INDEX sites_geom_idx ON sites USING gist (geom);

-- A person. Volunteers enrolled by invitation have neither email nor password:
-- their phones hold device credentials. Admin is the only global role.
CREATE TABLE accounts (
    id             uuid PRIMARY KEY,
    display_name   text NOT NULL CHECK (btrim(display_name) <> ''),
    email          text,
    password_hash  text,
    is_admin       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);
-- Logins compare emails case-insensitively; so does uniqueness.
CREATE UNIQUE INDEX accounts_email_idx ON accounts (lower(email));

-- Roles are per territory: a person may coordinate one territory and volunteer
-- in another.
CREATE TABLE memberships (
    account_id    uuid NOT NULL REFERENCES accounts (id),
    territory_id  uuid NOT NULL REFERENCES territories (id),
    role          text NOT NULL CHECK (role IN ('volunteer', 'coordinator', 'regie_auditor')),
    granted_by    uuid REFERENCES accounts (id),
    granted_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, territory_id, role)
);
CREATE INDEX memberships_territory_idx ON memberships (territory_id, role);

-- A phone enrolled with one redemption of an invitation. Revoking it (lost
-- phone) refuses its credential at once and closes its open sync connections.
CREATE TABLE devices (
    id               uuid PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES accounts (id),
    name             text NOT NULL,
    credential_hash  text NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz,
    revoked_at       timestamptz,
    revoked_by       uuid REFERENCES accounts (id)
);
CREATE INDEX devices_account_idx ON devices (account_id);

-- Single use and expiring: redeeming sets redeemed_at in one conditional
-- UPDATE, so of two phones racing with the same code exactly one wins.
-- `account_id` set: the invitation enrols another phone of an existing person.
CREATE TABLE invitations (
    id                  uuid PRIMARY KEY,
    code_hash           text NOT NULL UNIQUE,
    territory_id        uuid NOT NULL REFERENCES territories (id),
    role                text NOT NULL CHECK (role IN ('volunteer', 'coordinator', 'regie_auditor')),
    display_name        text NOT NULL,
    account_id          uuid REFERENCES accounts (id),
    created_by          uuid NOT NULL REFERENCES accounts (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    redeemed_at         timestamptz,
    redeemed_device_id  uuid REFERENCES devices (id)
);
CREATE INDEX invitations_territory_idx ON invitations (territory_id);

-- Password logins to the web/API (coordinators, auditors, admins).
CREATE TABLE sessions (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id),
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX sessions_account_idx ON sessions (account_id);
