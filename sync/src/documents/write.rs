//! Writing records into a notebook document, as phones (and tests) do.
//!
//! Every field is written as its own scalar register (strings as scalar strings,
//! not collaborative text): a field is replaced whole, which is what a form field
//! on a phone means, and a concurrent edit then shows up as a conflict to review
//! rather than as two edits spliced into one string.

use automerge::{
    transaction::{CommitOptions, Transactable},
    Automerge, ObjId, ObjType, ReadDoc, ScalarValue, ROOT,
};
use schemas::{FieldRecord, RecordKind};
use serde_json::Value as Json;
use uuid::Uuid;

use super::notebook::{Collection, NotebookHeader, NOTEBOOK_TYPE, SCHEMA_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the document is not a notebook: it has no `{0}` collection")]
    NoCollection(&'static str),
    #[error("record {0} is not in the notebook")]
    NoRecord(String),
    #[error("a record must serialise to a JSON object")]
    NotAnObject,
    #[error("record could not be serialised: {0}")]
    Serialise(#[from] serde_json::Error),
    #[error("automerge refused the write: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

/// A new, empty notebook for one volunteer in one territory.
pub fn new_notebook(header: NotebookHeader) -> Automerge {
    let mut doc = Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "type", NOTEBOOK_TYPE)?;
        tx.put(ROOT, "schemaVersion", SCHEMA_VERSION)?;
        tx.put(ROOT, "territoryId", header.territory_id.to_string())?;
        tx.put(ROOT, "ownerId", header.owner_id.to_string())?;
        for collection in Collection::ALL {
            tx.put_object(ROOT, collection.key(), ObjType::Map)?;
        }
        Ok(())
    })
    .expect("writing fresh keys into an empty document cannot fail");
    doc
}

/// Puts a typed record into its collection, under its id.
pub fn put_record<R: FieldRecord>(doc: &mut Automerge, record: &R) -> Result<(), WriteError> {
    let raw = serde_json::to_value(record)?;
    put_raw_record(doc, R::KIND, &record.id().to_string(), &raw)
}

/// Puts a record exactly as given, valid or not: phones keep what a volunteer
/// typed even when it fails validation, and tests need to send such records.
pub fn put_raw_record(
    doc: &mut Automerge,
    kind: RecordKind,
    key: &str,
    raw: &Json,
) -> Result<(), WriteError> {
    let Json::Object(fields) = raw else {
        return Err(WriteError::NotAnObject);
    };
    let collection = collection_obj(doc, kind)?;
    doc.transact_with::<_, _, WriteError, _>(stamped_now, |tx| {
        let record = tx.put_object(&collection, key, ObjType::Map)?;
        for (name, value) in fields {
            put_json(tx, &record, name, value)?;
        }
        Ok(())
    })
    .map_err(|failure| failure.error)?;
    Ok(())
}

/// Sets one field of an existing record (a volunteer correcting a count, say).
pub fn set_field(
    doc: &mut Automerge,
    kind: RecordKind,
    id: Uuid,
    field: &str,
    value: &Json,
) -> Result<(), WriteError> {
    let collection = collection_obj(doc, kind)?;
    let key = id.to_string();
    let Some((_, record)) = doc.get(&collection, key.as_str())? else {
        return Err(WriteError::NoRecord(key));
    };
    doc.transact_with::<_, _, WriteError, _>(stamped_now, |tx| put_json(tx, &record, field, value))
        .map_err(|failure| failure.error)?;
    Ok(())
}

/// A record change carries its writer's clock, in seconds since the epoch as
/// automerge's JavaScript `change` writes it: the conflict queue shows when
/// each concurrent value was written.
fn stamped_now<T>(_: &T) -> CommitOptions {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    CommitOptions::default().with_time(i64::try_from(seconds).unwrap_or(0))
}

fn collection_obj(doc: &Automerge, kind: RecordKind) -> Result<ObjId, WriteError> {
    let key = Collection::of_kind(kind).key();
    match doc.get(ROOT, key)? {
        Some((automerge::Value::Object(ObjType::Map), obj)) => Ok(obj),
        _ => Err(WriteError::NoCollection(key)),
    }
}

fn put_json<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: &Json,
) -> Result<(), WriteError> {
    match value {
        Json::Array(items) => {
            let list = tx.put_object(obj, key, ObjType::List)?;
            for (index, item) in items.iter().enumerate() {
                insert_json(tx, &list, index, item)?;
            }
        }
        Json::Object(fields) => {
            let map = tx.put_object(obj, key, ObjType::Map)?;
            for (name, item) in fields {
                put_json(tx, &map, name, item)?;
            }
        }
        scalar => tx.put(obj, key, to_scalar(scalar))?,
    }
    Ok(())
}

fn insert_json<T: Transactable>(
    tx: &mut T,
    list: &ObjId,
    index: usize,
    value: &Json,
) -> Result<(), WriteError> {
    match value {
        Json::Array(items) => {
            let inner = tx.insert_object(list, index, ObjType::List)?;
            for (i, item) in items.iter().enumerate() {
                insert_json(tx, &inner, i, item)?;
            }
        }
        Json::Object(fields) => {
            let map = tx.insert_object(list, index, ObjType::Map)?;
            for (name, item) in fields {
                put_json(tx, &map, name, item)?;
            }
        }
        scalar => tx.insert(list, index, to_scalar(scalar))?,
    }
    Ok(())
}

fn to_scalar(value: &Json) -> ScalarValue {
    match value {
        Json::Null => ScalarValue::Null,
        Json::Bool(b) => ScalarValue::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int(i),
            None => ScalarValue::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => ScalarValue::Str(s.as_str().into()),
        Json::Array(_) | Json::Object(_) => unreachable!("objects are written by put_json"),
    }
}
