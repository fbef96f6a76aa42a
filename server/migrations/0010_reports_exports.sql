-- What régies hand to funders and to national platforms (issue 12): the
-- hourly rates volunteer time is valued at, the reports issued (kept as
-- issued, so their hash can be checked later), and how a territory's
-- exports treat sensitive species.

-- The value of an hour of volunteer time from `effective_from` until the next
-- rate (valorisation du bénévolat: the SMIC, or a rate the territory sets).
CREATE TABLE hourly_rates (
    territory_id    uuid NOT NULL REFERENCES territories (id),
    effective_from  date NOT NULL,
    cents_per_hour  integer NOT NULL CHECK (cents_per_hour > 0 AND cents_per_hour <= 100000),
    basis           text NOT NULL CHECK (basis IN ('smic', 'set')),
    note            text,
    set_by          uuid NOT NULL REFERENCES accounts (id),
    set_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (territory_id, effective_from)
);

-- A report exactly as it was issued: `content` is the canonical JSON whose
-- SHA-256 is `sha256`, the figure printed on every rendering of it.
CREATE TABLE issued_reports (
    sha256        text PRIMARY KEY,
    territory_id  uuid NOT NULL REFERENCES territories (id),
    kind          text NOT NULL CHECK (kind IN ('hours')),
    period_from   date NOT NULL,
    period_to     date NOT NULL,
    issued_by     uuid NOT NULL REFERENCES accounts (id),
    issued_at     timestamptz NOT NULL,
    content       text NOT NULL
);
CREATE INDEX issued_reports_territory_idx ON issued_reports (territory_id, issued_at);
CREATE TRIGGER issued_reports_append_only BEFORE UPDATE OR DELETE ON issued_reports
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_rewrite();
REVOKE UPDATE, DELETE, TRUNCATE ON issued_reports FROM PUBLIC;

-- What the exports say about the data (the Darwin Core Archive's eml.xml),
-- and the grid sensitive species' coordinates are generalised to.
ALTER TABLE territories
    ADD COLUMN export_licence text NOT NULL DEFAULT 'CC-BY-4.0'
        CHECK (export_licence IN ('CC0-1.0', 'CC-BY-4.0', 'CC-BY-NC-4.0')),
    ADD COLUMN export_organisation text,
    ADD COLUMN export_contact_name text,
    ADD COLUMN export_contact_email text,
    ADD COLUMN sensitive_grid_m integer NOT NULL DEFAULT 10000
        CHECK (sensitive_grid_m IN (1000, 2000, 5000, 10000));

-- Taxa whose exact places are not exported: by TAXREF id, or by name for a
-- taxon without one.
CREATE TABLE sensitive_taxa (
    territory_id     uuid NOT NULL REFERENCES territories (id),
    taxon_id         bigint,
    scientific_name  text NOT NULL,
    CHECK (length(btrim(scientific_name)) > 0)
);
CREATE UNIQUE INDEX sensitive_taxa_key_idx
    ON sensitive_taxa (territory_id, COALESCE(taxon_id::text, lower(scientific_name)));
