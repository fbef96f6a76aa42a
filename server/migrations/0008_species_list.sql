-- The territory's species list (issue 11): one automerge reference document
-- per territory (`sync::species`), written by the server from a
-- coordinator's import and read by every member's phone. Like a review
-- document, its `documents` row exists before any change is stored, so
-- nobody can create another document under its id; it has no owner.
ALTER TABLE documents DROP CONSTRAINT documents_kind_check;
ALTER TABLE documents ADD CONSTRAINT documents_kind_check
    CHECK (kind IN ('unknown', 'notebook', 'review', 'species_list'));
CREATE UNIQUE INDEX documents_species_list_idx ON documents (territory_id)
    WHERE kind = 'species_list';
-- A volunteer's notebooks in a territory (`GET /api/territories/{id}/notebooks`).
CREATE INDEX documents_owner_idx ON documents (owner_id, territory_id) WHERE kind = 'notebook';
