//! The JSON Schema files shipped in `schemas/json/` for phone and web clients: they must
//! stay identical to what the Rust types generate, and they must accept good records
//! and refuse bad ones when used on their own with a JSON Schema validator.

use std::path::PathBuf;

use fieldnotes_schemas::{
    json_schema_of, DegradationReport, FieldRecord, Sighting, TimesheetEntry,
};
use serde_json::{json, Value};

fn schema_path<R: FieldRecord>() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("json")
        .join(format!("{}.schema.json", R::KIND.as_str()))
}

/// Compares parsed values rather than text, so the test does not depend on whether some
/// other crate of the build turned on serde_json's key-order preservation.
fn check_or_update<R: FieldRecord>(update: bool) -> Option<String> {
    let path = schema_path::<R>();
    let generated = json_schema_of::<R>();
    if update {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return None;
    }
    let shipped: Option<Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    (shipped.as_ref() != Some(&generated)).then(|| path.display().to_string())
}

#[test]
fn json_schema_files_match_the_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1");
    let stale: Vec<String> = [
        check_or_update::<Sighting>(update),
        check_or_update::<DegradationReport>(update),
        check_or_update::<TimesheetEntry>(update),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        stale.is_empty(),
        "these shipped schemas differ from the Rust types: {stale:?}\n\
         regenerate them with: UPDATE_SCHEMAS=1 cargo test -p fieldnotes-schemas \
         --test schema_files, then review and commit the diff"
    );
}

fn shipped_validator<R: FieldRecord>() -> jsonschema::Validator {
    let text = std::fs::read_to_string(schema_path::<R>()).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// The sample with some fields replaced; `null` removes a field.
fn changed(sample: &str, changes: Value) -> Value {
    let mut raw: Value = serde_json::from_str(sample).unwrap();
    let object = raw.as_object_mut().unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            object.remove(key);
        } else {
            object.insert(key.clone(), value.clone());
        }
    }
    raw
}

/// Checks the shipped schema accepts the sample and each change of it in `good`, and
/// refuses each change in `bad`; the Rust parser must agree on every one.
fn check_shipped<R: FieldRecord>(sample: &str, good: &[Value], bad: &[Value]) {
    let validator = shipped_validator::<R>();
    for changes in std::iter::once(&json!({})).chain(good) {
        let raw = changed(sample, changes.clone());
        let errors: Vec<String> = validator.iter_errors(&raw).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{changes} refused: {errors:?}");
        assert!(R::from_raw(&raw).is_ok(), "{changes} refused by from_raw");
    }
    for changes in bad {
        let raw = changed(sample, changes.clone());
        assert!(!validator.is_valid(&raw), "{changes} accepted");
        assert!(R::from_raw(&raw).is_err(), "{changes} accepted by from_raw");
    }
}

#[test]
fn shipped_sighting_schema_accepts_good_records_and_refuses_bad_ones() {
    check_shipped::<Sighting>(
        include_str!("samples/sighting.json"),
        &[
            json!({"installedPlugin": "bat-detector"}),
            json!({"taxonID": null, "occurrenceStatus": null, "photos": null}),
            json!({"occurrenceStatus": "absent", "individualCount": 0}),
        ],
        &[
            json!({"decimalLatitude": 123}),
            json!({"decimalLongitude": "2.35"}),
            json!({"scientificName": " "}),
            json!({"scientificName": null}),
            json!({"eventDate": "17/05/2024"}),
            json!({"id": "not-a-uuid"}),
            json!({"occurrenceStatus": "maybe"}),
            json!({"basisOfRecord": "humanObservation"}),
            json!({"coordinateUncertaintyInMeters": 0}),
            json!({"individualCount": -2}),
            json!({"taxonID": 0}),
            json!({"photos": ["photo.jpg"]}),
        ],
    );
}

#[test]
fn shipped_degradation_report_schema_accepts_good_records_and_refuses_bad_ones() {
    check_shipped::<DegradationReport>(
        include_str!("samples/degradation_report.json"),
        &[
            json!({"category": "light_pollution", "photos": []}),
            json!({"category": "other", "categoryDetail": "Illegal fencing"}),
            json!({"site": null, "reporterMood": "angry"}),
        ],
        &[
            json!({"category": "graffiti"}),
            json!({"category": null}),
            json!({"description": ""}),
            json!({"description": "x".repeat(10_001)}),
            json!({"observedAt": 1717311900}),
            json!({"decimalLatitude": -90.5}),
            json!({"deviceId": ""}),
        ],
    );
}

#[test]
fn shipped_timesheet_entry_schema_accepts_good_records_and_refuses_bad_ones() {
    check_shipped::<TimesheetEntry>(
        include_str!("samples/timesheet_entry.json"),
        &[
            json!({"startedAt": null, "endedAt": null, "durationMinutes": 45}),
            json!({"activity": "awareness_event", "durationMinutes": 90}),
        ],
        &[
            json!({"activity": "picnic"}),
            json!({"workDate": "2024-06-08T00:00:00Z"}),
            json!({"durationMinutes": 0}),
            json!({"durationMinutes": 1441}),
            json!({"durationMinutes": 1.5}),
            json!({"volunteerId": null}),
            json!({"startedAt": "08:30"}),
        ],
    );
}
