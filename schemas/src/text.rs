//! Which characters stored text may hold.
//!
//! Everything a volunteer or a coordinator types ends up in PostgreSQL (`text`
//! and `jsonb` columns, the audit trail's hashed entries), in XML (the Darwin
//! Core Archive's `eml.xml`), in CSV files and in other programs' JSON. PostgreSQL
//! cannot store U+0000 at all (a `jsonb` value holding `\u0000` is an error), and
//! XML 1.0 cannot hold the other C0 control characters nor U+FFFE/U+FFFF. A
//! record that holds one would be accepted by the sync and then fail every
//! later step that stores or exports it, so such characters are refused where
//! text enters the service — the record schemas, the sync judge, HTTP bodies and
//! query strings, CSV imports — with the field and the character named.
//!
//! Tab, line feed and carriage return are ordinary text (notes have lines).

use serde_json::Value;

/// The first character of `text` that stored text may not hold, if any.
pub fn forbidden_char(text: &str) -> Option<char> {
    text.chars().find(|&c| is_forbidden(c))
}

/// Whether `c` may not be stored: C0 controls other than tab, line feed and
/// carriage return, and the noncharacters U+FFFE and U+FFFF.
pub fn is_forbidden(c: char) -> bool {
    matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// The refusal's wording for `c`: "the character U+0000, which text here may not hold".
pub fn forbidden_reason(c: char) -> String {
    format!(
        "holds the character {}, which stored text may not hold (control characters other than tab and line breaks)",
        code_point(c)
    )
}

/// `c` as `U+0000`.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// `text` as it may be shown in a field name or a message: each forbidden
/// character replaced by its code point in braces (`notes{U+0000}x`), so the
/// message itself holds no such character.
pub fn printable(text: &str) -> String {
    if forbidden_char(text).is_none() {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if is_forbidden(c) {
                format!("{{{}}}", code_point(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A forbidden character found in a JSON value: where (a JSON-path-like
/// field name, `notes`, `photos[2]`, `sensitiveTaxa[0].scientificName`; the
/// key itself when the character is in a key) and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbiddenInJson {
    pub field: String,
    pub character: char,
}

/// Every forbidden character in the keys and strings of `value`, in document
/// order, one per key or string.
pub fn forbidden_in_json(value: &Value) -> Vec<ForbiddenInJson> {
    let mut found = Vec::new();
    walk(value, String::new(), &mut found);
    found
}

fn walk(value: &Value, path: String, found: &mut Vec<ForbiddenInJson>) {
    match value {
        Value::String(text) => {
            if let Some(character) = forbidden_char(text) {
                found.push(ForbiddenInJson {
                    field: path,
                    character,
                });
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                walk(item, format!("{path}[{index}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let field = if path.is_empty() {
                    printable(key)
                } else {
                    format!("{path}.{}", printable(key))
                };
                if let Some(character) = forbidden_char(key) {
                    found.push(ForbiddenInJson {
                        field: field.clone(),
                        character,
                    });
                }
                walk(item, field, found);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_and_control_characters_are_forbidden_and_line_breaks_are_not() {
        assert_eq!(forbidden_char("a\0b"), Some('\0'));
        assert_eq!(forbidden_char("bell\u{7}"), Some('\u{7}'));
        assert_eq!(forbidden_char("esc\u{1b}[31m"), Some('\u{1b}'));
        assert_eq!(forbidden_char("\u{ffff}"), Some('\u{ffff}'));
        assert_eq!(forbidden_char("line one\nline two\r\n\tindented"), None);
        assert_eq!(
            forbidden_char("Myotis daubentonii\u{a0}(Kuhl, 1817) é ✓"),
            None
        );
    }

    #[test]
    fn a_character_is_named_by_its_code_point() {
        assert_eq!(code_point('\0'), "U+0000");
        assert_eq!(code_point('\u{1b}'), "U+001B");
        assert!(forbidden_reason('\0').starts_with("holds the character U+0000"));
        assert_eq!(printable("notes\0x"), "notes{U+0000}x");
        assert_eq!(printable("plain"), "plain");
    }

    #[test]
    fn keys_and_strings_are_found_with_their_field() {
        let value = json!({
            "notes": "ok",
            "photos": ["a", "b\u{0}"],
            "extra\u{0}field": 1,
            "nested": {"reason": "x\u{1}"},
        });
        let found = forbidden_in_json(&value);
        let fields: Vec<&str> = found.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["extra{U+0000}field", "nested.reason", "photos[1]"],
            "{found:?}"
        );
        assert!(forbidden_in_json(&json!({"notes": "fine\n", "n": 3})).is_empty());
    }
}
