//! Size limits of every record, in one place.
//!
//! A phone that syncs a 12 MB note makes every server process hold it and every
//! list call return it; a record with thousands of photos does the same to the
//! photo store. These bounds are written into the JSON Schema (`maxLength`,
//! `maxItems`), so phones and web clients can check them before saving, and the
//! sync server reads the same figures to refuse an oversize change before it is
//! applied ([`max_chars_of`]).

use std::{collections::HashMap, sync::OnceLock};

use serde_json::Value;

use crate::{json_schema_of, DegradationReport, RecordKind, Sighting, TimesheetEntry};

/// Names, labels and identifiers typed or generated on a phone (site names,
/// `recordedBy`, `deviceId`, `occurrenceID`): a line, not a paragraph.
pub const NAME_MAX_CHARS: u64 = 200;
/// Longest accepted scientific name; real ones with authorship stay far below.
pub const SCIENTIFIC_NAME_MAX_CHARS: u64 = 300;
/// Free text (notes, descriptions): a detailed account of a page or two.
pub const TEXT_MAX_CHARS: u64 = 10_000;
/// Photos attached to one record.
pub const MAX_PHOTOS_PER_RECORD: u64 = 20;
/// Records (of all kinds, deleted ones excluded) in one notebook: years of one
/// volunteer's work in one territory.
pub const MAX_RECORDS_PER_NOTEBOOK: usize = 20_000;
/// Fields of one record, the ones clients add of their own included.
pub const MAX_FIELDS_PER_RECORD: usize = 64;
/// A string field the schema does not describe (clients may add their own).
pub const EXTRA_FIELD_MAX_CHARS: u64 = 1_000;

/// The longest text a record of `kind` may hold in `field`: the schema's
/// `maxLength`, or [`EXTRA_FIELD_MAX_CHARS`] for a field it does not bound.
pub fn max_chars_of(kind: RecordKind, field: &str) -> u64 {
    string_limits()
        .get(&kind)
        .and_then(|fields| fields.get(field))
        .copied()
        .unwrap_or(EXTRA_FIELD_MAX_CHARS)
}

/// The most items a list field may hold (`maxItems`), if the schema bounds it.
pub fn max_items_of(kind: RecordKind, field: &str) -> Option<u64> {
    let schema = schema_of(kind);
    schema
        .pointer(&format!("/properties/{field}/maxItems"))
        .and_then(Value::as_u64)
}

/// The most characters one item of a list field may hold.
pub fn max_item_chars_of(kind: RecordKind, field: &str) -> u64 {
    schema_of(kind)
        .pointer(&format!("/properties/{field}/items/maxLength"))
        .and_then(Value::as_u64)
        .unwrap_or(EXTRA_FIELD_MAX_CHARS)
}

fn schema_of(kind: RecordKind) -> &'static Value {
    static SCHEMAS: OnceLock<HashMap<RecordKind, Value>> = OnceLock::new();
    &SCHEMAS.get_or_init(|| {
        HashMap::from([
            (RecordKind::Sighting, json_schema_of::<Sighting>()),
            (
                RecordKind::DegradationReport,
                json_schema_of::<DegradationReport>(),
            ),
            (
                RecordKind::TimesheetEntry,
                json_schema_of::<TimesheetEntry>(),
            ),
        ])
    })[&kind]
}

/// `maxLength` of every top-level property, by kind, read from the schema so
/// the sync server's figures cannot drift from the shipped files.
fn string_limits() -> &'static HashMap<RecordKind, HashMap<String, u64>> {
    static LIMITS: OnceLock<HashMap<RecordKind, HashMap<String, u64>>> = OnceLock::new();
    LIMITS.get_or_init(|| {
        RecordKind::ALL
            .iter()
            .map(|&kind| {
                let fields = schema_of(kind)
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .filter_map(|(name, property)| {
                        let limit = property
                            .get("maxLength")
                            .and_then(Value::as_u64)
                            .or_else(|| fixed_width(property))?;
                        Some((name.clone(), limit))
                    })
                    .collect();
                (kind, fields)
            })
            .collect()
    })
}

/// UUIDs and timestamps are bounded by their format; the sync server needs a
/// figure for them too.
fn fixed_width(property: &Value) -> Option<u64> {
    match property.get("format").and_then(Value::as_str)? {
        "uuid" => Some(36),
        "date" => Some(10),
        // RFC 3339 with nanoseconds and an offset is 35 characters.
        "date-time" => Some(40),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_field_of_every_kind_has_a_limit_in_the_schema() {
        for kind in RecordKind::ALL {
            let schema = schema_of(kind);
            for (name, property) in schema["properties"].as_object().unwrap() {
                let is_string = property.get("type") == Some(&Value::from("string"))
                    || property.get("type") == Some(&serde_json::json!(["string", "null"]));
                if is_string && property.get("enum").is_none() {
                    assert!(
                        string_limits()[&kind].contains_key(name),
                        "{}.{name} has no maximum length",
                        kind.as_str()
                    );
                }
            }
        }
        assert_eq!(max_chars_of(RecordKind::Sighting, "notes"), TEXT_MAX_CHARS);
        assert_eq!(max_chars_of(RecordKind::Sighting, "site"), NAME_MAX_CHARS);
        assert_eq!(
            max_chars_of(RecordKind::Sighting, "aFieldOfTheClientsOwn"),
            EXTRA_FIELD_MAX_CHARS
        );
        assert_eq!(
            max_items_of(RecordKind::DegradationReport, "photos"),
            Some(MAX_PHOTOS_PER_RECORD)
        );
        assert_eq!(max_item_chars_of(RecordKind::Sighting, "photos"), 64);
    }
}
