//! The species list: one automerge reference document per territory holding
//! the taxa its volunteers pick from, so a phone autocompletes species names
//! offline and a coordinator's change reaches it as a small delta (automerge
//! sync sends only the changes the phone lacks).
//!
//! ```text
//! {
//!   "type": "fieldnotes.species_list", "schemaVersion": 1,
//!   "territoryId": "<uuid>",
//!   "species": {
//!     "<key>": { "scientificName": "Parus major",
//!                "vernacularName": "Mésange charbonnière",   (absent if none)
//!                "taxonId": 3764,                            (TAXREF CD_NOM, absent if none)
//!                "rank": "ES" }                              (absent if none)
//!   }
//! }
//! ```
//! `<key>` is [`Species::key`]: the taxon id in decimal when there is one,
//! else the lower-cased scientific name. Every value is a plain scalar
//! (strings are not automerge Text: nobody edits them character by
//! character, and a scalar costs one operation, not one per character).
//!
//! Only the server writes it ([`put_species_list`], from a coordinator's
//! import); a sync peer's change to a species list is refused
//! ([`is_species_list_document`], `judge::Refusal::SpeciesListDocument`).
//! Every member of the territory reads it.

use std::collections::BTreeMap;

use automerge::{transaction::Transactable, Automerge, ObjId, ObjType, ReadDoc, Value, ROOT};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Value of the root `type` field of a species list.
pub const SPECIES_LIST_TYPE: &str = "fieldnotes.species_list";
/// Version of the layout described above.
pub const SPECIES_LIST_SCHEMA_VERSION: i64 = 1;

/// One taxon of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Species {
    pub scientific_name: String,
    pub vernacular_name: Option<String>,
    /// TAXREF `CD_NOM`.
    pub taxon_id: Option<i64>,
    /// TAXREF `RANG` (`ES` species, `SSES` subspecies, `GN` genus, …).
    pub rank: Option<String>,
}

impl Species {
    /// The entry's key in the document: the taxon id when there is one (two
    /// spellings of one TAXREF taxon are one entry), else the lower-cased
    /// scientific name (the sightings' `taxon_key` uses the same rule).
    pub fn key(&self) -> String {
        match self.taxon_id {
            Some(id) => id.to_string(),
            None => self.scientific_name.to_lowercase(),
        }
    }
}

/// What writing a list changed, entry by entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ListChanges {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
}

/// Whether `doc` is a species list (its root `type` says so).
pub fn is_species_list_document<D: ReadDoc>(doc: &D) -> bool {
    matches!(
        doc.get(ROOT, "type"),
        Ok(Some((Value::Scalar(s), _))) if s.as_str() == Some(SPECIES_LIST_TYPE)
    )
}

/// Entries one change writes at most. automerge's sync (0.12) sends a peer
/// the whole document, instead of the changes it lacks, when those are more
/// than a third of the document's changes — counted in changes, not bytes.
/// A list imported as one change would so be sent whole again with every
/// later one-entry change; written in changes of this many entries, a small
/// update stays the small change it is (`tests/tests/species_list.rs`
/// measures it), and a first sync still travels as one compressed document.
pub const ENTRIES_PER_CHANGE: usize = 250;

/// One entry to write or delete.
enum Step<'a> {
    Put(&'a String, &'a Species, Option<&'a Species>),
    Remove(&'a String),
}

/// What [`put_species_list`] would do to `doc`'s list, without doing it: the
/// scientific names it would add, change and remove, each sorted, so a
/// coordinator sees an import before applying it.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPreview {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

pub fn preview_species_list<D: ReadDoc>(doc: &D, species: &[Species]) -> ListPreview {
    let wanted: BTreeMap<String, &Species> = species.iter().map(|s| (s.key(), s)).collect();
    let held = read_species_list(doc);
    let mut preview = ListPreview::default();
    for (key, want) in &wanted {
        match held.get(key) {
            None => preview.added.push(want.scientific_name.clone()),
            Some(have) if have != *want => preview.changed.push(want.scientific_name.clone()),
            Some(_) => {}
        }
    }
    preview.removed = held
        .iter()
        .filter(|(key, _)| !wanted.contains_key(*key))
        .map(|(_, have)| have.scientific_name.clone())
        .collect();
    for names in [
        &mut preview.added,
        &mut preview.changed,
        &mut preview.removed,
    ] {
        names.sort();
    }
    preview
}

/// Makes the species list of `territory` in `doc` hold exactly `species`
/// (keyed by [`Species::key`]; the caller refuses duplicate keys), writing
/// only what differs from what it holds: a new entry, a changed field, a
/// removed entry. So replacing a list of thousands with one renamed taxon is
/// one small change, and writing the same list twice adds none. Large
/// writes are split into changes of [`ENTRIES_PER_CHANGE`] entries.
pub fn put_species_list(
    doc: &mut Automerge,
    territory: Uuid,
    species: &[Species],
) -> Result<ListChanges, automerge::AutomergeError> {
    let wanted: BTreeMap<String, &Species> = species.iter().map(|s| (s.key(), s)).collect();
    let held = read_species_list(doc);
    let fresh = !is_species_list_document(doc);
    let mut changes = ListChanges::default();
    let pending: Vec<(&String, &Species, Option<&Species>)> = wanted
        .iter()
        .filter_map(|(key, want)| match held.get(key) {
            Some(have) if have == *want => None,
            have => Some((key, *want, have)),
        })
        .collect();
    let removed: Vec<&String> = held.keys().filter(|k| !wanted.contains_key(*k)).collect();
    if pending.is_empty() && removed.is_empty() && !fresh {
        return Ok(changes);
    }
    if fresh {
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "type", SPECIES_LIST_TYPE)?;
            tx.put(ROOT, "schemaVersion", SPECIES_LIST_SCHEMA_VERSION)?;
            tx.put(ROOT, "territoryId", territory.to_string())?;
            tx.put_object(ROOT, "species", ObjType::Map)?;
            Ok(())
        })
        .map_err(|failure| failure.error)?;
    }
    let steps: Vec<Step> = pending
        .iter()
        .map(|&(key, want, have)| Step::Put(key, want, have))
        .chain(removed.iter().map(|&key| Step::Remove(key)))
        .collect();
    for batch in steps.chunks(ENTRIES_PER_CHANGE) {
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            let list = match tx.get(ROOT, "species")? {
                Some((Value::Object(ObjType::Map), id)) => id,
                _ => tx.put_object(ROOT, "species", ObjType::Map)?,
            };
            for step in batch {
                match *step {
                    Step::Put(key, want, have) => {
                        let entry = match (have, tx.get(&list, key.as_str())?) {
                            (Some(_), Some((Value::Object(ObjType::Map), id))) => id,
                            _ => tx.put_object(&list, key.as_str(), ObjType::Map)?,
                        };
                        put_fields(tx, &entry, want, have)?;
                    }
                    Step::Remove(key) => tx.delete(&list, key.as_str())?,
                }
            }
            Ok(())
        })
        .map_err(|failure| failure.error)?;
    }
    for (_, _, have) in &pending {
        if have.is_some() {
            changes.changed += 1;
        } else {
            changes.added += 1;
        }
    }
    changes.removed = removed.len();
    Ok(changes)
}

/// Writes the fields of `want` that `have` (what the entry holds, if
/// anything) lacks or holds otherwise; deletes those `want` has not.
fn put_fields<T: Transactable>(
    tx: &mut T,
    entry: &ObjId,
    want: &Species,
    have: Option<&Species>,
) -> Result<(), automerge::AutomergeError> {
    if have.map(|h| &h.scientific_name) != Some(&want.scientific_name) {
        tx.put(entry, "scientificName", want.scientific_name.as_str())?;
    }
    let text_field = |tx: &mut T,
                      name: &str,
                      want: &Option<String>,
                      have: Option<&Option<String>>| match (want, have) {
        (want, Some(have)) if want == have => Ok(()),
        (Some(value), _) => tx.put(entry, name, value.as_str()),
        (None, Some(_)) => tx.delete(entry, name),
        (None, None) => Ok(()),
    };
    text_field(
        tx,
        "vernacularName",
        &want.vernacular_name,
        have.map(|h| &h.vernacular_name),
    )?;
    text_field(tx, "rank", &want.rank, have.map(|h| &h.rank))?;
    match (want.taxon_id, have.map(|h| h.taxon_id)) {
        (want, Some(have)) if want == have => {}
        (Some(id), _) => tx.put(entry, "taxonId", id)?,
        (None, Some(_)) => tx.delete(entry, "taxonId")?,
        (None, None) => {}
    }
    Ok(())
}

/// How many entries a species list holds, without reading them.
pub fn species_count<D: ReadDoc>(doc: &D) -> usize {
    match doc.get(ROOT, "species") {
        Ok(Some((Value::Object(ObjType::Map), list))) => doc.length(&list),
        _ => 0,
    }
}

/// Every entry of a species list, by key; entries without a scientific name
/// (which the server never writes) are left out.
pub fn read_species_list<D: ReadDoc>(doc: &D) -> BTreeMap<String, Species> {
    let Ok(Some((Value::Object(ObjType::Map), list))) = doc.get(ROOT, "species") else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for item in doc.map_range(&list, ..) {
        let entry = item.id();
        let text = |name: &str| match doc.get(&entry, name) {
            Ok(Some((Value::Scalar(s), _))) => s.as_str().map(str::to_string),
            _ => None,
        };
        let Some(scientific_name) = text("scientificName") else {
            continue;
        };
        let taxon_id = match doc.get(&entry, "taxonId") {
            Ok(Some((Value::Scalar(s), _))) => s.as_i64(),
            _ => None,
        };
        out.insert(
            item.key.to_string(),
            Species {
                scientific_name,
                vernacular_name: text("vernacularName"),
                taxon_id,
                rank: text("rank"),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taxon(id: Option<i64>, name: &str, vernacular: Option<&str>) -> Species {
        Species {
            scientific_name: name.into(),
            vernacular_name: vernacular.map(Into::into),
            taxon_id: id,
            rank: Some("ES".into()),
        }
    }

    #[test]
    fn a_list_is_written_read_back_and_rewritten_only_where_it_differs() {
        let territory = Uuid::new_v4();
        let mut doc = Automerge::new();
        let first = vec![
            taxon(Some(3764), "Parus major", Some("Mésange charbonnière")),
            taxon(Some(4001), "Erithacus rubecula", None),
            taxon(None, "Taraxacum Sect. Ruderalia", None),
        ];
        let written = put_species_list(&mut doc, territory, &first).unwrap();
        assert_eq!(
            written,
            ListChanges {
                added: 3,
                changed: 0,
                removed: 0
            }
        );
        assert!(is_species_list_document(&doc));
        let read = read_species_list(&doc);
        assert_eq!((read.len(), species_count(&doc)), (3, 3));
        assert_eq!(read["3764"], first[0]);
        assert_eq!(read["taraxacum sect. ruderalia"], first[2]);
        assert!(matches!(
            doc.get(ROOT, "territoryId"),
            Ok(Some((Value::Scalar(s), _))) if s.as_str() == Some(territory.to_string().as_str())
        ));

        let heads = doc.get_heads();
        assert_eq!(
            put_species_list(&mut doc, territory, &first).unwrap(),
            ListChanges::default()
        );
        assert_eq!(doc.get_heads(), heads, "the same list adds no change");

        // One renamed (vernacular name added), one removed, one added.
        let second = vec![
            taxon(Some(3764), "Parus major", Some("Mésange charbonnière")),
            taxon(
                Some(4001),
                "Erithacus rubecula",
                Some("Rougegorge familier"),
            ),
            taxon(Some(2440), "Bufo bufo", None),
        ];
        let before = doc.get_heads();
        let preview = preview_species_list(&doc, &second);
        assert_eq!(doc.get_heads(), before, "a preview writes nothing");
        assert_eq!(
            preview,
            ListPreview {
                added: vec!["Bufo bufo".to_string()],
                changed: vec!["Erithacus rubecula".to_string()],
                removed: vec!["Taraxacum Sect. Ruderalia".to_string()],
            }
        );
        let written = put_species_list(&mut doc, territory, &second).unwrap();
        assert_eq!(
            written,
            ListChanges {
                added: 1,
                changed: 1,
                removed: 1
            }
        );
        let read = read_species_list(&doc);
        assert_eq!(read.values().cloned().collect::<Vec<_>>(), {
            let mut expected = second.clone();
            expected.sort_by_key(Species::key);
            expected
        });
        // The change touches what differs only: the new entry's four fields,
        // one field of the changed one, one deletion.
        let ops: usize = doc.get_changes(&before).iter().map(|c| c.len()).sum();
        assert!(ops <= 8, "{ops} operations for a three-entry difference");

        // A field that goes away is deleted, not left behind.
        let mut third = second.clone();
        third[1].vernacular_name = None;
        third[1].rank = None;
        put_species_list(&mut doc, territory, &third).unwrap();
        assert_eq!(read_species_list(&doc)["4001"], third[1]);
    }

    /// Bytes the server side sends `phone` until neither side has more to say.
    fn sync_bytes(
        server: &mut Automerge,
        server_state: &mut automerge::sync::State,
        phone: &mut Automerge,
        phone_state: &mut automerge::sync::State,
    ) -> usize {
        use automerge::sync::{Message, SyncDoc};
        let mut sent = 0;
        for _ in 0..20 {
            let from_server = server.generate_sync_message(server_state);
            let from_phone = phone.generate_sync_message(phone_state);
            if from_server.is_none() && from_phone.is_none() {
                return sent;
            }
            if let Some(message) = from_server {
                let bytes = message.encode();
                sent += bytes.len();
                phone
                    .receive_sync_message(phone_state, Message::decode(&bytes).unwrap())
                    .unwrap();
            }
            if let Some(message) = from_phone {
                server.receive_sync_message(server_state, message).unwrap();
            }
        }
        panic!("no convergence in 20 rounds");
    }

    #[test]
    fn a_one_entry_update_reaches_a_synced_peer_as_its_change_not_the_whole_list() {
        let territory = Uuid::new_v4();
        let list: Vec<Species> = (0..5000)
            .map(|i| {
                taxon(
                    Some(100_000 + i),
                    &format!("Genus{:04} epithet{i}", i / 7),
                    None,
                )
            })
            .collect();
        let mut server = Automerge::new();
        put_species_list(&mut server, territory, &list).unwrap();
        // Many changes, so that one more is a small part of the document's
        // (see ENTRIES_PER_CHANGE), whatever its later updates.
        let changes = server.get_changes(&[]).len();
        assert!(changes >= 20, "5000 entries in {changes} changes");
        let (mut server_state, mut phone_state) = Default::default();
        let mut phone = Automerge::new();
        let first = sync_bytes(&mut server, &mut server_state, &mut phone, &mut phone_state);
        assert_eq!(read_species_list(&phone).len(), 5000);

        let mut renamed = list.clone();
        renamed[17].vernacular_name = Some("Espèce renommée".into());
        put_species_list(&mut server, territory, &renamed).unwrap();
        let update = sync_bytes(&mut server, &mut server_state, &mut phone, &mut phone_state);
        assert_eq!(read_species_list(&phone), read_species_list(&server));
        assert!(
            update * 20 < first,
            "the update cost {update} bytes, the first sync {first}"
        );
    }

    #[test]
    fn a_notebook_is_not_a_species_list() {
        let notebook = crate::documents::new_notebook(crate::documents::NotebookHeader {
            territory_id: Uuid::new_v4(),
            owner_id: Uuid::new_v4(),
        });
        assert!(!is_species_list_document(&notebook));
    }
}
