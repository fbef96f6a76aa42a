//! Reading notebooks: typed records, concurrent values, and what a broken
//! document or record looks like — on automerge bytes alone, no I/O.

use automerge::{transaction::Transactable, Automerge, ObjType, ReadDoc, ROOT};
use chrono::Utc;
use fieldnotes_sync::documents::{
    new_notebook, put_raw_record, put_record, read_notebook, set_field, NotebookHeader, ReadRecord,
};
use schemas::{FieldRecord, RecordKind, Sighting};
use serde_json::{json, Value};
use uuid::Uuid;

fn header() -> NotebookHeader {
    NotebookHeader {
        territory_id: Uuid::new_v4(),
        owner_id: Uuid::new_v4(),
    }
}

fn sighting_json(author: Uuid) -> Value {
    let id = Uuid::new_v4();
    let now = Utc::now().to_rfc3339();
    json!({
        "id": id, "occurrenceID": format!("urn:uuid:{id}"), "scientificName": "Parus major",
        "eventDate": now, "decimalLatitude": 45.75, "decimalLongitude": 4.85,
        "individualCount": 2, "recordedBy": "Camille", "authorId": author,
        "deviceId": "phone-1", "createdAt": now, "modifiedAt": now,
    })
}

fn sighting(author: Uuid) -> Sighting {
    Sighting::from_raw(&sighting_json(author)).expect("valid sample")
}

#[test]
fn a_written_record_reads_back_typed_and_equal() {
    let header = header();
    let mut doc = new_notebook(header);
    let record = sighting(header.owner_id);
    put_record(&mut doc, &record).unwrap();

    let read = read_notebook(&doc);
    assert_eq!(read.header, Ok(header));
    assert_eq!(read.records.len(), 1);
    assert_eq!(read.records[0].parsed, Ok(ReadRecord::Sighting(record)));
    assert!(read.records[0].conflicts.is_empty());
}

#[test]
fn a_field_set_on_two_phones_at_once_keeps_both_values() {
    let header = header();
    let mut phone_a = new_notebook(header);
    let record = sighting(header.owner_id);
    put_record(&mut phone_a, &record).unwrap();
    let mut phone_b = phone_a.fork();

    set_field(
        &mut phone_a,
        RecordKind::Sighting,
        record.id(),
        "individualCount",
        &json!(3),
    )
    .unwrap();
    set_field(
        &mut phone_b,
        RecordKind::Sighting,
        record.id(),
        "individualCount",
        &json!(5),
    )
    .unwrap();
    phone_a.merge(&mut phone_b).unwrap();

    let read = read_notebook(&phone_a);
    let state = &read.records[0];
    assert_eq!(state.conflicts.len(), 1);
    let conflict = &state.conflicts[0];
    assert_eq!(conflict.field, "individualCount");
    let mut values: Vec<i64> = conflict.values.iter().filter_map(Value::as_i64).collect();
    values.sort();
    assert_eq!(values, vec![3, 5]);
    assert_eq!(state.raw["individualCount"], conflict.winner);
}

#[test]
fn edits_to_different_fields_merge_without_conflict() {
    let header = header();
    let mut phone_a = new_notebook(header);
    let record = sighting(header.owner_id);
    put_record(&mut phone_a, &record).unwrap();
    let mut phone_b = phone_a.fork();
    set_field(
        &mut phone_a,
        RecordKind::Sighting,
        record.id(),
        "individualCount",
        &json!(3),
    )
    .unwrap();
    set_field(
        &mut phone_b,
        RecordKind::Sighting,
        record.id(),
        "notes",
        &json!("under the bridge"),
    )
    .unwrap();
    phone_a.merge(&mut phone_b).unwrap();

    let state = &read_notebook(&phone_a).records[0];
    assert!(state.conflicts.is_empty());
    assert_eq!(state.raw["individualCount"], 3);
    assert_eq!(state.raw["notes"], "under the bridge");
}

#[test]
fn collaborative_text_and_timestamps_read_like_plain_json() {
    // What the JavaScript automerge-repo writes: strings as Text, Dates as timestamps.
    let header = header();
    let mut doc = new_notebook(header);
    let raw = sighting_json(header.owner_id);
    let key = raw["id"].as_str().unwrap().to_string();
    put_raw_record(&mut doc, RecordKind::Sighting, &key, &raw).unwrap();
    let event_ms = Utc::now().timestamp_millis() - 60_000;
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        let (_, sightings) = tx.get(ROOT, "sightings")?.unwrap();
        let (_, record) = tx.get(&sightings, key.as_str())?.unwrap();
        let name = tx.put_object(&record, "scientificName", ObjType::Text)?;
        tx.splice_text(&name, 0, 0, "Erithacus rubecula")?;
        tx.put(
            &record,
            "eventDate",
            automerge::ScalarValue::Timestamp(event_ms),
        )?;
        Ok(())
    })
    .unwrap();

    let state = &read_notebook(&doc).records[0];
    let Ok(ReadRecord::Sighting(read)) = &state.parsed else {
        panic!("expected a valid sighting: {:?}", state.parsed);
    };
    assert_eq!(read.scientific_name, "Erithacus rubecula");
    assert_eq!(read.event_date.timestamp_millis(), event_ms);
}

#[test]
fn an_invalid_record_is_read_with_every_problem_and_what_was_typed() {
    let header = header();
    let mut doc = new_notebook(header);
    let mut raw = sighting_json(header.owner_id);
    raw["decimalLatitude"] = json!(123);
    raw["scientificName"] = json!("");
    let key = raw["id"].as_str().unwrap().to_string();
    put_raw_record(&mut doc, RecordKind::Sighting, &key, &raw).unwrap();

    let state = &read_notebook(&doc).records[0];
    assert_eq!(state.raw, raw);
    let problems = state.parsed.as_ref().unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"decimalLatitude"), "{problems:?}");
    assert!(fields.contains(&"scientificName"), "{problems:?}");
}

#[test]
fn a_record_filed_under_another_id_is_refused() {
    let header = header();
    let mut doc = new_notebook(header);
    let raw = sighting_json(header.owner_id);
    let other_key = Uuid::new_v4().to_string();
    put_raw_record(&mut doc, RecordKind::Sighting, &other_key, &raw).unwrap();

    let problems = read_notebook(&doc).records[0].parsed.clone().unwrap_err();
    assert_eq!(problems[0].field, "id");
}

#[test]
fn a_document_that_is_not_a_notebook_reports_its_header_problems() {
    let mut doc = Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "type", "shopping-list")?;
        tx.put(ROOT, "territoryId", "somewhere")?;
        Ok(())
    })
    .unwrap();
    let problems = read_notebook(&doc).header.unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        vec!["type", "schemaVersion", "territoryId", "ownerId"]
    );
}
