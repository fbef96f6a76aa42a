//! Reading what a phone stored (raw JSON) into a typed record, reporting every problem.
//!
//! serde stops at the first error, which would make a volunteer fix a record one field
//! per sync attempt. So the raw value is first validated against the record's JSON
//! Schema, which reports all structural problems at once; each error is translated into
//! a [`FieldProblem`] naming the camelCase field. Only a structurally sound value is
//! handed to serde, then to the record's semantic checks.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::{Location, LocationSegment};
use jsonschema::{JsonType, ValidationError, Validator};
use serde_json::Value;

use crate::checks;
use crate::{json_schema_of, FieldProblem, FieldRecord, RecordKind};

/// A record type's schema with its compiled validator, built once per process because
/// compiling costs far more than validating one record.
struct Compiled {
    schema: Value,
    validator: Validator,
}

static COMPILED: [OnceLock<Compiled>; RecordKind::ALL.len()] =
    [const { OnceLock::new() }; RecordKind::ALL.len()];

fn compiled<R: FieldRecord>() -> &'static Compiled {
    COMPILED[R::KIND as usize].get_or_init(|| {
        let schema = json_schema_of::<R>();
        let validator = jsonschema::options()
            // Formats (uuid, date-time, date) are annotations only unless asked for;
            // a malformed timestamp must be reported with its field like any other error.
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("schema generated for {:?} is invalid: {e}", R::KIND));
        Compiled { schema, validator }
    })
}

pub(crate) fn parse<R: FieldRecord>(raw: &Value) -> Result<R, Vec<FieldProblem>> {
    let compiled = compiled::<R>();
    let errors: Vec<ValidationError<'_>> = compiled.validator.iter_errors(raw).collect();
    // A value outside an enumeration gets both a `type` and an `enum` error when it is
    // not even a string; the list of allowed values says all there is to say.
    let enum_fields: Vec<&Location> = errors
        .iter()
        .filter(|e| matches!(e.kind(), ValidationErrorKind::Enum { .. }))
        .map(ValidationError::instance_path)
        .collect();
    let mut problems: Vec<FieldProblem> = Vec::new();
    for error in &errors {
        let redundant = matches!(error.kind(), ValidationErrorKind::Type { .. })
            && enum_fields.contains(&error.instance_path());
        let problem = problem_from(error, &compiled.schema);
        if !redundant && !problems.contains(&problem) {
            problems.push(problem);
        }
    }
    // Keys included: a client's own field is stored as written.
    for found in crate::text::forbidden_in_json(raw) {
        problems.push(FieldProblem::new(
            found.field,
            crate::text::forbidden_reason(found.character),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // The schema cannot say everything serde requires (e.g. `1e20` is a JSON Schema
    // integer but fits no i64), so serde can still refuse; name the field it stopped at.
    let record: R = serde_path_to_error::deserialize(raw).map_err(|e| {
        vec![FieldProblem::new(
            field_of_serde_path(e.path()),
            format!("could not be read: {}", e.inner()),
        )]
    })?;
    let problems = record.problems();
    if problems.is_empty() {
        Ok(record)
    } else {
        Err(problems)
    }
}

/// `/statusHistory/2/reason` → `statusHistory[2].reason`.
fn field_of_location(location: &Location) -> String {
    let mut field = String::new();
    for segment in location.segments() {
        match segment {
            LocationSegment::Property(name) => push_property(&mut field, &name),
            LocationSegment::Index(index) => field.push_str(&format!("[{index}]")),
        }
    }
    field
}

fn field_of_serde_path(path: &serde_path_to_error::Path) -> String {
    let mut field = String::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => field.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => push_property(&mut field, key),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    field
}

fn push_property(field: &mut String, name: &str) {
    if !field.is_empty() {
        field.push('.');
    }
    field.push_str(name);
}

fn problem_from(error: &ValidationError<'_>, schema: &Value) -> FieldProblem {
    let field = field_of_location(error.instance_path());
    let got = error.instance();
    let reason = match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let mut missing = field;
            push_property(&mut missing, name);
            return FieldProblem::new(missing, "is required");
        }
        ValidationErrorKind::Type { kind } => {
            format!("must be {} (got {})", expected_types(kind), show(got))
        }
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options
                .as_array()
                .map(|values| values.iter().map(show).collect())
                .unwrap_or_default();
            format!("must be one of {} (got {})", allowed.join(", "), show(got))
        }
        ValidationErrorKind::Minimum { .. } | ValidationErrorKind::Maximum { .. } => {
            // Report both bounds when the schema has both, e.g. "between -90 and 90".
            let keywords = keywords_of(error, schema);
            let bound = |name: &str| keywords.and_then(|k| k.get(name)).and_then(Value::as_f64);
            checks::bounds_reason(bound("minimum"), bound("maximum"), &show(got))
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            checks::greater_than_reason(limit.as_f64().unwrap_or(f64::NAN), &show(got))
        }
        ValidationErrorKind::MaxLength { limit } => {
            let chars = got.as_str().map_or(0, |s| s.chars().count());
            checks::max_chars_reason(*limit, chars)
        }
        ValidationErrorKind::MaxItems { limit } => {
            let items = got.as_array().map_or(0, Vec::len);
            format!("must hold at most {limit} items (got {items})")
        }
        ValidationErrorKind::Pattern { pattern } => {
            checks::pattern_reason(pattern, got.as_str().unwrap_or_default())
        }
        ValidationErrorKind::Format { format } => format_reason(format, got),
        _ => error.to_string(),
    };
    FieldProblem::new(field, reason)
}

/// The schema object holding the keyword that failed (its schema path minus the keyword).
fn keywords_of<'s>(
    error: &ValidationError<'_>,
    schema: &'s Value,
) -> Option<&'s serde_json::Map<String, Value>> {
    let path = error.schema_path().as_str();
    let parent = &path[..path.rfind('/')?];
    schema.pointer(parent)?.as_object()
}

fn expected_types(kind: &TypeKind) -> String {
    let mut types: Vec<JsonType> = match kind {
        TypeKind::Single(one) => vec![*one],
        TypeKind::Multiple(set) => set.iter().collect(),
    };
    // "a number or null" reads better than "null or a number".
    types.sort_by_key(|t| *t == JsonType::Null);
    let phrases: Vec<&str> = types.into_iter().map(type_phrase).collect();
    phrases.join(" or ")
}

fn type_phrase(json_type: JsonType) -> &'static str {
    match json_type {
        JsonType::Array => "a list",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "a whole number",
        JsonType::Null => "null",
        JsonType::Number => "a number",
        JsonType::Object => "an object",
        JsonType::String => "a text",
    }
}

fn format_reason(format: &str, got: &Value) -> String {
    let expected = match format {
        "date-time" => "a date and time in RFC 3339 form, e.g. 2024-05-17T14:30:00Z",
        "date" => "a date in YYYY-MM-DD form",
        "uuid" => "a UUID, e.g. 67e55044-10b1-426f-9247-bb680e5fe0c8",
        other => other,
    };
    format!("must be {expected} (got {})", show(got))
}

/// A JSON value as shown in a reason: numbers as Rust prints them (so "90", not "90.0",
/// matching the typed checks), strings quoted and cut short.
fn show(value: &Value) -> String {
    match value {
        Value::Number(number) => match (number.as_i64(), number.as_f64()) {
            (Some(integer), _) => integer.to_string(),
            (None, Some(float)) => float.to_string(),
            (None, None) => number.to_string(),
        },
        Value::String(s) => checks::quoted(s),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        Value::Bool(_) | Value::Null => value.to_string(),
    }
}
