//! Erasing a person from their notebooks (RGPD art. 17): a notebook's
//! history keeps every value ever written, and phones hold copies of it, so
//! a person's personal fields cannot be removed from the document itself.
//! Erasure replaces it instead by a copy with no history: the same header
//! and records, each at its current value, the personal fields
//! ([`PERSONAL_FIELDS`]) pseudonymised or removed. The copy is a new
//! document (the server retires the old one): a phone still holding the old
//! history shares no change with it, so it can never merge the erased
//! values back.

use automerge::Automerge;
use serde_json::Value as Json;

use super::{
    notebook::{read_notebook, NotebookHeader},
    write::{new_notebook, put_raw_record, WriteError},
};

/// Record fields that hold a person's own words or name: `recordedBy`
/// (free text, usually the observer's name) and `notes`.
pub const PERSONAL_FIELDS: [&str; 2] = [RECORDED_BY, NOTES];
const RECORDED_BY: &str = "recordedBy";
const NOTES: &str = "notes";

/// A history-free copy of `notebook` under `header`: every record at its
/// current (winning) value, `recordedBy` replaced by `pseudonym` (a sighting
/// needs an observer to stay valid), `notes` removed. Returns the copy and
/// how many records it holds.
pub fn erased_copy(
    notebook: &Automerge,
    header: NotebookHeader,
    pseudonym: &str,
) -> Result<(Automerge, usize), WriteError> {
    let read = read_notebook(notebook);
    let mut copy = new_notebook(header);
    for record in &read.records {
        let mut raw = record.raw.clone();
        if let Json::Object(fields) = &mut raw {
            if fields.contains_key(RECORDED_BY) {
                fields.insert(RECORDED_BY.to_string(), Json::String(pseudonym.to_string()));
            }
            fields.remove(NOTES);
        }
        put_raw_record(&mut copy, record.kind, &record.key, &raw)?;
    }
    Ok((copy, read.records.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{set_field, Collection};
    use automerge::ReadDoc;
    use schemas::RecordKind;
    use serde_json::json;
    use uuid::Uuid;

    fn header() -> NotebookHeader {
        NotebookHeader {
            territory_id: Uuid::new_v4(),
            owner_id: Uuid::new_v4(),
        }
    }

    #[test]
    fn the_copy_keeps_every_record_without_the_personal_values_or_any_history() {
        let header = header();
        let mut notebook = new_notebook(header);
        let sighting = Uuid::new_v4();
        put_raw_record(
            &mut notebook,
            RecordKind::Sighting,
            &sighting.to_string(),
            &json!({"id": sighting.to_string(), "scientificName": "Parus major",
                    "recordedBy": "Camille Durand", "notes": "near Camille's house"}),
        )
        .unwrap();
        set_field(
            &mut notebook,
            RecordKind::Sighting,
            sighting,
            "notes",
            &json!("seen from 3 rue des Lilas"),
        )
        .unwrap();
        let hours = Uuid::new_v4();
        put_raw_record(
            &mut notebook,
            RecordKind::TimesheetEntry,
            &hours.to_string(),
            &json!({"id": hours.to_string(), "activity": "survey", "notes": "with my son"}),
        )
        .unwrap();

        let (copy, records) = erased_copy(&notebook, header, "Personne effacée 1a2b").unwrap();

        assert_eq!(records, 2);
        let read = read_notebook(&copy);
        assert_eq!(read.header, Ok(header));
        let copied_sighting = read
            .records
            .iter()
            .find(|r| r.kind == Collection::Sightings.kind())
            .unwrap();
        assert_eq!(
            copied_sighting.raw,
            json!({"id": sighting.to_string(), "scientificName": "Parus major",
                   "recordedBy": "Personne effacée 1a2b"})
        );
        let copied_hours = read
            .records
            .iter()
            .find(|r| r.kind == RecordKind::TimesheetEntry)
            .unwrap();
        assert_eq!(
            copied_hours.raw,
            json!({"id": hours.to_string(), "activity": "survey"})
        );
        // Nothing of the old values anywhere in the copy's history.
        let saved = copy.save_nocompress();
        for erased in ["Camille", "rue des Lilas", "with my son"] {
            assert!(
                !saved.windows(erased.len()).any(|w| w == erased.as_bytes()),
                "{erased} is still in the copy's history"
            );
        }
        let shared = copy
            .get_changes(&[])
            .iter()
            .filter(|c| notebook.get_change_by_hash(&c.hash()).is_some())
            .count();
        assert_eq!(shared, 0, "the copy shares no change with the old history");
    }
}
