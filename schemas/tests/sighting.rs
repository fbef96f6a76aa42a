//! Specification of how a sighting written on a phone is read and checked.

use chrono::{Duration, Utc};
use fieldnotes_schemas::{
    BasisOfRecord, FieldProblem, FieldRecord, OccurrenceStatus, RecordKind, Sighting,
    SightingReview, VerificationStatus,
};
use serde_json::{json, Value};
use uuid::Uuid;

fn sample() -> Value {
    serde_json::from_str(include_str!("samples/sighting.json")).unwrap()
}

/// The sample with some fields replaced (or added).
fn with(changes: Value) -> Value {
    let mut raw = sample();
    for (key, value) in changes.as_object().unwrap() {
        raw[key] = value.clone();
    }
    raw
}

fn without(field: &str) -> Value {
    let mut raw = sample();
    raw.as_object_mut().unwrap().remove(field);
    raw
}

fn problems_of(raw: &Value) -> Vec<FieldProblem> {
    match Sighting::from_raw(raw) {
        Ok(sighting) => panic!("expected problems, but it parsed: {sighting:?}"),
        Err(problems) => problems,
    }
}

fn problem(field: &str, reason: &str) -> FieldProblem {
    FieldProblem::new(field, reason)
}

#[test]
fn a_valid_sighting_parses() {
    let sighting = Sighting::from_raw(&sample()).unwrap();
    assert_eq!(Sighting::KIND, RecordKind::Sighting);
    assert_eq!(
        sighting.id(),
        Uuid::parse_str("cb7db288-570c-4013-85be-a0577fe4d082").unwrap()
    );
    assert_eq!(
        sighting.scientific_name,
        "Pipistrellus pipistrellus (Schreber, 1774)"
    );
    assert_eq!(sighting.taxon_id, Some(60479));
    assert_eq!(sighting.decimal_latitude, 48.8566);
    assert_eq!(sighting.coordinate_uncertainty_in_meters, Some(15.0));
    assert_eq!(sighting.individual_count, Some(3));
    assert_eq!(sighting.occurrence_status, OccurrenceStatus::Present);
    assert_eq!(sighting.photos.len(), 1);
    assert!(sighting.problems().is_empty());
}

#[test]
fn a_sighting_round_trips_through_json() {
    let sighting = Sighting::from_raw(&sample()).unwrap();
    let written = serde_json::to_value(&sighting).unwrap();
    assert_eq!(written["occurrenceID"], sample()["occurrenceID"]);
    assert_eq!(written["taxonID"], 60479);
    assert_eq!(written["basisOfRecord"], "HumanObservation");
    assert_eq!(Sighting::from_raw(&written).unwrap(), sighting);
}

#[test]
fn absent_optional_fields_are_not_written() {
    let raw = json!({
        "id": "cb7db288-570c-4013-85be-a0577fe4d082",
        "authorId": "a912a1c7-6b57-4239-bc62-5bb18179d4e5",
        "deviceId": "android-7f3c91",
        "createdAt": "2024-05-17T21:42:10Z",
        "modifiedAt": "2024-05-17T21:42:10Z",
        "occurrenceID": "urn:uuid:cb7db288-570c-4013-85be-a0577fe4d082",
        "scientificName": "Erithacus rubecula",
        "eventDate": "2024-05-17T21:40:00Z",
        "decimalLatitude": 48.8566,
        "decimalLongitude": 2.3522,
        "recordedBy": "Camille Martin"
    });
    let sighting = Sighting::from_raw(&raw).unwrap();
    let written = serde_json::to_value(&sighting).unwrap();
    let keys: Vec<&str> = written
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for optional in [
        "taxonID",
        "vernacularName",
        "coordinateUncertaintyInMeters",
        "individualCount",
        "site",
        "notes",
    ] {
        assert!(!keys.contains(&optional), "{optional} written: {written:#}");
    }
}

#[test]
fn occurrence_status_and_basis_of_record_have_darwin_core_defaults() {
    let mut raw = without("occurrenceStatus");
    raw.as_object_mut().unwrap().remove("basisOfRecord");
    raw.as_object_mut().unwrap().remove("photos");
    let sighting = Sighting::from_raw(&raw).unwrap();
    assert_eq!(sighting.occurrence_status, OccurrenceStatus::Present);
    assert_eq!(sighting.basis_of_record, BasisOfRecord::HumanObservation);
    assert!(sighting.photos.is_empty());
}

#[test]
fn machine_observation_is_accepted() {
    let sighting = Sighting::from_raw(&with(json!({"basisOfRecord": "MachineObservation"})));
    assert_eq!(
        sighting.unwrap().basis_of_record,
        BasisOfRecord::MachineObservation
    );
}

#[test]
fn latitude_123_is_refused_naming_decimal_latitude() {
    assert_eq!(
        problems_of(&with(json!({"decimalLatitude": 123}))),
        vec![problem(
            "decimalLatitude",
            "must be between -90 and 90 (got 123)"
        )]
    );
}

#[test]
fn longitude_beyond_180_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"decimalLongitude": -180.5}))),
        vec![problem(
            "decimalLongitude",
            "must be between -180 and 180 (got -180.5)"
        )]
    );
}

#[test]
fn empty_scientific_name_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"scientificName": ""}))),
        vec![problem("scientificName", "must not be empty")]
    );
}

#[test]
fn blank_scientific_name_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"scientificName": "   "}))),
        vec![problem("scientificName", "must not be empty")]
    );
}

#[test]
fn scientific_name_longer_than_300_characters_is_refused() {
    let long = "é".repeat(301);
    assert_eq!(
        problems_of(&with(json!({ "scientificName": long }))),
        vec![problem(
            "scientificName",
            "must be at most 300 characters long (got 301)"
        )]
    );
    assert!(Sighting::from_raw(&with(json!({"scientificName": "é".repeat(300)}))).is_ok());
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let mut raw = with(json!({"decimalLatitude": 123, "scientificName": ""}));
    raw.as_object_mut().unwrap().remove("recordedBy");
    let mut fields: Vec<String> = problems_of(&raw).into_iter().map(|p| p.field).collect();
    fields.sort();
    assert_eq!(fields, ["decimalLatitude", "recordedBy", "scientificName"]);
}

#[test]
fn missing_required_field_is_named() {
    assert_eq!(
        problems_of(&without("eventDate")),
        vec![problem("eventDate", "is required")]
    );
}

#[test]
fn wrong_type_is_named() {
    assert_eq!(
        problems_of(&with(json!({"decimalLatitude": "48.8566"}))),
        vec![problem(
            "decimalLatitude",
            "must be a number (got \"48.8566\")"
        )]
    );
}

#[test]
fn a_fractional_count_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"individualCount": 2.5}))),
        vec![problem(
            "individualCount",
            "must be a whole number or null (got 2.5)"
        )]
    );
}

#[test]
fn a_count_too_large_for_the_database_is_refused_naming_its_field() {
    // Valid for JSON Schema (an integer), but no i64 holds it: serde refuses it instead.
    let problems = problems_of(&with(json!({"individualCount": 1e20})));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "individualCount");
    assert!(
        problems[0].reason.starts_with("could not be read"),
        "{problems:?}"
    );
}

#[test]
fn malformed_timestamp_is_named() {
    assert_eq!(
        problems_of(&with(json!({"eventDate": "yesterday evening"}))),
        vec![problem(
            "eventDate",
            "must be a date and time in RFC 3339 form, e.g. 2024-05-17T14:30:00Z \
             (got \"yesterday evening\")"
        )]
    );
}

#[test]
fn malformed_id_is_named() {
    assert_eq!(
        problems_of(&with(json!({"authorId": "camille"})))[0].field,
        "authorId"
    );
}

#[test]
fn unknown_occurrence_status_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"occurrenceStatus": "maybe"}))),
        vec![problem(
            "occurrenceStatus",
            "must be one of \"present\", \"absent\" (got \"maybe\")"
        )]
    );
}

#[test]
fn absent_with_a_positive_count_is_refused() {
    assert_eq!(
        problems_of(&with(
            json!({"occurrenceStatus": "absent", "individualCount": 3})
        )),
        vec![problem(
            "individualCount",
            "must be 0 or left out when occurrenceStatus is \"absent\" (got 3)"
        )]
    );
}

#[test]
fn absent_with_a_zero_count_is_accepted() {
    let raw = with(json!({"occurrenceStatus": "absent", "individualCount": 0}));
    let sighting = Sighting::from_raw(&raw).unwrap();
    assert_eq!(sighting.occurrence_status, OccurrenceStatus::Absent);
    assert_eq!(
        sighting.occurrence_status_absent_requires_zero_count(),
        None
    );
}

#[test]
fn negative_count_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"individualCount": -1}))),
        vec![problem("individualCount", "must be at least 0 (got -1)")]
    );
}

#[test]
fn taxon_id_must_be_positive() {
    assert_eq!(
        problems_of(&with(json!({"taxonID": 0}))),
        vec![problem("taxonID", "must be at least 1 (got 0)")]
    );
}

#[test]
fn coordinate_uncertainty_must_be_positive_and_at_most_100_km() {
    assert_eq!(
        problems_of(&with(json!({"coordinateUncertaintyInMeters": 0}))),
        vec![problem(
            "coordinateUncertaintyInMeters",
            "must be greater than 0 (got 0)"
        )]
    );
    assert_eq!(
        problems_of(&with(json!({"coordinateUncertaintyInMeters": 100000.5}))),
        vec![problem(
            "coordinateUncertaintyInMeters",
            "must be at most 100000 (got 100000.5)"
        )]
    );
    assert!(Sighting::from_raw(&with(json!({"coordinateUncertaintyInMeters": 100000}))).is_ok());
}

#[test]
fn event_date_more_than_a_day_ahead_is_refused() {
    let ahead = Utc::now() + Duration::hours(25);
    let problems = problems_of(&with(json!({ "eventDate": ahead })));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "eventDate");
    assert!(
        problems[0]
            .reason
            .starts_with("must not be more than 24 hours in the future"),
        "{problems:?}"
    );
}

#[test]
fn event_date_a_few_hours_ahead_is_accepted_because_phone_clocks_drift() {
    let ahead = Utc::now() + Duration::hours(20);
    let raw = with(json!({ "eventDate": ahead, "modifiedAt": ahead }));
    assert!(Sighting::from_raw(&raw).is_ok());
}

#[test]
fn modified_before_created_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"modifiedAt": "2024-05-17T21:00:00Z"}))),
        vec![problem(
            "modifiedAt",
            "must not be before createdAt (2024-05-17T21:42:10+00:00) \
             (got 2024-05-17T21:00:00+00:00)"
        )]
    );
}

#[test]
fn blank_device_id_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"deviceId": " "}))),
        vec![problem("deviceId", "must not be empty")]
    );
}

#[test]
fn a_photo_that_is_not_a_sha256_is_refused_naming_its_position() {
    let good = "3582246f913c0a8437d0a3b0f5dfe6b440e17864eef7d6282c3e80ab771ccef5";
    let upper = good.to_uppercase();
    assert_eq!(
        problems_of(&with(json!({ "photos": [good, upper] }))),
        vec![problem(
            "photos[1]",
            &format!(
                "must be a lowercase hex SHA-256 content hash, 64 characters 0-9a-f \
                 (got \"{upper}\")"
            )
        )]
    );
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let raw = with(json!({"appVersion": "1.4.2", "draftColour": {"r": 1}}));
    assert_eq!(
        Sighting::from_raw(&raw).unwrap(),
        Sighting::from_raw(&sample()).unwrap()
    );
}

#[test]
fn null_optional_fields_are_accepted() {
    let raw = with(json!({"taxonID": null, "site": null, "individualCount": null}));
    let sighting = Sighting::from_raw(&raw).unwrap();
    assert_eq!(sighting.taxon_id, None);
    assert_eq!(sighting.site, None);
}

#[test]
fn a_record_that_is_not_an_object_is_refused() {
    assert_eq!(
        problems_of(&json!(["not", "a", "record"])),
        vec![problem("", "must be an object (got a list)")]
    );
}

#[test]
fn typed_checks_use_the_same_words_as_raw_checks() {
    let mut sighting = Sighting::from_raw(&sample()).unwrap();
    sighting.decimal_latitude = 123.0;
    sighting.scientific_name = String::new();
    sighting.photos = vec!["abc".to_owned()];
    let mut raw = sample();
    raw["decimalLatitude"] = json!(123);
    raw["scientificName"] = json!("");
    raw["photos"] = json!(["abc"]);
    let mut typed = sighting.problems();
    let mut from_raw = problems_of(&raw);
    typed.sort_by(|a, b| a.field.cmp(&b.field));
    from_raw.sort_by(|a, b| a.field.cmp(&b.field));
    assert_eq!(typed.len(), 3);
    assert_eq!(typed, from_raw);
}

#[test]
fn typed_checks_refuse_a_latitude_that_is_not_a_number() {
    let mut sighting = Sighting::from_raw(&sample()).unwrap();
    sighting.decimal_latitude = f64::NAN;
    assert_eq!(
        sighting.problems(),
        vec![problem(
            "decimalLatitude",
            "must be between -90 and 90 (got NaN)"
        )]
    );
}

#[test]
fn a_review_is_written_with_darwin_core_names() {
    let review = SightingReview {
        sighting_id: Uuid::nil(),
        identification_verification_status: VerificationStatus::NeedsExpert,
        reviewed_by: Uuid::nil(),
        reviewed_at: "2024-05-20T08:00:00Z".parse().unwrap(),
        comment: None,
    };
    let written = serde_json::to_value(&review).unwrap();
    assert_eq!(
        written,
        json!({
            "sightingId": "00000000-0000-0000-0000-000000000000",
            "identificationVerificationStatus": "needs_expert",
            "reviewedBy": "00000000-0000-0000-0000-000000000000",
            "reviewedAt": "2024-05-20T08:00:00Z"
        })
    );
    assert_eq!(
        serde_json::from_value::<SightingReview>(written).unwrap(),
        review
    );
}

#[test]
fn the_occurrence_id_must_be_derived_from_the_record_id() {
    let other = Uuid::new_v4();
    assert_eq!(
        problems_of(&with(json!({"occurrenceID": format!("urn:uuid:{other}")}))),
        vec![problem(
            "occurrenceID",
            &format!(
                "must be urn:uuid:cb7db288-570c-4013-85be-a0577fe4d082, derived from the record's id, \
                 so that no two records share it (got \"urn:uuid:{other}\")"
            )
        )]
    );
    let upper = with(json!({"occurrenceID": "URN:UUID:CB7DB288-570C-4013-85BE-A0577FE4D082"}));
    assert!(Sighting::from_raw(&upper).is_ok());
}

#[test]
fn every_free_text_is_bounded() {
    for (field, limit) in [
        ("notes", 10_000),
        ("site", 200),
        ("recordedBy", 200),
        ("vernacularName", 200),
    ] {
        assert_eq!(
            problems_of(&with(json!({field: "x".repeat(limit + 1)}))),
            vec![problem(
                field,
                &format!(
                    "must be at most {limit} characters long (got {})",
                    limit + 1
                )
            )],
            "{field}"
        );
    }
}

#[test]
fn a_nul_character_in_a_value_or_in_a_field_name_is_refused_naming_both() {
    let mut raw = with(json!({"notes": "under the bridge\u{0}"}));
    raw["myOwn\u{0}Field"] = json!("x");
    let problems = problems_of(&raw);
    for field in ["notes", "myOwn{U+0000}Field"] {
        let found = problems
            .iter()
            .find(|p| p.field == field)
            .unwrap_or_else(|| panic!("no problem names {field}: {problems:?}"));
        assert!(found.reason.contains("U+0000"), "{found:?}");
    }
}

#[test]
fn line_breaks_and_tabs_in_notes_are_ordinary_text() {
    let raw = with(json!({"notes": "line one\r\nline two\tand a tab"}));
    assert!(Sighting::from_raw(&raw).is_ok());
}
