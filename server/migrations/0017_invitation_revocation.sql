-- A coordinator withdraws an invitation not yet redeemed (a card handed to
-- the wrong person, a class that did not come): redeeming it is then refused.
ALTER TABLE invitations
    ADD COLUMN revoked_at timestamptz,
    ADD COLUMN revoked_by uuid REFERENCES accounts (id);
