//! Every value a change writes, judged where it lands: the header's keys
//! (fixed once established), a record's fields (no coordinator's decision,
//! the owner's own id where a field names a person, sizes within
//! [`super::limits`], no character PostgreSQL cannot hold), the shape of a
//! notebook (collections of records, records maps of fields) and how many
//! fields and records it holds.
//!
//! Values are read with [`crate::documents::written`]: a value in a
//! concurrent branch that loses the merge, or one a later change deletes, is
//! judged like one that shows.

use automerge::{Automerge, Change, ObjType, ReadDoc, ScalarValue, ROOT};
use schemas::limits::{MAX_FIELDS_PER_RECORD, MAX_RECORDS_PER_NOTEBOOK, NAME_MAX_CHARS};
use uuid::Uuid;

use super::{
    limits::{check_chars, check_size, Place, Size},
    refusal::Refusal,
    rights::WriterRights,
};
use crate::documents::{
    written::{written_by, Segment, TouchedObject, Written},
    Collection, NotebookHeader,
};

/// Fields that are coordinator decisions: a notebook record never carries them.
pub const COORDINATOR_FIELDS: &[&str] = &[
    "identificationVerificationStatus",
    "verificationStatus",
    "reviewedBy",
    "reviewedAt",
    "approval",
    "approvalStatus",
    "approvedBy",
    "approvedAt",
    "status",
    "statusHistory",
];

/// Record fields that name a person: in a notebook, always its owner.
pub const OWNER_FIELDS: &[&str] = &["authorId", "volunteerId"];

/// The root keys of a notebook's header.
const HEADER_KEYS: [&str; 4] = ["type", "schemaVersion", "territoryId", "ownerId"];

/// Characters of a UUID in its hyphenated form.
const UUID_CHARS: u64 = 36;

/// Judges every value `changes` write (see [`crate::documents::written`]), the ones
/// the merge hides included.
pub(super) fn judge_written(
    established: Option<&NotebookHeader>,
    after: &Automerge,
    changes: &[Change],
    rights: &WriterRights,
) -> Result<(), Refusal> {
    let judge = ValueJudge {
        established,
        rights,
    };
    let (values, touched) = written_by(after, changes).map_err(Refusal::NotANotebook)?;
    for written in &values {
        let value = match &written.value {
            Written::Scalar(ScalarValue::Str(text)) => Value::Text(text),
            Written::Scalar(ScalarValue::Bytes(bytes) | ScalarValue::Unknown { bytes, .. }) => {
                Value::Bytes(bytes.len())
            }
            Written::Scalar(_) => Value::OtherScalar,
            // A text is judged by its content, below; other objects by their size.
            Written::Object(ObjType::Text) => continue,
            Written::Object(kind) => Value::Object(*kind),
            Written::Mark => {
                return Err(Refusal::Unsupported {
                    location: describe(&written.path),
                    what: "marks",
                })
            }
            Written::Other => Value::Removal,
        };
        judge.value(&written.path, value)?;
    }
    let mut records_added = false;
    for object in &touched {
        match object.kind {
            ObjType::Text => {
                if let Some(character) = object.forbidden_char {
                    return Err(forbidden_character(&object.path, character));
                }
                if let Some(what) = object.foreign {
                    return Err(Refusal::Unsupported {
                        location: describe(&object.path),
                        what,
                    });
                }
                // Text inserted and deleted again is bounded like text that stays.
                judge.value(&object.path, Value::Inserted(object.inserted_chars))?;
                let text = after.text(&object.obj).unwrap_or_default();
                judge.value(&object.path, Value::Text(&text))?;
            }
            ObjType::List => judge_list_length(after, object)?,
            ObjType::Map | ObjType::Table => match object.path.as_slice() {
                [Segment::Key(_)] => records_added = true,
                [Segment::Key(collection), Segment::Key(record)] => {
                    let got = after.keys(&object.obj).count();
                    if got > MAX_FIELDS_PER_RECORD {
                        return Err(Refusal::TooManyFields {
                            collection: collection_named(collection)?.key(),
                            record: record.clone(),
                            limit: MAX_FIELDS_PER_RECORD,
                            got,
                        });
                    }
                }
                _ => {}
            },
        }
    }
    if records_added {
        let got: usize = Collection::ALL
            .iter()
            .filter_map(|c| after.get(ROOT, c.key()).ok().flatten())
            .map(|(_, obj)| after.length(&obj))
            .sum();
        if got > MAX_RECORDS_PER_NOTEBOOK {
            return Err(Refusal::TooManyRecords {
                limit: MAX_RECORDS_PER_NOTEBOOK,
                got,
            });
        }
    }
    Ok(())
}

/// A written value, as far as the rules look at it.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    Bytes(usize),
    OtherScalar,
    /// The characters inserted into a text by the changes.
    Inserted(usize),
    /// A new map or list (texts are judged by their content).
    Object(ObjType),
    /// A deletion, an increment, a mark.
    Removal,
}

impl Value<'_> {
    /// What the size rules count: a text's characters, bytes' length, the
    /// characters inserted into a text; none for what they do not bound.
    fn chars(self) -> Option<usize> {
        match self {
            Value::Text(text) => Some(text.chars().count()),
            Value::Bytes(length) | Value::Inserted(length) => Some(length),
            _ => None,
        }
    }
}

/// The rules for one value at one path of a notebook.
struct ValueJudge<'a> {
    /// The header as stored before these changes; none for a new notebook.
    established: Option<&'a NotebookHeader>,
    rights: &'a WriterRights,
}

impl ValueJudge<'_> {
    fn value(&self, path: &[Segment], value: Value<'_>) -> Result<(), Refusal> {
        // Keys and texts alike end up in PostgreSQL, the audit trail and exports.
        let in_key = path.iter().find_map(|segment| match segment {
            Segment::Key(key) => schemas::text::forbidden_char(key),
            Segment::Element => None,
        });
        let in_text = match value {
            Value::Text(text) => schemas::text::forbidden_char(text),
            _ => None,
        };
        if let Some(character) = in_key.or(in_text) {
            return Err(forbidden_character(path, character));
        }
        let keys: Vec<&str> = path
            .iter()
            .map(|segment| match segment {
                Segment::Key(key) => key.as_str(),
                Segment::Element => "[]",
            })
            .collect();
        match keys.as_slice() {
            [] => Ok(()),
            [key, rest @ ..] if HEADER_KEYS.contains(key) => self.header_value(key, rest, value),
            [key, ..] if Collection::ALL.iter().all(|c| c.key() != *key) => {
                Err(Refusal::NotPartOfANotebook {
                    key: (*key).to_string(),
                })
            }
            [collection] => match value {
                Value::Object(ObjType::Map) | Value::Removal => Ok(()),
                _ => Err(Refusal::NotAMap {
                    location: (*collection).to_string(),
                    what: "of records",
                }),
            },
            [collection, record] => match value {
                Value::Object(ObjType::Map) | Value::Removal => Ok(()),
                _ => Err(Refusal::NotAMap {
                    location: format!("{collection}/{record}"),
                    what: "a record is a map of its fields",
                }),
            },
            [collection, record, field, rest @ ..] => {
                let collection = collection_named(collection)?;
                self.field_value(collection, record, field, rest, value)
            }
        }
    }

    fn header_value(&self, key: &str, rest: &[&str], value: Value<'_>) -> Result<(), Refusal> {
        let field = HEADER_KEYS
            .into_iter()
            .find(|k| *k == key)
            .expect("only header keys reach here");
        let Some(established) = self.established else {
            // A new notebook: it must be the writer's own, in their territory.
            let limit = match field {
                "ownerId" | "territoryId" => UUID_CHARS,
                _ => NAME_MAX_CHARS,
            };
            if let Some(got) = value.chars() {
                check_chars(key, got, limit)?;
            }
            return match (field, value) {
                ("ownerId", Value::Text(id))
                    if Uuid::parse_str(id).ok() != Some(self.rights.account_id) =>
                {
                    Err(Refusal::OwnerMismatch)
                }
                ("territoryId", Value::Text(id)) => match Uuid::parse_str(id) {
                    Ok(territory) if self.rights.notebook_territories.contains(&territory) => {
                        Ok(())
                    }
                    Ok(territory) => Err(Refusal::TerritoryNotAllowed { territory }),
                    Err(_) => Err(Refusal::NotANotebook(format!(
                        "`territoryId` must be a UUID (got {})",
                        shown(id)
                    ))),
                },
                (
                    "ownerId" | "territoryId",
                    Value::OtherScalar | Value::Bytes(_) | Value::Object(_),
                ) => Err(Refusal::NotANotebook(format!("`{field}` must be a UUID"))),
                _ => Ok(()),
            };
        };
        // An established header may be written again only with its own value.
        let unchanged = rest.is_empty()
            && match (field, value) {
                ("ownerId", Value::Text(id)) => {
                    Uuid::parse_str(id).ok() == Some(established.owner_id)
                }
                ("territoryId", Value::Text(id)) => {
                    Uuid::parse_str(id).ok() == Some(established.territory_id)
                }
                _ => false,
            };
        if unchanged {
            Ok(())
        } else {
            Err(Refusal::HeaderChanged { field })
        }
    }

    fn field_value(
        &self,
        collection: Collection,
        record: &str,
        field: &str,
        rest: &[&str],
        value: Value<'_>,
    ) -> Result<(), Refusal> {
        if COORDINATOR_FIELDS.contains(&field) && !matches!(value, Value::Removal) {
            return Err(Refusal::CoordinatorField {
                collection: collection.key(),
                record: record.to_string(),
                field: field.to_string(),
            });
        }
        if let Some(owner_field) = OWNER_FIELDS.iter().find(|f| **f == field) {
            let names_the_owner = match value {
                Value::Text(id) => Uuid::parse_str(id).ok() == Some(self.rights.account_id),
                // A text's content is judged apart; what is inserted is bounded below.
                Value::Removal | Value::Inserted(_) => true,
                _ => false,
            };
            if !rest.is_empty() || !names_the_owner {
                return Err(Refusal::NotTheOwner {
                    collection: collection.key(),
                    record: record.to_string(),
                    field: owner_field,
                });
            }
        }
        let kind = collection.kind();
        let place = match rest {
            [] => Place::Field { kind, field },
            ["[]"] => Place::ListItem { kind, field },
            _ => Place::Undescribed,
        };
        let location = format!("{}/{record}.{field}", collection.key());
        match value.chars() {
            Some(got) => check_size(place, Size::Chars(got), &location),
            None => Ok(()),
        }
    }
}

/// A list's length as the changes leave it: photos per record and the like.
fn judge_list_length(after: &Automerge, list: &TouchedObject) -> Result<(), Refusal> {
    let got = after.length(&list.obj);
    let (place, location) = match list.path.as_slice() {
        [Segment::Key(collection), Segment::Key(record), Segment::Key(field)] => {
            let place = match Collection::ALL.iter().find(|c| c.key() == collection) {
                Some(c) => Place::Field {
                    kind: c.kind(),
                    field,
                },
                None => Place::Undescribed,
            };
            (place, format!("{collection}/{record}.{field}"))
        }
        path => (Place::Undescribed, describe(path)),
    };
    check_size(place, Size::Items(got), &location)
}

fn describe(path: &[Segment]) -> String {
    path.iter()
        .map(|segment| match segment {
            Segment::Key(key) => key.as_str(),
            Segment::Element => "[]",
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn forbidden_character(path: &[Segment], character: char) -> Refusal {
    Refusal::ForbiddenCharacter {
        location: schemas::text::printable(&describe(path)),
        character: schemas::text::code_point(character),
    }
}

fn collection_named(key: &str) -> Result<Collection, Refusal> {
    Collection::ALL
        .into_iter()
        .find(|c| c.key() == key)
        .ok_or_else(|| Refusal::NotPartOfANotebook {
            key: key.to_string(),
        })
}

/// A value as shown in a refusal: cut short, so an essay does not become the message.
fn shown(text: &str) -> String {
    let head: String = text.chars().take(40).collect();
    if head.len() < text.len() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}
