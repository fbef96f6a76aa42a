//! Reading automerge values as JSON, keeping concurrent values.
//!
//! Phones write records as plain maps. The JavaScript automerge-repo stores
//! strings as collaborative text and `Date`s as timestamps, the Rust client as
//! scalar strings; both read back as the same JSON here, so validation sees one
//! shape whichever client wrote the record.

use automerge::{ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value};
use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use serde_json::{Map, Value as Json};

/// A field that two (or more) phones set concurrently: automerge keeps every
/// value; the inventory shows the winner and flags the field with all of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldConflict {
    /// JSON name of the field (e.g. `individualCount`).
    pub field: String,
    /// The value automerge resolves the field to; what the inventory row holds.
    pub winner: Json,
    /// Every concurrent value, the winner included, in automerge's op order.
    pub values: Vec<Json>,
}

/// Reads the map at `obj` as a JSON object, reporting the fields that hold
/// concurrent values. Conflicts are reported for the map's own fields; nested
/// objects (photo lists) are read as their winning value.
pub fn read_map_with_conflicts<D: ReadDoc>(
    doc: &D,
    obj: &ObjId,
) -> (Map<String, Json>, Vec<FieldConflict>) {
    let mut fields = Map::new();
    let mut conflicts = Vec::new();
    // One pass over the map (a lookup per field costs a seek each); the
    // concurrent values are read only for the fields that have them.
    for item in doc.map_range(obj, ..) {
        let key = item.key.to_string();
        let (id, conflict) = (item.id(), item.conflict);
        let winner = value_to_json(doc, &item.value.into_value(), &id);
        if conflict {
            let values: Vec<Json> = doc
                .get_all(obj, key.as_str())
                .unwrap_or_default()
                .iter()
                .map(|(value, id)| value_to_json(doc, value, id))
                .collect();
            conflicts.push(FieldConflict {
                field: key.clone(),
                winner: winner.clone(),
                values,
            });
        }
        fields.insert(key, winner);
    }
    (fields, conflicts)
}

/// Converts one automerge value (scalar or object) to JSON.
pub fn value_to_json<D: ReadDoc>(doc: &D, value: &Value<'_>, id: &ObjId) -> Json {
    match value {
        Value::Scalar(scalar) => scalar_to_json(scalar),
        Value::Object(ObjType::Text) => Json::String(doc.text(id).unwrap_or_default()),
        Value::Object(ObjType::List) => {
            let len = doc.length(id);
            Json::Array(
                (0..len)
                    .filter_map(|i| doc.get(id, Prop::Seq(i)).ok().flatten())
                    .map(|(v, child)| value_to_json(doc, &v, &child))
                    .collect(),
            )
        }
        Value::Object(ObjType::Map | ObjType::Table) => Json::Object(
            doc.map_range(id, ..)
                .map(|item| {
                    let child = item.id();
                    let value = value_to_json(doc, &item.value.into_value(), &child);
                    (item.key.to_string(), value)
                })
                .collect(),
        ),
    }
}

/// [`value_to_json`] as the document stood at `heads`.
pub fn value_to_json_at<D: ReadDoc>(
    doc: &D,
    value: &Value<'_>,
    id: &ObjId,
    heads: &[automerge::ChangeHash],
) -> Json {
    match value {
        Value::Scalar(scalar) => scalar_to_json(scalar),
        Value::Object(ObjType::Text) => Json::String(doc.text_at(id, heads).unwrap_or_default()),
        Value::Object(ObjType::List) => {
            let len = doc.length_at(id, heads);
            Json::Array(
                (0..len)
                    .filter_map(|i| doc.get_at(id, Prop::Seq(i), heads).ok().flatten())
                    .map(|(v, child)| value_to_json_at(doc, &v, &child, heads))
                    .collect(),
            )
        }
        Value::Object(ObjType::Map | ObjType::Table) => Json::Object(
            doc.map_range_at(id, .., heads)
                .map(|item| {
                    let child = item.id();
                    let value = value_to_json_at(doc, &item.value.into_value(), &child, heads);
                    (item.key.to_string(), value)
                })
                .collect(),
        ),
    }
}

pub(crate) fn scalar_to_json(scalar: &ScalarValue) -> Json {
    match scalar {
        ScalarValue::Str(s) => Json::String(s.to_string()),
        ScalarValue::Int(i) => Json::from(*i),
        ScalarValue::Uint(u) => Json::from(*u),
        ScalarValue::F64(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        ScalarValue::Counter(c) => Json::from(i64::from(c)),
        // Automerge timestamps are milliseconds since the epoch (a JS `Date`).
        ScalarValue::Timestamp(ms) => DateTime::from_timestamp_millis(*ms)
            .map(|t| Json::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
            .unwrap_or(Json::Null),
        ScalarValue::Boolean(b) => Json::Bool(*b),
        ScalarValue::Null => Json::Null,
        ScalarValue::Bytes(bytes) => Json::String(hex(bytes)),
        ScalarValue::Unknown { bytes, .. } => Json::String(hex(bytes)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which change wrote each operation of a document: the attribution of the
/// concurrent values of a field (who typed each, when).
pub struct ChangeIndex {
    /// (actor, first op counter, op count, change hash, change timestamp in seconds)
    changes: Vec<(automerge::ActorId, u64, u64, automerge::ChangeHash, i64)>,
}

/// One of a field's concurrent values and the change that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenValue {
    pub value: Json,
    pub change: Option<automerge::ChangeHash>,
    /// The writer's clock when it made the change, in seconds since the epoch
    /// (automerge's convention: JavaScript's `change` writes
    /// `Math.floor(Date.now() / 1000)`, [`super::write`] the same; 0 if the
    /// client did not say).
    pub timestamp: i64,
}

impl ChangeIndex {
    pub fn new(doc: &automerge::Automerge) -> ChangeIndex {
        ChangeIndex {
            changes: doc
                .get_changes_meta(&[])
                .into_iter()
                .map(|change| {
                    (
                        change.actor.into_owned(),
                        change.start_op,
                        // max_op is the change's last op counter.
                        change
                            .max_op
                            .saturating_add(1)
                            .saturating_sub(change.start_op),
                        change.hash,
                        change.timestamp,
                    )
                })
                .collect(),
        }
    }

    /// Every value of `key` in the map `obj`, each with its change.
    pub fn values_of(
        &self,
        doc: &automerge::Automerge,
        obj: &ObjId,
        key: &str,
    ) -> Vec<WrittenValue> {
        doc.get_all(obj, key)
            .unwrap_or_default()
            .iter()
            .map(|(value, id)| {
                let change = match id {
                    ObjId::Id(counter, actor, _) => {
                        self.changes
                            .iter()
                            .find(|(change_actor, start, len, _, _)| {
                                change_actor == actor
                                    && *start <= *counter
                                    && *counter < start + len
                            })
                    }
                    ObjId::Root => None,
                };
                WrittenValue {
                    value: value_to_json(doc, value, id),
                    change: change.map(|c| c.3),
                    timestamp: change.map_or(0, |c| c.4),
                }
            })
            .collect()
    }
}
