-- A species list re-imported whole keeps every former entry in its history,
-- which a new phone fetches with it: when the history outweighs the list,
-- the server writes the list as a fresh document and moves the territory to
-- it (`server::species`). The former document, and the new one while it is
-- being written, are `species_list_inactive`: still a species list (members
-- read it, no peer writes it), no longer the one `GET …/species-list` names.
ALTER TABLE documents DROP CONSTRAINT documents_kind_check;
ALTER TABLE documents ADD CONSTRAINT documents_kind_check
    CHECK (kind IN ('unknown', 'notebook', 'review', 'species_list', 'species_list_inactive'));
