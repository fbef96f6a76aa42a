//! Reports a régie hands to funders (migration 0010), without HTTP: the
//! routes in `http::reports` parse requests and call these.
//!
//! - [`hours`]: the volunteer-hours report of a territory and period, valued
//!   at the hourly rate in force on each day, issued once and kept as issued
//!   (`issued_reports`), its SHA-256 printed on every rendering (JSON, CSV,
//!   HTML) and appended to the audit trail, so that a funder holding a copy
//!   can have it checked against the service years later;
//! - [`rates`]: the hourly rates with their effective dates.
//!
//! A report's hash covers its canonical JSON ([`canonical_json`]): keys
//! sorted, no whitespace, so that the same content always gives the same
//! bytes whoever serialises it.

pub mod hours;
pub mod rates;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// `value` as canonical JSON: object keys sorted by their UTF-8 bytes at
/// every level, no insignificant whitespace (serde_json's own escaping of
/// strings and numbers).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Lower-case hex SHA-256 of `text`'s bytes.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `cents` as euros with two decimals ("1234.50").
pub fn euros(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// `minutes` as hours with two decimals, rounded half up ("2.25").
pub fn hours(minutes: i64) -> String {
    let hundredths = (minutes * 100 + 30) / 60;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_keeps_arrays_in_order() {
        let value = json!({"b": [3, {"z": 1, "a": "é"}], "a": null});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":null,"b":[3,{"a":"é","z":1}]}"#
        );
    }

    #[test]
    fn hours_and_euros_are_rounded_decimals() {
        assert_eq!(hours(90), "1.50");
        assert_eq!(hours(20), "0.33");
        assert_eq!(hours(50), "0.83");
        assert_eq!(euros(14850), "148.50");
        assert_eq!(euros(7), "0.07");
    }
}
