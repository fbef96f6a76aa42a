//! What a message's changes may write: no coordinator's decision, the
//! owner's own id, sizes within the limits, characters stored text may hold,
//! a notebook's shape; every value written judged, the merge's losers
//! included.

use automerge::{Automerge, ReadDoc, ScalarValue};
use schemas::{FieldRecord, RecordKind};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use super::{
    super::limits::{check_field_json, EXTRA_LIST_MAX_ITEMS},
    decide, edited, notebook_with_sighting, owned_notebook, record_obj, rights, sighting_json,
    Refusal, SIGHTING,
};
use crate::documents::{put_raw_record, put_record, read_notebook, set_field};

#[test]
fn setting_a_coordinator_decision_in_a_notebook_is_refused() {
    let (committed, header) = owned_notebook();
    let mut with_record = committed.clone();
    let record = schemas::Sighting::from_raw(&sighting_json(header.owner_id)).unwrap();
    put_record(&mut with_record, &record).unwrap();
    let rights = rights(header.owner_id, header.territory_id);
    assert_eq!(decide(&committed, &with_record, &rights), Ok(()));

    for field in ["identificationVerificationStatus", "approvalStatus"] {
        let mut phone = with_record.clone();
        set_field(
            &mut phone,
            RecordKind::Sighting,
            record.id(),
            field,
            &json!("verified"),
        )
        .unwrap();
        assert!(
            matches!(
                decide(&with_record, &phone, &rights),
                Err(Refusal::CoordinatorField { .. })
            ),
            "{field}"
        );
    }
}

#[test]
fn a_record_in_another_volunteers_name_is_refused() {
    let (committed, owner, rights) = notebook_with_sighting();
    let mut phone = committed.clone();
    put_raw_record(
        &mut phone,
        RecordKind::Sighting,
        "k2",
        &sighting_json(Uuid::new_v4()),
    )
    .unwrap();
    let refusal = decide(&committed, &phone, &rights).unwrap_err();
    assert!(
        matches!(
            refusal,
            Refusal::NotTheOwner {
                field: "authorId",
                ..
            }
        ),
        "{refusal:?}"
    );
    assert!(!refusal.to_string().contains(&owner.to_string()));

    let mut hours = committed.clone();
    let entry = json!({"id": Uuid::new_v4(), "authorId": owner, "volunteerId": Uuid::new_v4()});
    put_raw_record(&mut hours, RecordKind::TimesheetEntry, "t", &entry).unwrap();
    assert!(matches!(
        decide(&committed, &hours, &rights),
        Err(Refusal::NotTheOwner {
            field: "volunteerId",
            ..
        })
    ));
}

#[test]
fn an_author_written_as_collaborative_text_is_judged_by_its_content() {
    use automerge::transaction::Transactable;
    let (committed, owner, rights) = notebook_with_sighting();
    let write_author = |author: Uuid| {
        let mut phone = committed.clone();
        let record = record_obj(&phone, "sightings", &SIGHTING.to_string());
        phone
            .transact::<_, _, automerge::AutomergeError>(|tx| {
                let text = tx.put_object(&record, "authorId", automerge::ObjType::Text)?;
                tx.splice_text(&text, 0, 0, &author.to_string())
            })
            .unwrap();
        phone
    };
    assert_eq!(decide(&committed, &write_author(owner), &rights), Ok(()));
    assert!(matches!(
        decide(&committed, &write_author(Uuid::new_v4()), &rights),
        Err(Refusal::NotTheOwner { .. })
    ));
}

/// Two concurrent branches set `field`; the one with the greater actor wins.
fn concurrent_values(committed: &Automerge, field: &str, loser: Json, winner: Json) -> Automerge {
    let branch = |actor: u8, value: &Json| {
        let mut phone = committed
            .fork()
            .with_actor(automerge::ActorId::from([actor; 16]));
        set_field(&mut phone, RecordKind::Sighting, SIGHTING, field, value).unwrap();
        phone
    };
    let mut merged = branch(0x01, &loser);
    merged.merge(&mut branch(0xfe, &winner)).unwrap();
    assert_eq!(
        crate::documents::read::value_to_json(
            &merged,
            &merged
                .get(
                    record_obj(&merged, "sightings", &SIGHTING.to_string()),
                    field
                )
                .unwrap()
                .unwrap()
                .0,
            &automerge::ROOT
        ),
        winner,
        "the test's winner must win the merge"
    );
    merged
}

#[test]
fn a_forbidden_value_in_a_branch_that_loses_the_merge_is_refused() {
    let (committed, owner, rights) = notebook_with_sighting();
    let merged = concurrent_values(
        &committed,
        "authorId",
        json!(Uuid::new_v4().to_string()),
        json!(owner.to_string()),
    );
    assert!(matches!(
        decide(&committed, &merged, &rights),
        Err(Refusal::NotTheOwner { .. })
    ));
    let merged = concurrent_values(&committed, "notes", json!("x".repeat(20_000)), json!("ok"));
    assert!(matches!(
        decide(&committed, &merged, &rights),
        Err(Refusal::TooLong { .. })
    ));
}

#[test]
fn a_coordinator_value_hidden_by_a_later_deletion_is_refused() {
    use automerge::transaction::Transactable;
    let (committed, _, rights) = notebook_with_sighting();
    let mut phone = committed.clone();
    set_field(
        &mut phone,
        RecordKind::Sighting,
        SIGHTING,
        "approvalStatus",
        &json!("approved"),
    )
    .unwrap();
    let record = record_obj(&phone, "sightings", &SIGHTING.to_string());
    phone
        .transact::<_, _, automerge::AutomergeError>(|tx| tx.delete(&record, "approvalStatus"))
        .unwrap();
    assert!(read_notebook(&phone).records[0]
        .raw
        .get("approvalStatus")
        .is_none());
    assert!(matches!(
        decide(&committed, &phone, &rights),
        Err(Refusal::CoordinatorField { .. })
    ));
}

#[test]
fn oversize_values_are_refused_naming_the_field_and_the_limit() {
    let (committed, _, rights) = notebook_with_sighting();
    let mut phone = committed.clone();
    let notes = "é".repeat(schemas::limits::TEXT_MAX_CHARS as usize + 1);
    set_field(
        &mut phone,
        RecordKind::Sighting,
        SIGHTING,
        "notes",
        &json!(notes),
    )
    .unwrap();
    let refusal = decide(&committed, &phone, &rights).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        format!("`sightings/{SIGHTING}.notes` is 10001 characters long; the limit is 10000")
    );

    let mut phone = committed.clone();
    let photos: Vec<String> = (0..21).map(|i| format!("{i:064x}")).collect();
    set_field(
        &mut phone,
        RecordKind::Sighting,
        SIGHTING,
        "photos",
        &json!(photos),
    )
    .unwrap();
    let refusal = decide(&committed, &phone, &rights).unwrap_err();
    assert!(
        matches!(
            refusal,
            Refusal::TooManyItems {
                limit: 20,
                got: 21,
                ..
            }
        ),
        "{refusal:?}"
    );

    let mut phone = committed.clone();
    set_field(
        &mut phone,
        RecordKind::Sighting,
        SIGHTING,
        "site",
        &json!("s".repeat(201)),
    )
    .unwrap();
    assert!(matches!(
        decide(&committed, &phone, &rights),
        Err(Refusal::TooLong { limit: 200, .. })
    ));
}

#[test]
fn a_record_with_too_many_fields_is_refused() {
    let (committed, _, rights) = notebook_with_sighting();
    let mut phone = committed.clone();
    let mut fields = serde_json::Map::new();
    for i in 0..=schemas::limits::MAX_FIELDS_PER_RECORD {
        fields.insert(format!("extra{i}"), json!(i));
    }
    put_raw_record(&mut phone, RecordKind::Sighting, "k", &Json::Object(fields)).unwrap();
    assert!(matches!(
        decide(&committed, &phone, &rights),
        Err(Refusal::TooManyFields { limit: 64, .. })
    ));
}

#[test]
fn keys_that_are_not_part_of_a_notebook_are_refused() {
    use automerge::transaction::Transactable;
    let (committed, _, rights) = notebook_with_sighting();
    let mut phone = committed.clone();
    phone
        .transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(automerge::ROOT, "payload", "x".repeat(1000))
        })
        .unwrap();
    assert_eq!(
        decide(&committed, &phone, &rights),
        Err(Refusal::NotPartOfANotebook {
            key: "payload".to_string()
        })
    );
}

#[test]
fn texts_hold_characters_only_and_what_is_inserted_is_bounded() {
    use automerge::transaction::Transactable;
    let (committed, _, rights) = notebook_with_sighting();
    let with_bytes = edited(&committed, |tx, record| {
        let text = tx.put_object(record, "notes", automerge::ObjType::Text)?;
        tx.splice_text(&text, 0, 0, "ok")?;
        tx.insert(&text, 1, ScalarValue::Bytes(vec![0; 50_000]))
    });
    assert!(matches!(
        decide(&committed, &with_bytes, &rights),
        Err(Refusal::Unsupported {
            what: "values other than characters",
            ..
        })
    ));
    let inserted_then_deleted = edited(&committed, |tx, record| {
        let text = tx.put_object(record, "notes", automerge::ObjType::Text)?;
        tx.splice_text(&text, 0, 0, &"x".repeat(20_000))?;
        tx.splice_text(&text, 0, 20_000, "short")
    });
    assert!(matches!(
        decide(&committed, &inserted_then_deleted, &rights),
        Err(Refusal::TooLong { got: 20_005, .. })
    ));
    let marked = edited(&committed, |tx, record| {
        let text = tx.put_object(record, "notes", automerge::ObjType::Text)?;
        tx.splice_text(&text, 0, 0, "bold")?;
        tx.mark(
            &text,
            automerge::marks::Mark::new("bold".into(), true, 0, 4),
            automerge::marks::ExpandMark::None,
        )
    });
    assert!(matches!(
        decide(&committed, &marked, &rights),
        Err(Refusal::Unsupported { what: "marks", .. })
    ));
}

#[test]
fn a_nul_character_is_refused_in_a_field_name_a_value_and_a_text_naming_it() {
    use automerge::transaction::Transactable;
    let (committed, _, rights) = notebook_with_sighting();
    let in_name = edited(&committed, |tx, record| {
        tx.put(record, "notes\u{0}evil", "x").map(|_| ())
    });
    let refusal = decide(&committed, &in_name, &rights).unwrap_err();
    assert!(
        matches!(&refusal, Refusal::ForbiddenCharacter { location, character }
            if location.ends_with("notes{U+0000}evil") && character == "U+0000"),
        "{refusal:?}"
    );
    assert!(
        !refusal.to_string().contains('\0'),
        "the message holds no NUL"
    );
    let in_value = edited(&committed, |tx, record| {
        tx.put(record, "notes", "before\u{0}after").map(|_| ())
    });
    assert!(matches!(
        decide(&committed, &in_value, &rights),
        Err(Refusal::ForbiddenCharacter { .. })
    ));
    // Inserted then deleted: still in the document's history.
    let in_text = edited(&committed, |tx, record| {
        let text = tx.put_object(record, "notes", automerge::ObjType::Text)?;
        tx.splice_text(&text, 0, 0, "a\u{1b}b")?;
        tx.splice_text(&text, 1, 1, "")
    });
    assert!(matches!(
        decide(&committed, &in_text, &rights),
        Err(Refusal::ForbiddenCharacter { ref character, .. }) if character == "U+001B"
    ));
    let with_line_breaks = edited(&committed, |tx, record| {
        tx.put(record, "notes", "one\ntwo\tthree").map(|_| ())
    });
    assert_eq!(decide(&committed, &with_line_breaks, &rights), Ok(()));
}

#[test]
fn an_owner_text_cannot_pass_through_another_id() {
    use automerge::transaction::Transactable;
    let (committed, owner, rights) = notebook_with_sighting();
    let detour = edited(&committed, |tx, record| {
        let text = tx.put_object(record, "authorId", automerge::ObjType::Text)?;
        tx.splice_text(&text, 0, 0, &Uuid::new_v4().to_string())?;
        tx.splice_text(&text, 0, 36, &owner.to_string())
    });
    assert!(matches!(
        decide(&committed, &detour, &rights),
        Err(Refusal::TooLong {
            limit: 36,
            got: 72,
            ..
        })
    ));
}

#[test]
fn large_values_of_unknown_type_are_bounded_too() {
    use automerge::transaction::Transactable;
    let (committed, _, rights) = notebook_with_sighting();
    let phone = edited(&committed, |tx, record| {
        tx.put(
            record,
            "notes",
            ScalarValue::Unknown {
                type_code: 14,
                bytes: vec![1; 20_000],
            },
        )
    });
    assert!(matches!(
        decide(&committed, &phone, &rights),
        Err(Refusal::TooLong { got: 20_000, .. })
    ));
}

#[test]
fn a_record_must_be_a_map_of_fields() {
    let (committed, _, rights) = notebook_with_sighting();
    let mut phone = committed.clone();
    put_raw_record(&mut phone, RecordKind::Sighting, "k", &json!({"id": "k"})).unwrap();
    let collection = phone.get(automerge::ROOT, "sightings").unwrap().unwrap().1;
    phone
        .transact::<_, _, automerge::AutomergeError>(|tx| {
            use automerge::transaction::Transactable;
            let list = tx.put_object(&collection, "k", automerge::ObjType::List)?;
            let item = tx.insert_object(&list, 0, automerge::ObjType::Map)?;
            tx.put(&item, "authorId", Uuid::new_v4().to_string())?;
            tx.put(&item, "approvalStatus", "approved").map(|_| ())
        })
        .unwrap();
    assert!(matches!(
        decide(&committed, &phone, &rights),
        Err(Refusal::NotAMap { .. })
    ));
}

/// The server's own write of a field (a coordinator's conflict resolution:
/// [`check_field_json`]) is held to the size rules a phone's change is held
/// to: both accept, or both refuse with the same words.
#[test]
fn a_value_the_server_writes_is_held_to_the_size_rules_of_a_phones_change() {
    let (committed, _, rights) = notebook_with_sighting();
    let photos = |n: usize| json!((0..n).map(|i| format!("{i:064x}")).collect::<Vec<_>>());
    let extra = schemas::limits::EXTRA_FIELD_MAX_CHARS as usize;
    let cases = [
        ("notes", json!("é".repeat(10_000))),
        ("notes", json!("é".repeat(10_001))),
        ("site", json!("s".repeat(201))),
        ("individualCount", json!(3)),
        ("photos", photos(20)),
        ("photos", photos(21)),
        ("photos", json!(["x".repeat(65)])),
        ("extraField", json!("x".repeat(extra))),
        ("extraField", json!("x".repeat(extra + 1))),
        ("extraList", json!(vec!["x"; EXTRA_LIST_MAX_ITEMS])),
        ("extraList", json!(vec!["x"; EXTRA_LIST_MAX_ITEMS + 1])),
        ("extraList", json!([["x".repeat(extra + 1)]])),
    ];
    for (field, value) in cases {
        let mut phone = committed.clone();
        set_field(&mut phone, RecordKind::Sighting, SIGHTING, field, &value).unwrap();
        assert_eq!(
            check_field_json(RecordKind::Sighting, SIGHTING, field, &value),
            decide(&committed, &phone, &rights),
            "{field}"
        );
    }
    // Inside a map a client added, the same limit; the server's refusal
    // names the key below the field too.
    let nested = json!({"inner": "x".repeat(extra + 1)});
    let mut phone = committed.clone();
    set_field(
        &mut phone,
        RecordKind::Sighting,
        SIGHTING,
        "extraMap",
        &nested,
    )
    .unwrap();
    assert!(matches!(
        decide(&committed, &phone, &rights),
        Err(Refusal::TooLong {
            limit: 1000,
            got: 1001,
            ..
        })
    ));
    assert_eq!(
        check_field_json(RecordKind::Sighting, SIGHTING, "extraMap", &nested),
        Err(Refusal::TooLong {
            location: format!("sightings/{SIGHTING}.extraMap/inner"),
            limit: 1000,
            got: 1001,
        })
    );
}
