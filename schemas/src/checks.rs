//! Validation rules shared by several record types, and their wording.
//!
//! The same sentences are used by the typed checks (`FieldRecord::problems`) and by the
//! translation of JSON Schema errors (`raw`), so a volunteer reads the same reason
//! whichever path found the problem, and the limits in the shipped JSON Schema are the
//! limits enforced in Rust.

use chrono::{DateTime, Duration, Utc};

use crate::FieldProblem;

pub(crate) const LATITUDE_MIN: i32 = -90;
pub(crate) const LATITUDE_MAX: i32 = 90;
pub(crate) const LONGITUDE_MIN: i32 = -180;
pub(crate) const LONGITUDE_MAX: i32 = 180;
/// Beyond 100 km the point says nothing useful about where the thing was seen.
pub(crate) const MAX_COORDINATE_UNCERTAINTY_METERS: i32 = 100_000;

/// "Has at least one non-whitespace character": a name of spaces is as empty as "".
pub(crate) const NOT_BLANK: &str = r"\S";
/// Photos are referenced by the SHA-256 of their bytes, so a photo synced twice is
/// stored once and a reference can be checked against the bytes received.
pub(crate) const SHA256_HEX: &str = "^[0-9a-f]{64}$";

/// Phones have bad clocks: a timestamp up to this far ahead of the server is accepted.
pub(crate) const FUTURE_SLACK_HOURS: i64 = 24;

/// Wording for a value outside `[min, max]` (either bound may be absent).
pub(crate) fn bounds_reason(min: Option<f64>, max: Option<f64>, got: &str) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!("must be between {min} and {max} (got {got})"),
        (Some(min), None) => format!("must be at least {min} (got {got})"),
        (None, Some(max)) => format!("must be at most {max} (got {got})"),
        (None, None) => format!("is out of range (got {got})"),
    }
}

pub(crate) fn greater_than_reason(limit: f64, got: &str) -> String {
    format!("must be greater than {limit} (got {got})")
}

pub(crate) fn max_chars_reason(limit: u64, got_chars: usize) -> String {
    format!("must be at most {limit} characters long (got {got_chars})")
}

/// Wording for a string not matching one of the patterns above; `got` is the value.
pub(crate) fn pattern_reason(pattern: &str, got: &str) -> String {
    match pattern {
        NOT_BLANK => "must not be empty".to_owned(),
        SHA256_HEX => format!(
            "must be a lowercase hex SHA-256 content hash, 64 characters 0-9a-f (got {})",
            quoted(got)
        ),
        other => format!("must match the pattern {other} (got {})", quoted(got)),
    }
}

/// A string value as shown in a reason: JSON-quoted, cut short so a pasted essay does
/// not drown the message.
pub(crate) fn quoted(s: &str) -> String {
    const SHOWN_CHARS: usize = 70;
    if s.chars().count() > SHOWN_CHARS {
        let head: String = s.chars().take(SHOWN_CHARS).collect();
        format!("{}…", serde_json::Value::String(head))
    } else {
        serde_json::Value::String(s.to_owned()).to_string()
    }
}

pub(crate) fn not_blank(out: &mut Vec<FieldProblem>, field: &str, value: &str) {
    if value.trim().is_empty() {
        out.push(FieldProblem::new(field, pattern_reason(NOT_BLANK, value)));
    }
}

/// Counts characters (Unicode scalar values), as JSON Schema's `maxLength` does.
pub(crate) fn max_chars(out: &mut Vec<FieldProblem>, field: &str, value: &str, limit: u64) {
    let chars = value.chars().count();
    if chars as u64 > limit {
        out.push(FieldProblem::new(field, max_chars_reason(limit, chars)));
    }
}

/// Every comparison with NaN is false, so NaN is refused too.
pub(crate) fn number_within(
    out: &mut Vec<FieldProblem>,
    field: &str,
    value: f64,
    min: Option<f64>,
    max: Option<f64>,
) {
    let above_min = min.is_none_or(|min| value >= min);
    let below_max = max.is_none_or(|max| value <= max);
    if !(above_min && below_max) {
        out.push(FieldProblem::new(
            field,
            bounds_reason(min, max, &value.to_string()),
        ));
    }
}

pub(crate) fn integer_at_least(out: &mut Vec<FieldProblem>, field: &str, value: i64, min: i64) {
    if value < min {
        out.push(FieldProblem::new(
            field,
            bounds_reason(Some(min as f64), None, &value.to_string()),
        ));
    }
}

pub(crate) fn content_hashes(out: &mut Vec<FieldProblem>, field: &str, hashes: &[String]) {
    for (index, hash) in hashes.iter().enumerate() {
        let well_formed =
            hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            out.push(FieldProblem::new(
                format!("{field}[{index}]"),
                pattern_reason(SHA256_HEX, hash),
            ));
        }
    }
}

/// An observation cannot happen in the future, give or take a phone's clock error.
pub(crate) fn not_in_future(
    out: &mut Vec<FieldProblem>,
    field: &str,
    value: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    if value > now + Duration::hours(FUTURE_SLACK_HOURS) {
        out.push(FieldProblem::new(
            field,
            format!(
                "must not be more than {FUTURE_SLACK_HOURS} hours in the future (got {})",
                value.to_rfc3339()
            ),
        ));
    }
}

/// Rules on the metadata every record carries.
pub(crate) fn metadata(
    out: &mut Vec<FieldProblem>,
    device_id: &str,
    created_at: DateTime<Utc>,
    modified_at: DateTime<Utc>,
) {
    not_blank(out, "deviceId", device_id);
    if modified_at < created_at {
        out.push(FieldProblem::new(
            "modifiedAt",
            format!(
                "must not be before createdAt ({}) (got {})",
                created_at.to_rfc3339(),
                modified_at.to_rfc3339()
            ),
        ));
    }
}

/// Rules on a WGS84 point and its uncertainty radius, shared by sightings and reports.
pub(crate) fn position(
    out: &mut Vec<FieldProblem>,
    latitude: f64,
    longitude: f64,
    uncertainty_in_meters: Option<f64>,
) {
    number_within(
        out,
        "decimalLatitude",
        latitude,
        Some(f64::from(LATITUDE_MIN)),
        Some(f64::from(LATITUDE_MAX)),
    );
    number_within(
        out,
        "decimalLongitude",
        longitude,
        Some(f64::from(LONGITUDE_MIN)),
        Some(f64::from(LONGITUDE_MAX)),
    );
    if let Some(uncertainty) = uncertainty_in_meters {
        let field = "coordinateUncertaintyInMeters";
        // Compared so that NaN is refused too.
        if uncertainty.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            out.push(FieldProblem::new(
                field,
                greater_than_reason(0.0, &uncertainty.to_string()),
            ));
        }
        number_within(
            out,
            field,
            uncertainty,
            None,
            Some(f64::from(MAX_COORDINATE_UNCERTAINTY_METERS)),
        );
    }
}
