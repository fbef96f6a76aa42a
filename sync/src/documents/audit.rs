//! What one change did to a notebook's records, for the audit trail: each
//! record it touched and, for every field it wrote, the value before (the
//! record as its writer saw it: at the change's dependencies) and after (at
//! the change itself). Reading at those heads makes the answer exact whatever
//! was merged concurrently since.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, Change, ChangeHash, ObjType, ReadDoc, Value, ROOT};
use schemas::RecordKind;
use serde_json::{Map, Value as Json};

use super::{
    notebook::Collection,
    read::value_to_json_at,
    written::{written_by, Segment, Written},
};

/// One record as one change left it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordEdit {
    pub kind: RecordKind,
    /// The record's key in its collection (its UUID from a well-behaved client).
    pub record: String,
    /// The touched fields as they were (a field the record lacked: absent).
    pub before: Map<String, Json>,
    /// The touched fields as the change left them (a field it removed: absent).
    pub after: Map<String, Json>,
}

/// The records `change` (applied in `doc`) touched, in collection and key order.
pub fn record_edits(doc: &Automerge, change: &Change) -> Result<Vec<RecordEdit>, String> {
    let (values, objects) = written_by(doc, std::slice::from_ref(change))?;
    // Per record, the fields written; `None`: the record itself (made, replaced or deleted).
    let mut touched: BTreeMap<(Collection, String), BTreeSet<Option<String>>> = BTreeMap::new();
    let mut touch = |path: &[Segment]| {
        let Some((collection, record, rest)) = in_record(path) else {
            return;
        };
        let field = match rest.first() {
            Some(Segment::Key(field)) => Some(field.clone()),
            _ => None,
        };
        touched
            .entry((collection, record.to_string()))
            .or_default()
            .insert(field);
    };
    for value in &values {
        touch(&value.path);
    }
    // Text and list edits show as the object they edit (a text field typed
    // in the JS client), not as values.
    for object in objects.iter().filter(|o| o.kind != ObjType::Map) {
        if object.path.len() >= 3 {
            touch(&object.path);
        }
    }

    let written = scalars_written(&values);
    // Records the change made under a key its writer saw empty: nothing was
    // there before, which the operation itself says (it overwrites nothing),
    // so the history is not read for them (the common case: a new record).
    let made_fresh: BTreeSet<(Collection, &str)> = values
        .iter()
        .filter(|value| !value.overwrites && value.value == Written::Object(ObjType::Map))
        .filter_map(|value| match in_record(&value.path) {
            Some((collection, record, [])) => Some((collection, record)),
            _ => None,
        })
        .collect();
    let before_heads = change.deps().to_vec();
    let after_heads = [change.hash()];
    let mut edits = Vec::with_capacity(touched.len());
    for ((collection, record), fields) in touched {
        let before = if made_fresh.contains(&(collection, record.as_str())) {
            Map::new()
        } else {
            record_at(doc, collection, &record, &before_heads)
        };
        let after = match written.get(&(collection, record.clone())) {
            Some(Some(after)) => after.clone(),
            _ => record_at(doc, collection, &record, &after_heads),
        };
        let names: BTreeSet<String> = if fields.contains(&None) {
            before.keys().chain(after.keys()).cloned().collect()
        } else {
            fields.into_iter().flatten().collect()
        };
        let pick = |fields: &Map<String, Json>| -> Map<String, Json> {
            names
                .iter()
                .filter_map(|name| fields.get(name).map(|v| (name.clone(), v.clone())))
                .collect()
        };
        edits.push(RecordEdit {
            kind: collection.kind(),
            before: pick(&before),
            after: pick(&after),
            record,
        });
    }
    Ok(edits)
}

/// Per record, the record as the change leaves it when that can be told
/// from the change alone, without reading the document's history (the
/// costly part: docs/PERFORMANCE.md): when the change writes only scalars
/// into the record's fields, each field it writes shows, at the change, the
/// last value it wrote there (its operation overwrites every value its
/// writer saw); and when it also made the record, those fields are all the
/// record has. A list or map the change makes in a field and writes nothing
/// into is empty at the change (a new sighting's `photos: []`). `None` for a
/// record it writes anything else into (a text, a filled object, a
/// deletion, an increment, deeper than a field): that one is read at the
/// change.
fn scalars_written(
    values: &[super::written::WrittenValue],
) -> BTreeMap<(Collection, String), Option<Map<String, Json>>> {
    let mut records: BTreeMap<(Collection, String), Option<Map<String, Json>>> = BTreeMap::new();
    // Fields the change writes below (into an object it holds).
    let filled: BTreeSet<(Collection, &str, &str)> = values
        .iter()
        .filter_map(|value| match in_record(&value.path) {
            Some((collection, record, [Segment::Key(field), _, ..])) => {
                Some((collection, record, field.as_str()))
            }
            _ => None,
        })
        .collect();
    // Records whose own key the change wrote: made (a new map) or not.
    let mut made: BTreeMap<(Collection, String), bool> = BTreeMap::new();
    for value in values {
        let Some((collection, record, rest)) = in_record(&value.path) else {
            continue;
        };
        let key = (collection, record.to_string());
        match (rest, &value.value) {
            ([], Written::Object(ObjType::Map)) => {
                made.insert(key.clone(), true);
                records.entry(key).or_insert_with(|| Some(Map::new()));
            }
            ([], _) => {
                made.insert(key.clone(), false);
                records.insert(key, None);
            }
            ([Segment::Key(field)], Written::Scalar(scalar)) => {
                if let Some(fields) = records.entry(key).or_insert_with(|| Some(Map::new())) {
                    fields.insert(field.clone(), super::read::scalar_to_json(scalar));
                }
            }
            ([Segment::Key(field)], Written::Object(kind @ (ObjType::List | ObjType::Map)))
                if !filled.contains(&(collection, record, field.as_str())) =>
            {
                let empty = match kind {
                    ObjType::List => Json::Array(Vec::new()),
                    _ => Json::Object(Map::new()),
                };
                if let Some(fields) = records.entry(key).or_insert_with(|| Some(Map::new())) {
                    fields.insert(field.clone(), empty);
                }
            }
            _ => {
                records.insert(key, None);
            }
        }
    }
    // A record the change did not make may hold fields it did not write:
    // only the fields it wrote are known, which is what an edit shows.
    for (key, fields) in records.iter_mut() {
        if made.get(key) == Some(&false) {
            *fields = None;
        }
    }
    records
}

/// A path inside a record: its collection, its key, and the rest of the
/// path below it (empty for the record itself).
fn in_record(path: &[Segment]) -> Option<(Collection, &str, &[Segment])> {
    let [Segment::Key(collection), Segment::Key(record), rest @ ..] = path else {
        return None;
    };
    let collection = Collection::ALL
        .into_iter()
        .find(|c| c.key() == collection)?;
    Some((collection, record, rest))
}

/// A record's fields (each at its winning value) as the document stood at
/// `heads`; empty where it did not exist, or was not a map.
pub fn record_at(
    doc: &Automerge,
    collection: Collection,
    record: &str,
    heads: &[ChangeHash],
) -> Map<String, Json> {
    let Ok(Some((Value::Object(ObjType::Map), records))) =
        doc.get_at(ROOT, collection.key(), heads)
    else {
        return Map::new();
    };
    let Ok(Some((Value::Object(ObjType::Map), fields))) = doc.get_at(&records, record, heads)
    else {
        return Map::new();
    };
    doc.map_range_at(&fields, .., heads)
        .map(|item| {
            let id = item.id();
            let value = value_to_json_at(doc, &item.value.into_value(), &id, heads);
            (item.key.to_string(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{transaction::Transactable, ScalarValue};

    fn edits_of_last_change(doc: &Automerge) -> Vec<RecordEdit> {
        let hash = doc.get_heads()[0];
        let change = doc.get_change_by_hash(&hash).unwrap().clone();
        record_edits(doc, &change).unwrap()
    }

    #[test]
    fn a_new_record_shows_every_field_after_and_nothing_before() {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        let sightings = tx.put_object(ROOT, "sightings", ObjType::Map).unwrap();
        let record = tx.put_object(&sightings, "r1", ObjType::Map).unwrap();
        tx.put(&record, "scientificName", "Erinaceus europaeus")
            .unwrap();
        tx.put(&record, "individualCount", 1).unwrap();
        tx.commit();
        let edits = edits_of_last_change(&doc);
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].kind, RecordKind::Sighting);
        assert_eq!(edits[0].record, "r1");
        assert!(edits[0].before.is_empty());
        assert_eq!(edits[0].after["scientificName"], "Erinaceus europaeus");
        assert_eq!(edits[0].after["individualCount"], 1);
    }

    #[test]
    fn an_edit_shows_only_its_field_with_the_value_its_writer_saw() {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        let sightings = tx.put_object(ROOT, "sightings", ObjType::Map).unwrap();
        let record = tx.put_object(&sightings, "r1", ObjType::Map).unwrap();
        tx.put(&record, "individualCount", 1).unwrap();
        tx.put(&record, "notes", "au pied du platane").unwrap();
        tx.commit();
        // Another phone, concurrently, and then this one: each edit's
        // "before" is what its own writer saw.
        let mut other = doc.fork();
        let mut tx = other.transaction();
        tx.put(&record, "individualCount", ScalarValue::Int(5))
            .unwrap();
        tx.commit();
        let mut tx = doc.transaction();
        tx.put(&record, "individualCount", 3).unwrap();
        tx.commit();
        let own = edits_of_last_change(&doc);
        doc.merge(&mut other).unwrap();
        assert_eq!(own.len(), 1);
        assert_eq!(
            own[0].before,
            Map::from_iter([("individualCount".into(), 1.into())])
        );
        assert_eq!(
            own[0].after,
            Map::from_iter([("individualCount".into(), 3.into())])
        );
        let other_hash = other.get_heads()[0];
        let change = doc.get_change_by_hash(&other_hash).unwrap().clone();
        let theirs = record_edits(&doc, &change).unwrap();
        assert_eq!(theirs[0].before["individualCount"], 1);
        assert_eq!(theirs[0].after["individualCount"], 5);
        assert!(!theirs[0].after.contains_key("notes"));
    }

    #[test]
    fn a_text_field_typed_into_shows_as_that_field() {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        let reports = tx
            .put_object(ROOT, "degradationReports", ObjType::Map)
            .unwrap();
        let record = tx.put_object(&reports, "d1", ObjType::Map).unwrap();
        let text = tx
            .put_object(&record, "description", ObjType::Text)
            .unwrap();
        tx.splice_text(&text, 0, 0, "dépôt").unwrap();
        tx.commit();
        let mut tx = doc.transaction();
        tx.splice_text(&text, 5, 0, " sauvage").unwrap();
        tx.commit();
        let edits = edits_of_last_change(&doc);
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].kind, RecordKind::DegradationReport);
        assert_eq!(edits[0].before["description"], "dépôt");
        assert_eq!(edits[0].after["description"], "dépôt sauvage");
    }

    #[test]
    fn a_deleted_record_shows_every_field_before_and_nothing_after() {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        let entries = tx
            .put_object(ROOT, "timesheetEntries", ObjType::Map)
            .unwrap();
        let record = tx.put_object(&entries, "t1", ObjType::Map).unwrap();
        tx.put(&record, "minutes", 90).unwrap();
        tx.commit();
        let mut tx = doc.transaction();
        tx.delete(&entries, "t1").unwrap();
        tx.commit();
        let edits = edits_of_last_change(&doc);
        assert_eq!(edits[0].before["minutes"], 90);
        assert!(edits[0].after.is_empty());
    }

    /// A record made afresh is read from the change alone, but one made
    /// again under a key that held a record still shows what it replaced.
    #[test]
    fn a_record_replaced_under_its_key_shows_the_record_it_replaced() {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        let sightings = tx.put_object(ROOT, "sightings", ObjType::Map).unwrap();
        let first = tx.put_object(&sightings, "r1", ObjType::Map).unwrap();
        tx.put(&first, "individualCount", 4).unwrap();
        tx.commit();
        assert!(edits_of_last_change(&doc)[0].before.is_empty());
        let mut tx = doc.transaction();
        let again = tx.put_object(&sightings, "r1", ObjType::Map).unwrap();
        tx.put(&again, "individualCount", 6).unwrap();
        tx.commit();
        let edits = edits_of_last_change(&doc);
        assert_eq!(edits[0].before["individualCount"], 4);
        assert_eq!(edits[0].after["individualCount"], 6);
    }

    #[test]
    fn header_writes_touch_no_record() {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "type", "fieldnotes.notebook").unwrap();
        tx.put_object(ROOT, "sightings", ObjType::Map).unwrap();
        tx.commit();
        assert!(edits_of_last_change(&doc).is_empty());
    }

    /// The record as the change leaves it, told from the change alone
    /// (`scalars_written`), is what reading the history at the change gives;
    /// a record the change writes an object into is left to the history.
    #[test]
    fn what_a_change_wrote_is_what_the_history_shows_at_the_change() {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        let sightings = tx.put_object(ROOT, "sightings", ObjType::Map).unwrap();
        let r1 = tx.put_object(&sightings, "r1", ObjType::Map).unwrap();
        tx.put(&r1, "individualCount", 1).unwrap();
        tx.put(&r1, "individualCount", 2).unwrap();
        tx.put(&r1, "notes", "sous la haie").unwrap();
        tx.put(&r1, "verified", true).unwrap();
        let r2 = tx.put_object(&sightings, "r2", ObjType::Map).unwrap();
        tx.put(&r2, "scientificName", "Bufo bufo").unwrap();
        tx.put_object(&r2, "photos", ObjType::List).unwrap();
        let r3 = tx.put_object(&sightings, "r3", ObjType::Map).unwrap();
        let photos = tx.put_object(&r3, "photos", ObjType::List).unwrap();
        tx.insert(&photos, 0, "5e1f…").unwrap();
        let r4 = tx.put_object(&sightings, "r4", ObjType::Map).unwrap();
        tx.put_object(&r4, "notes", ObjType::Text).unwrap();
        tx.commit();
        // A concurrent edit merged in afterwards must not show at the change.
        let mut other = doc.fork();
        let first = doc.get_heads();
        let mut tx = doc.transaction();
        tx.put(&r1, "notes", "au pied du platane").unwrap();
        tx.commit();
        let mut tx = other.transaction();
        tx.put(&r1, "individualCount", 7).unwrap();
        tx.commit();
        doc.merge(&mut other).unwrap();

        let check = |hash: ChangeHash| {
            let change = doc.get_change_by_hash(&hash).unwrap().clone();
            let (values, _) = written_by(&doc, std::slice::from_ref(&change)).unwrap();
            let told = scalars_written(&values);
            let mut checked = 0;
            for ((collection, record), after) in &told {
                let read = record_at(&doc, *collection, record, &[hash]);
                if let Some(after) = after {
                    let read: Map<String, Json> = read
                        .into_iter()
                        .filter(|(field, _)| after.contains_key(field))
                        .collect();
                    assert_eq!(&read, after, "{record} at {hash}");
                    checked += 1;
                }
            }
            (told, checked)
        };
        let (made, checked) = check(first[0]);
        assert_eq!(checked, 2, "r1 and r2 are told from the change");
        assert_eq!(
            made[&(Collection::Sightings, "r1".to_string())]
                .as_ref()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            made[&(Collection::Sightings, "r2".to_string())]
                .as_ref()
                .map(|fields| fields["photos"].clone()),
            Some(Json::Array(Vec::new())),
            "r2's list is made empty"
        );
        assert_eq!(
            made[&(Collection::Sightings, "r3".to_string())],
            None,
            "r3's list is filled: read from the history"
        );
        assert_eq!(
            made[&(Collection::Sightings, "r4".to_string())],
            None,
            "r4 holds a text: read from the history"
        );
        for hash in doc.get_heads() {
            let (told, checked) = check(hash);
            assert_eq!(checked, 1);
            assert_eq!(told.len(), 1);
        }
        // A made record told from the change holds every field the history shows.
        let whole = record_at(&doc, Collection::Sightings, "r1", &first);
        assert_eq!(
            &whole,
            made[&(Collection::Sightings, "r1".to_string())]
                .as_ref()
                .unwrap()
        );
    }
}
