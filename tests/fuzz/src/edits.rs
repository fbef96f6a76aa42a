//! Arbitrary automerge edits drawn from fuzzer bytes: puts, nested objects,
//! list and text edits, deletions and counters, on keys a notebook uses
//! (and on any other), with values a hostile phone could send (other
//! people's ids, U+0000, long texts, every scalar type). Random bytes rarely
//! make a change that passes automerge's checksum; these make valid changes
//! whose *content* is arbitrary, which is what the judge and the reader see.

use arbitrary::{Result, Unstructured};
use automerge::{
    transaction::Transactable, ActorId, Automerge, ObjId, ObjType, ReadDoc, ScalarValue, Value,
    ROOT,
};

/// Keys a notebook and its records use, and a few that no schema names.
const KEYS: &[&str] = &[
    "type",
    "schemaVersion",
    "territoryId",
    "ownerId",
    "sightings",
    "degradationReports",
    "timesheetEntries",
    "id",
    "occurrenceID",
    "scientificName",
    "vernacularName",
    "taxonId",
    "eventDate",
    "decimalLatitude",
    "decimalLongitude",
    "individualCount",
    "recordedBy",
    "authorId",
    "volunteerId",
    "deviceId",
    "createdAt",
    "modifiedAt",
    "notes",
    "photos",
    "hours",
    "verificationStatus",
    "status",
    "extra\u{0}field",
    "",
];

/// Objects a change may reach: at most this many are collected per edit, so
/// that a large document does not make every execution walk all of it.
const MAX_OBJECTS: usize = 64;

/// Edits per transaction: enough to build a record and break it.
const MAX_EDITS: u32 = 24;

/// Values a string field may take: the notebook's own ids are filled in by the caller.
fn text(u: &mut Unstructured, ids: &[String]) -> Result<String> {
    Ok(match u.int_in_range(0..=6)? {
        0 => u.choose(ids)?.clone(),
        1 => "\u{0}".to_string(),
        2 => "x".repeat(u.int_in_range(0..=5000)?),
        3 => "2026-05-01T10:00:00+02:00".to_string(),
        4 => "Myotis daubentonii (Kuhl, 1817)".to_string(),
        5 => (*u.choose(KEYS)?).to_string(),
        _ => short_string(u)?,
    })
}

fn key(u: &mut Unstructured) -> Result<String> {
    if u.ratio(7, 8)? {
        Ok((*u.choose(KEYS)?).to_string())
    } else {
        short_string(u)
    }
}

fn scalar(u: &mut Unstructured, ids: &[String]) -> Result<ScalarValue> {
    Ok(match u.int_in_range(0..=8)? {
        0 | 1 => ScalarValue::Str(text(u, ids)?.into()),
        2 => ScalarValue::Int(u.arbitrary()?),
        3 => ScalarValue::Uint(u.arbitrary()?),
        4 => ScalarValue::F64(u.arbitrary()?),
        5 => ScalarValue::counter(u.arbitrary()?),
        6 => ScalarValue::Timestamp(u.arbitrary()?),
        7 => ScalarValue::Boolean(u.arbitrary()?),
        _ => match u.int_in_range(0..=1)? {
            0 => ScalarValue::Null,
            _ => ScalarValue::Bytes(u.arbitrary()?),
        },
    })
}

fn object_type(u: &mut Unstructured) -> Result<ObjType> {
    Ok(*u.choose(&[ObjType::Map, ObjType::List, ObjType::Text, ObjType::Table])?)
}

/// Every object reachable from the root, breadth first, up to [`MAX_OBJECTS`].
fn objects<D: ReadDoc>(doc: &D) -> Vec<ObjId> {
    let mut found = vec![ROOT];
    let mut next = 0;
    while next < found.len() && found.len() < MAX_OBJECTS {
        let obj = found[next].clone();
        next += 1;
        let children: Vec<ObjId> = match doc.object_type(&obj) {
            Ok(ObjType::Map | ObjType::Table) => doc
                .keys(&obj)
                .filter_map(|key| match doc.get(&obj, key.as_str()) {
                    Ok(Some((Value::Object(_), id))) => Some(id),
                    _ => None,
                })
                .collect(),
            Ok(ObjType::List) => (0..doc.length(&obj))
                .filter_map(|index| match doc.get(&obj, index) {
                    Ok(Some((Value::Object(_), id))) => Some(id),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        found.extend(children);
    }
    found.truncate(MAX_OBJECTS);
    found
}

/// One transaction of arbitrary edits on `doc`, committed under an actor
/// drawn from the input. Edits automerge refuses (an index past the end, an
/// increment of a string) are skipped: only what it accepts reaches a change.
pub fn edit(doc: &mut Automerge, u: &mut Unstructured, ids: &[String]) -> Result<()> {
    let actor: [u8; 4] = u.arbitrary()?;
    doc.set_actor(ActorId::from(actor.as_slice()));
    let mut known = objects(doc);
    let mut tx = doc.transaction();
    for _ in 0..u.int_in_range(1..=MAX_EDITS)? {
        let obj = u.choose(&known)?.clone();
        match tx.object_type(&obj) {
            Ok(ObjType::Map | ObjType::Table) => {
                let key = key(u)?;
                match u.int_in_range(0..=4)? {
                    0 | 1 => {
                        let _ = tx.put(&obj, key, scalar(u, ids)?);
                    }
                    2 => {
                        if let Ok(child) = tx.put_object(&obj, key, object_type(u)?) {
                            known.push(child);
                        }
                    }
                    3 => {
                        let _ = tx.delete(&obj, key);
                    }
                    _ => {
                        let _ = tx.increment(&obj, key, u.arbitrary()?);
                    }
                }
            }
            Ok(ObjType::List) => {
                let index = u.int_in_range(0..=tx.length(&obj))?;
                match u.int_in_range(0..=3)? {
                    0 => {
                        let _ = tx.insert(&obj, index, scalar(u, ids)?);
                    }
                    1 => {
                        if let Ok(child) = tx.insert_object(&obj, index, object_type(u)?) {
                            known.push(child);
                        }
                    }
                    2 => {
                        let _ = tx.put(&obj, index, scalar(u, ids)?);
                    }
                    _ => {
                        let _ = tx.delete(&obj, index);
                    }
                }
            }
            Ok(ObjType::Text) => {
                let length = tx.length(&obj);
                let at = u.int_in_range(0..=length)?;
                let delete = u.int_in_range(0..=(length - at) as isize)?;
                let _ = tx.splice_text(&obj, at, delete, &text(u, ids)?);
            }
            Err(_) => {}
        }
    }
    tx.commit();
    Ok(())
}

/// `rounds` transactions of edits, each on `doc` or on a concurrent fork of
/// it, the fork merged back at the end: the result holds conflicting values
/// and losing branches as two phones offline at once would make them.
pub fn edit_with_branches(doc: &mut Automerge, u: &mut Unstructured, ids: &[String]) -> Result<()> {
    let mut branch = doc.fork();
    for _ in 0..u.int_in_range(1..=3)? {
        if u.arbitrary()? {
            edit(doc, u, ids)?;
        } else {
            edit(&mut branch, u, ids)?;
        }
    }
    let _ = doc.merge(&mut branch);
    Ok(())
}

/// A string of at most 64 bytes of the input, read leniently as UTF-8.
fn short_string(u: &mut Unstructured) -> Result<String> {
    let length = u.int_in_range(0..=64usize)?.min(u.len());
    Ok(String::from_utf8_lossy(u.bytes(length)?).into_owned())
}
