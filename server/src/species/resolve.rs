//! A sighting's taxon, found by name in its territory's species list when the
//! client sent no taxon id (`fieldkit`, a name typed rather than picked).
//!
//! The exact scientific name first, then the name with accents, case and
//! spaces set aside ("parus  Májor" is *Parus major*); a name that still
//! matches nothing (a misspelling: "Parus majr") stays without an id, and the
//! inventory warns about it (`unknownName`). With the id resolved, every part
//! that keys on it works whatever the client: possible duplicates (the
//! sightings' `taxon_key`), `cdNom` in the SINP export, sensitive species.
//! Resolution happens at materialisation, so the id stored is what the
//! species list said when the record last changed.

use std::collections::HashMap;

use sqlx::PgConnection;
use sync::documents::species::{read_species_list, Species};
use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};
use uuid::Uuid;

use crate::inventory::materialise::load_committed;

/// `name` with accents, case and runs of spaces set aside: the key two
/// spellings of one name share.
pub fn name_key(name: &str) -> String {
    name.nfd()
        .filter(|c| !is_combining_mark(*c))
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The taxa of one species list that have an id, by name.
#[derive(Debug, Default)]
pub struct TaxonIndex {
    exact: HashMap<String, i64>,
    /// By [`name_key`]; a key two taxa share resolves to neither.
    folded: HashMap<String, Option<i64>>,
}

impl TaxonIndex {
    pub fn new<'a>(species: impl IntoIterator<Item = &'a Species>) -> TaxonIndex {
        let mut index = TaxonIndex::default();
        for taxon in species {
            let Some(id) = taxon.taxon_id else { continue };
            index.exact.insert(taxon.scientific_name.clone(), id);
            index
                .folded
                .entry(name_key(&taxon.scientific_name))
                .and_modify(|known| {
                    if *known != Some(id) {
                        *known = None;
                    }
                })
                .or_insert(Some(id));
        }
        index
    }

    /// The taxon id of `scientific_name`, if the list knows it.
    pub fn resolve(&self, scientific_name: &str) -> Option<i64> {
        self.exact.get(scientific_name).copied().or_else(|| {
            self.folded
                .get(&name_key(scientific_name))
                .copied()
                .flatten()
        })
    }

    /// The index of `territory`'s current species list (empty if it has none).
    pub async fn of_territory(
        conn: &mut PgConnection,
        territory: Uuid,
    ) -> Result<TaxonIndex, sqlx::Error> {
        let doc_id: Option<String> = sqlx::query_scalar(
            "SELECT doc_id FROM documents WHERE territory_id = $1 AND kind = 'species_list'",
        )
        .bind(territory)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(doc_id) = doc_id else {
            return Ok(TaxonIndex::default());
        };
        let list = load_committed(conn, &doc_id).await?;
        Ok(TaxonIndex::new(read_species_list(&list.doc).values()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taxon(name: &str, id: i64) -> Species {
        Species {
            scientific_name: name.to_string(),
            vernacular_name: None,
            taxon_id: Some(id),
            rank: None,
        }
    }

    #[test]
    fn exact_then_accent_case_and_space_insensitive_and_a_misspelling_stays_unknown() {
        let list = [
            taxon("Parus major", 3764),
            taxon("Cyanistes caeruleus", 534742),
            taxon("Bufo bufo", 212),
            taxon("bufo  Bufo", 999),
        ];
        let index = TaxonIndex::new(&list);
        assert_eq!(index.resolve("Parus major"), Some(3764));
        assert_eq!(index.resolve(" parus  MÁJOR "), Some(3764));
        assert_eq!(index.resolve("Cyanistes cæruleus"), None);
        assert_eq!(index.resolve("Parus majr"), None);
        // Two taxa under one folded name: only the exact spellings resolve.
        assert_eq!(index.resolve("Bufo bufo"), Some(212));
        assert_eq!(index.resolve("bufo  Bufo"), Some(999));
        assert_eq!(index.resolve("BUFO BUFO"), None);
    }
}
