//! Who may write what into a notebook: the decision the server takes on every
//! incoming change before samod applies it.
//!
//! A notebook belongs to one volunteer in one territory. Only its owner writes
//! it; the owner must (still) hold a writing role in that territory; the header
//! never changes after creation; no record may carry a coordinator's decision
//! (verification, approval, follow-up status), which belong in the territory's
//! review documents, not in a volunteer's notebook; every record names the
//! owner as its author (and as the volunteer whose hours it declares); and
//! nothing exceeds the size limits of `schemas::limits`.
//!
//! These rules hold for **every value a change writes** ([`crate::written`]),
//! not just for the merged state: a value in a concurrent branch that loses
//! the merge, or one a later change deletes, is still in the document, one
//! deletion away from surfacing.

use automerge::{Automerge, Change, ChangeHash, ObjType, ReadDoc, ScalarValue, ROOT};
use schemas::limits::{
    max_chars_of, max_item_chars_of, max_items_of, EXTRA_FIELD_MAX_CHARS, MAX_FIELDS_PER_RECORD,
    MAX_RECORDS_PER_NOTEBOOK, NAME_MAX_CHARS,
};
use uuid::Uuid;

use crate::{
    check_header_unchanged, read_header,
    wire::chunk_changes,
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

/// How many changes one judgement applies. A phone back from a day offline
/// sends a few hundred; tens of thousands at once is a peer flooding the server.
pub const MAX_CHANGES_PER_MESSAGE: usize = 10_000;

/// Operations in one change. The longest legitimate change, a record whose
/// free texts are all at their limit written by the JavaScript client (one
/// operation per character), stays far below.
pub const MAX_OPERATIONS_PER_CHANGE: usize = 100_000;

/// Characters of a UUID in its hyphenated form.
const UUID_CHARS: u64 = 36;

/// A list the schema does not bound (one a client added of its own).
pub const EXTRA_LIST_MAX_ITEMS: usize = 100;

/// What the writer of a change may do, as the server established it from their credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterRights {
    pub account_id: Uuid,
    /// Territories where the writer may keep a notebook (volunteers and coordinators).
    pub notebook_territories: Vec<Uuid>,
}

/// Why a change is refused; the text is sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this notebook belongs to another volunteer; only its owner may change it")]
    NotYourNotebook,
    #[error("you may not keep a notebook in territory {territory}")]
    TerritoryNotAllowed { territory: Uuid },
    #[error(
        "your roles keep no notebook in any territory: you may read documents, not change them"
    )]
    NoNotebookAnywhere,
    #[error("a new notebook must name you as its owner (`ownerId` must be your account id)")]
    OwnerMismatch,
    #[error("the notebook's `{field}` cannot be changed")]
    HeaderChanged { field: &'static str },
    #[error("a document must be a field notebook with a valid header: {0}")]
    NotANotebook(String),
    #[error("`{key}` is not part of a field notebook")]
    NotPartOfANotebook { key: String },
    #[error("these changes depend on changes the server has never received, and a new notebook must be sent from its beginning")]
    UnknownHistory,
    #[error("more than {limit} changes are waiting for changes the server has never received; send those first")]
    TooManyWaiting { limit: usize },
    #[error("`{field}` of {collection}/{record} is a coordinator's decision and cannot be set from a notebook")]
    CoordinatorField {
        collection: &'static str,
        record: String,
        field: String,
    },
    #[error("`{field}` of {collection}/{record} must be your own account id: a notebook holds its owner's records and hours only")]
    NotTheOwner {
        collection: &'static str,
        record: String,
        field: &'static str,
    },
    #[error("`{location}` is {got} characters long; the limit is {limit}")]
    TooLong {
        location: String,
        limit: u64,
        got: usize,
    },
    #[error("`{location}` holds {got} items; the limit is {limit}")]
    TooManyItems {
        location: String,
        limit: usize,
        got: usize,
    },
    #[error("{collection}/{record} has {got} fields; the limit is {limit}")]
    TooManyFields {
        collection: &'static str,
        record: String,
        limit: usize,
        got: usize,
    },
    #[error("the notebook would hold {got} records; the limit is {limit} per notebook")]
    TooManyRecords { limit: usize, got: usize },
    #[error("{got} changes at once; the limit is {limit} per message")]
    TooManyChanges { limit: usize, got: usize },
    #[error("a change of {got} operations; the limit is {limit} per change")]
    ChangeTooLarge { limit: usize, got: usize },
    #[error("`{location}` holds the character {character}, which stored text may not hold (control characters other than tab and line breaks)")]
    ForbiddenCharacter {
        location: String,
        /// As `U+0000`.
        character: String,
    },
    #[error("`{location}` holds {what}, which are not part of a notebook")]
    Unsupported {
        location: String,
        what: &'static str,
    },
    #[error("`{location}` must be a map ({what})")]
    NotAMap {
        location: String,
        what: &'static str,
    },
    #[error("this is a review document: it holds coordinators' decisions, which only the review API writes")]
    ReviewDocument,
    #[error("this is the territory's species list: only its coordinators change it, by importing a list over the API")]
    SpeciesListDocument,
    #[error(
        "these changes cannot be applied to the document (they refer to objects it does not have)"
    )]
    Unapplicable,
}

/// How many changes may wait, per notebook, for dependencies the server has
/// not received. A Bloom-filter false positive leaves a handful; thousands mean
/// a peer sends changes whose history it never sends.
pub const MAX_WAITING_CHANGES: usize = 10_000;

/// The outcome of applying incoming changes to the committed document.
#[derive(Debug)]
pub enum Decision {
    /// Every change that applies is allowed. Changes whose dependencies are
    /// missing cannot be judged yet: automerge keeps them unapplied until the
    /// dependencies arrive, and they must be judged again, with those, then.
    Allowed {
        /// Changes that `committed` lacked and that now apply.
        applied: Vec<ChangeHash>,
        /// Incoming changes still waiting for a dependency.
        waiting: Vec<Change>,
        /// The dependencies they wait for.
        missing: Vec<ChangeHash>,
        /// The committed document with the allowed changes applied, when no
        /// change waits (a document with waiting changes holds them queued,
        /// and is not one to commit): the caller need not apply them again.
        applied_to: Option<Box<Automerge>>,
    },
    Refused(Refusal),
}

/// Decides whether `chunks` (the change chunks of a sync message, after those
/// still waiting from earlier messages) may be applied to `committed`, the
/// document as the server has stored it.
///
/// Only the document's established owner may leave changes waiting: once a
/// dependency arrives automerge applies whatever waited for it, so a waiting
/// change is judged with the owner's rights when it becomes applicable.
pub fn authorize_notebook_changes(
    committed: &Automerge,
    chunks: &[Vec<u8>],
    rights: &WriterRights,
) -> Decision {
    // automerge panics on some malformed changes it accepts to parse (an
    // operation on an object that does not exist): such a change is refused,
    // and nothing shared is left half-updated (the judgement works on a copy).
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Err(refusal) = check_counts(chunks) {
            return Decision::Refused(refusal);
        }
        decide(committed, chunks, rights)
    }))
    .unwrap_or(Decision::Refused(Refusal::Unapplicable))
}

/// Changes per message and operations per change, counted before anything
/// is loaded, so that an oversize message costs its parsing only.
fn check_counts(chunks: &[Vec<u8>]) -> Result<(), Refusal> {
    let mut changes = 0;
    for chunk in chunks {
        for change in chunk_changes(chunk).map_err(Refusal::NotANotebook)? {
            changes += 1;
            if changes > MAX_CHANGES_PER_MESSAGE {
                return Err(Refusal::TooManyChanges {
                    limit: MAX_CHANGES_PER_MESSAGE,
                    got: changes,
                });
            }
            if change.len() > MAX_OPERATIONS_PER_CHANGE {
                return Err(Refusal::ChangeTooLarge {
                    limit: MAX_OPERATIONS_PER_CHANGE,
                    got: change.len(),
                });
            }
        }
    }
    Ok(())
}

fn decide(committed: &Automerge, chunks: &[Vec<u8>], rights: &WriterRights) -> Decision {
    if crate::review::is_review_document(committed) {
        return Decision::Refused(Refusal::ReviewDocument);
    }
    if crate::species::is_species_list_document(committed) {
        return Decision::Refused(Refusal::SpeciesListDocument);
    }
    let mut after = committed.clone();
    for chunk in chunks {
        // Chunks have passed `check_counts` (`wire::chunk_changes`); what still fails to load
        // cannot be judged and is refused.
        if let Err(error) = after.load_incremental(chunk) {
            return Decision::Refused(Refusal::NotANotebook(error.to_string()));
        }
    }
    let missing = after.get_missing_deps(&[]);
    let waiting = if missing.is_empty() {
        Vec::new()
    } else {
        match waiting_changes(&after, chunks) {
            Ok(waiting) => waiting,
            Err(refusal) => return Decision::Refused(refusal),
        }
    };
    if !waiting.is_empty() {
        if waiting.len() > MAX_WAITING_CHANGES {
            return Decision::Refused(Refusal::TooManyWaiting {
                limit: MAX_WAITING_CHANGES,
            });
        }
        match read_header(committed) {
            Ok(header) if header.owner_id == rights.account_id => {}
            Ok(_) => return Decision::Refused(Refusal::NotYourNotebook),
            Err(_) => return Decision::Refused(Refusal::UnknownHistory),
        }
    }
    if after.get_heads() == committed.get_heads() {
        // Nothing new applies: a duplicate, or only changes that wait.
        return Decision::Allowed {
            applied: Vec::new(),
            waiting,
            missing,
            applied_to: None,
        };
    }
    match check(committed, &after, rights) {
        Ok(()) => Decision::Allowed {
            applied: after
                .get_changes_meta(&committed.get_heads())
                .iter()
                .map(|change| change.hash)
                .collect(),
            applied_to: waiting.is_empty().then(|| Box::new(after)),
            waiting,
            missing,
        },
        Err(refusal) => Decision::Refused(refusal),
    }
}

/// The changes in `chunks` that `after` holds unapplied, each once.
fn waiting_changes(after: &Automerge, chunks: &[Vec<u8>]) -> Result<Vec<Change>, Refusal> {
    let mut waiting: Vec<Change> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for chunk in chunks {
        for change in chunk_changes(chunk).map_err(Refusal::NotANotebook)? {
            let hash = change.hash();
            if after.get_change_by_hash(&hash).is_none() && seen.insert(hash) {
                waiting.push(change);
            }
        }
    }
    Ok(waiting)
}

fn check(before: &Automerge, after: &Automerge, rights: &WriterRights) -> Result<(), Refusal> {
    if crate::review::is_review_document(after) {
        return Err(Refusal::ReviewDocument);
    }
    if crate::species::is_species_list_document(after) {
        return Err(Refusal::SpeciesListDocument);
    }
    // The header only: the records are judged by what the changes write.
    let header = read_header(after).map_err(|problems| {
        Refusal::NotANotebook(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let established = read_header(before).ok();
    match &established {
        Some(established) => {
            if established.owner_id != rights.account_id {
                return Err(Refusal::NotYourNotebook);
            }
            if let Some(violation) = check_header_unchanged(established, &header).first() {
                return Err(Refusal::HeaderChanged {
                    field: violation.field,
                });
            }
        }
        None => {
            if header.owner_id != rights.account_id {
                return Err(Refusal::OwnerMismatch);
            }
        }
    }
    if !rights.notebook_territories.contains(&header.territory_id) {
        return Err(Refusal::TerritoryNotAllowed {
            territory: header.territory_id,
        });
    }
    let new_changes = after.get_changes(&before.get_heads());
    judge_written(established.as_ref(), after, &new_changes, rights)
}

/// Judges every value `changes` write (see [`crate::written`]), the ones
/// the merge hides included.
fn judge_written(
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
            check_length(key, value, limit)?;
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
        let limit = match rest {
            [] => max_chars_of(kind, field),
            ["[]"] => max_item_chars_of(kind, field),
            _ => EXTRA_FIELD_MAX_CHARS,
        };
        check_length(
            &format!("{}/{record}.{field}", collection.key()),
            value,
            limit,
        )
    }
}

fn check_length(location: &str, value: Value<'_>, limit: u64) -> Result<(), Refusal> {
    let got = match value {
        Value::Text(text) => text.chars().count(),
        Value::Bytes(length) | Value::Inserted(length) => length,
        _ => return Ok(()),
    };
    if got as u64 > limit {
        return Err(Refusal::TooLong {
            location: location.to_string(),
            limit,
            got,
        });
    }
    Ok(())
}

/// A list's length as the changes leave it: photos per record and the like.
fn judge_list_length(after: &Automerge, list: &TouchedObject) -> Result<(), Refusal> {
    let got = after.length(&list.obj);
    let (location, limit) = match list.path.as_slice() {
        [Segment::Key(collection), Segment::Key(record), Segment::Key(field)] => {
            let limit = Collection::ALL
                .iter()
                .find(|c| c.key() == collection)
                .and_then(|c| max_items_of(c.kind(), field))
                .map_or(EXTRA_LIST_MAX_ITEMS, |limit| limit as usize);
            (format!("{collection}/{record}.{field}"), limit)
        }
        path => (describe(path), EXTRA_LIST_MAX_ITEMS),
    };
    if got > limit {
        return Err(Refusal::TooManyItems {
            location,
            limit,
            got,
        });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        new_notebook, put_raw_record, put_record, read_notebook, set_field, NotebookHeader,
    };
    use schemas::{FieldRecord, RecordKind};
    use serde_json::{json, Value as Json};

    fn rights(account: Uuid, territory: Uuid) -> WriterRights {
        WriterRights {
            account_id: account,
            notebook_territories: vec![territory],
        }
    }

    fn sighting_json(author: Uuid) -> Json {
        let id = Uuid::new_v4();
        let now = chrono::Utc::now().to_rfc3339();
        json!({
            "id": id, "occurrenceID": format!("urn:uuid:{id}"), "scientificName": "Parus major",
            "eventDate": now, "decimalLatitude": 45.75, "decimalLongitude": 4.85,
            "recordedBy": "Camille", "authorId": author, "deviceId": "p1",
            "createdAt": now, "modifiedAt": now,
        })
    }

    /// The chunks a phone would send for everything after `since`.
    fn chunks_after(doc: &Automerge, since: &Automerge) -> Vec<Vec<u8>> {
        doc.get_changes(&since.get_heads())
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    }

    fn decide(
        committed: &Automerge,
        phone: &Automerge,
        rights: &WriterRights,
    ) -> Result<(), Refusal> {
        match authorize_notebook_changes(committed, &chunks_after(phone, committed), rights) {
            Decision::Allowed { waiting, .. } => {
                assert!(waiting.is_empty(), "unexpected waiting changes {waiting:?}");
                Ok(())
            }
            Decision::Refused(refusal) => Err(refusal),
        }
    }

    fn owned_notebook() -> (Automerge, NotebookHeader) {
        let header = NotebookHeader {
            territory_id: Uuid::new_v4(),
            owner_id: Uuid::new_v4(),
        };
        (new_notebook(header), header)
    }

    #[test]
    fn the_owner_creates_and_fills_a_notebook_in_their_territory() {
        let (doc, header) = owned_notebook();
        let mut phone = doc.clone();
        put_raw_record(
            &mut phone,
            RecordKind::Sighting,
            "k",
            &sighting_json(header.owner_id),
        )
        .unwrap();
        let rights = rights(header.owner_id, header.territory_id);
        assert_eq!(decide(&Automerge::new(), &phone, &rights), Ok(()));
    }

    #[test]
    fn a_new_notebook_in_someone_elses_name_is_refused() {
        let (doc, header) = owned_notebook();
        let intruder = rights(Uuid::new_v4(), header.territory_id);
        assert!(matches!(
            decide(&Automerge::new(), &doc, &intruder),
            Err(Refusal::OwnerMismatch)
        ));
    }

    #[test]
    fn editing_another_volunteers_notebook_is_refused() {
        let (committed, header) = owned_notebook();
        let mut phone = committed.clone();
        put_raw_record(
            &mut phone,
            RecordKind::Sighting,
            "k",
            &sighting_json(header.owner_id),
        )
        .unwrap();
        let other = rights(Uuid::new_v4(), header.territory_id);
        assert_eq!(
            decide(&committed, &phone, &other),
            Err(Refusal::NotYourNotebook)
        );
    }

    #[test]
    fn writing_into_another_territory_is_refused() {
        let (doc, header) = owned_notebook();
        let elsewhere = rights(header.owner_id, Uuid::new_v4());
        assert_eq!(
            decide(&Automerge::new(), &doc, &elsewhere),
            Err(Refusal::TerritoryNotAllowed {
                territory: header.territory_id
            })
        );
    }

    #[test]
    fn moving_a_notebook_to_another_territory_is_refused() {
        let (committed, header) = owned_notebook();
        let mut phone = committed.clone();
        phone
            .transact::<_, _, automerge::AutomergeError>(|tx| {
                use automerge::transaction::Transactable;
                tx.put(automerge::ROOT, "territoryId", Uuid::new_v4().to_string())
                    .map(|_| ())
            })
            .unwrap();
        let mut rights = rights(header.owner_id, header.territory_id);
        rights.notebook_territories.push(Uuid::new_v4());
        assert_eq!(
            decide(&committed, &phone, &rights),
            Err(Refusal::HeaderChanged {
                field: "territoryId"
            })
        );
    }

    #[test]
    fn setting_a_coordinator_decision_in_a_notebook_is_refused() {
        let (committed, header) = owned_notebook();
        let mut with_record = committed.clone();
        let record = schemas::Sighting::from_raw(&sighting_json(header.owner_id)).unwrap();
        put_record(&mut with_record, &record).unwrap();
        let rights = rights(header.owner_id, header.territory_id);
        assert_eq!(decide(&committed, &with_record, &rights), Ok(()));

        for field in ["identificationVerificationStatus", "approvalStatus"] {
            let mut phone = with_record.clone();
            set_field(
                &mut phone,
                RecordKind::Sighting,
                record.id(),
                field,
                &json!("verified"),
            )
            .unwrap();
            assert!(
                matches!(
                    decide(&with_record, &phone, &rights),
                    Err(Refusal::CoordinatorField { .. })
                ),
                "{field}"
            );
        }
    }

    /// A new notebook; the same with one sighting (whose key is `SIGHTING`);
    /// that sighting's change alone; the header.
    fn notebook_and_last_change() -> (Automerge, Automerge, Vec<u8>, NotebookHeader) {
        let (created, header) = owned_notebook();
        let mut phone = created.clone();
        put_raw_record(
            &mut phone,
            RecordKind::Sighting,
            &SIGHTING.to_string(),
            &sighting_json(header.owner_id),
        )
        .unwrap();
        let last = phone.get_last_local_change().unwrap().raw_bytes().to_vec();
        (created, phone, last, header)
    }

    const SIGHTING: Uuid = Uuid::from_u128(0x5167);

    /// `doc` with one more sighting, in one change.
    fn with_second_sighting(doc: &Automerge, owner: Uuid) -> Automerge {
        let mut phone = doc.clone();
        put_raw_record(
            &mut phone,
            RecordKind::Sighting,
            "k2",
            &sighting_json(owner),
        )
        .unwrap();
        phone
    }

    #[test]
    fn the_owners_change_that_arrives_before_its_dependency_waits() {
        let (created, with_sighting, _, header) = notebook_and_last_change();
        let phone = with_second_sighting(&with_sighting, header.owner_id);
        let last = phone.get_last_local_change().unwrap().clone();
        let rights = rights(header.owner_id, header.territory_id);
        match authorize_notebook_changes(&created, &[last.raw_bytes().to_vec()], &rights) {
            Decision::Allowed {
                waiting, missing, ..
            } => {
                assert_eq!(
                    waiting.iter().map(Change::hash).collect::<Vec<_>>(),
                    vec![last.hash()]
                );
                assert_eq!(missing, with_sighting.get_heads());
            }
            other => panic!("expected waiting changes, got {other:?}"),
        }
    }

    #[test]
    fn changes_without_a_known_beginning_are_refused() {
        let (_, _, last, header) = notebook_and_last_change();
        let rights = rights(header.owner_id, header.territory_id);
        assert!(matches!(
            authorize_notebook_changes(&Automerge::new(), &[last], &rights),
            Decision::Refused(Refusal::UnknownHistory)
        ));
    }

    #[test]
    fn only_the_owner_may_leave_changes_waiting() {
        let (created, phone, _, header) = notebook_and_last_change();
        let later = with_second_sighting(&phone, header.owner_id);
        let last = later.get_last_local_change().unwrap().raw_bytes().to_vec();
        let stranger = rights(Uuid::new_v4(), header.territory_id);
        assert_eq!(
            match authorize_notebook_changes(&created, &[last], &stranger) {
                Decision::Refused(refusal) => Some(refusal),
                _ => None,
            },
            Some(Refusal::NotYourNotebook)
        );
    }

    #[test]
    fn a_waiting_change_is_judged_once_its_dependency_arrives() {
        let (created, with_sighting, sighting_change, header) = notebook_and_last_change();
        let mut forbidden = with_sighting.clone();
        set_field(
            &mut forbidden,
            RecordKind::Sighting,
            SIGHTING,
            "identificationVerificationStatus",
            &json!("verified"),
        )
        .unwrap();
        let forbidden_change = forbidden
            .get_last_local_change()
            .unwrap()
            .raw_bytes()
            .to_vec();
        let rights = rights(header.owner_id, header.territory_id);
        assert!(matches!(
            authorize_notebook_changes(&created, std::slice::from_ref(&forbidden_change), &rights),
            Decision::Allowed { ref waiting, .. } if waiting.len() == 1
        ));
        // The dependency alone would be fine; with the change that waited for it, it is not.
        assert!(matches!(
            authorize_notebook_changes(&created, std::slice::from_ref(&sighting_change), &rights),
            Decision::Allowed { ref waiting, .. } if waiting.is_empty()
        ));
        assert!(matches!(
            authorize_notebook_changes(&created, &[forbidden_change, sighting_change], &rights),
            Decision::Refused(Refusal::CoordinatorField { .. })
        ));
    }

    /// A notebook holding one (incomplete) sighting, its owner, and the owner's rights.
    fn notebook_with_sighting() -> (Automerge, Uuid, WriterRights) {
        let (created, header) = owned_notebook();
        let mut doc = created.clone();
        put_raw_record(
            &mut doc,
            RecordKind::Sighting,
            &SIGHTING.to_string(),
            &json!({"id": SIGHTING}),
        )
        .unwrap();
        (
            doc,
            header.owner_id,
            rights(header.owner_id, header.territory_id),
        )
    }

    fn record_obj(doc: &Automerge, collection: &str, key: &str) -> automerge::ObjId {
        let (_, coll) = doc.get(automerge::ROOT, collection).unwrap().unwrap();
        doc.get(&coll, key).unwrap().unwrap().1
    }

    #[test]
    fn a_record_in_another_volunteers_name_is_refused() {
        let (committed, owner, rights) = notebook_with_sighting();
        let mut phone = committed.clone();
        put_raw_record(
            &mut phone,
            RecordKind::Sighting,
            "k2",
            &sighting_json(Uuid::new_v4()),
        )
        .unwrap();
        let refusal = decide(&committed, &phone, &rights).unwrap_err();
        assert!(
            matches!(
                refusal,
                Refusal::NotTheOwner {
                    field: "authorId",
                    ..
                }
            ),
            "{refusal:?}"
        );
        assert!(!refusal.to_string().contains(&owner.to_string()));

        let mut hours = committed.clone();
        let entry = json!({"id": Uuid::new_v4(), "authorId": owner, "volunteerId": Uuid::new_v4()});
        put_raw_record(&mut hours, RecordKind::TimesheetEntry, "t", &entry).unwrap();
        assert!(matches!(
            decide(&committed, &hours, &rights),
            Err(Refusal::NotTheOwner {
                field: "volunteerId",
                ..
            })
        ));
    }

    #[test]
    fn an_author_written_as_collaborative_text_is_judged_by_its_content() {
        use automerge::transaction::Transactable;
        let (committed, owner, rights) = notebook_with_sighting();
        let write_author = |author: Uuid| {
            let mut phone = committed.clone();
            let record = record_obj(&phone, "sightings", &SIGHTING.to_string());
            phone
                .transact::<_, _, automerge::AutomergeError>(|tx| {
                    let text = tx.put_object(&record, "authorId", automerge::ObjType::Text)?;
                    tx.splice_text(&text, 0, 0, &author.to_string())
                })
                .unwrap();
            phone
        };
        assert_eq!(decide(&committed, &write_author(owner), &rights), Ok(()));
        assert!(matches!(
            decide(&committed, &write_author(Uuid::new_v4()), &rights),
            Err(Refusal::NotTheOwner { .. })
        ));
    }

    /// Two concurrent branches set `field`; the one with the greater actor wins.
    fn concurrent_values(
        committed: &Automerge,
        field: &str,
        loser: Json,
        winner: Json,
    ) -> Automerge {
        let branch = |actor: u8, value: &Json| {
            let mut phone = committed
                .fork()
                .with_actor(automerge::ActorId::from([actor; 16]));
            set_field(&mut phone, RecordKind::Sighting, SIGHTING, field, value).unwrap();
            phone
        };
        let mut merged = branch(0x01, &loser);
        merged.merge(&mut branch(0xfe, &winner)).unwrap();
        assert_eq!(
            crate::read::value_to_json(
                &merged,
                &merged
                    .get(
                        record_obj(&merged, "sightings", &SIGHTING.to_string()),
                        field
                    )
                    .unwrap()
                    .unwrap()
                    .0,
                &automerge::ROOT
            ),
            winner,
            "the test's winner must win the merge"
        );
        merged
    }

    #[test]
    fn a_forbidden_value_in_a_branch_that_loses_the_merge_is_refused() {
        let (committed, owner, rights) = notebook_with_sighting();
        let merged = concurrent_values(
            &committed,
            "authorId",
            json!(Uuid::new_v4().to_string()),
            json!(owner.to_string()),
        );
        assert!(matches!(
            decide(&committed, &merged, &rights),
            Err(Refusal::NotTheOwner { .. })
        ));
        let merged = concurrent_values(&committed, "notes", json!("x".repeat(20_000)), json!("ok"));
        assert!(matches!(
            decide(&committed, &merged, &rights),
            Err(Refusal::TooLong { .. })
        ));
    }

    #[test]
    fn a_coordinator_value_hidden_by_a_later_deletion_is_refused() {
        use automerge::transaction::Transactable;
        let (committed, _, rights) = notebook_with_sighting();
        let mut phone = committed.clone();
        set_field(
            &mut phone,
            RecordKind::Sighting,
            SIGHTING,
            "approvalStatus",
            &json!("approved"),
        )
        .unwrap();
        let record = record_obj(&phone, "sightings", &SIGHTING.to_string());
        phone
            .transact::<_, _, automerge::AutomergeError>(|tx| tx.delete(&record, "approvalStatus"))
            .unwrap();
        assert!(read_notebook(&phone).records[0]
            .raw
            .get("approvalStatus")
            .is_none());
        assert!(matches!(
            decide(&committed, &phone, &rights),
            Err(Refusal::CoordinatorField { .. })
        ));
    }

    #[test]
    fn oversize_values_are_refused_naming_the_field_and_the_limit() {
        let (committed, _, rights) = notebook_with_sighting();
        let mut phone = committed.clone();
        let notes = "é".repeat(schemas::limits::TEXT_MAX_CHARS as usize + 1);
        set_field(
            &mut phone,
            RecordKind::Sighting,
            SIGHTING,
            "notes",
            &json!(notes),
        )
        .unwrap();
        let refusal = decide(&committed, &phone, &rights).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            format!("`sightings/{SIGHTING}.notes` is 10001 characters long; the limit is 10000")
        );

        let mut phone = committed.clone();
        let photos: Vec<String> = (0..21).map(|i| format!("{i:064x}")).collect();
        set_field(
            &mut phone,
            RecordKind::Sighting,
            SIGHTING,
            "photos",
            &json!(photos),
        )
        .unwrap();
        let refusal = decide(&committed, &phone, &rights).unwrap_err();
        assert!(
            matches!(
                refusal,
                Refusal::TooManyItems {
                    limit: 20,
                    got: 21,
                    ..
                }
            ),
            "{refusal:?}"
        );

        let mut phone = committed.clone();
        set_field(
            &mut phone,
            RecordKind::Sighting,
            SIGHTING,
            "site",
            &json!("s".repeat(201)),
        )
        .unwrap();
        assert!(matches!(
            decide(&committed, &phone, &rights),
            Err(Refusal::TooLong { limit: 200, .. })
        ));
    }

    #[test]
    fn a_record_with_too_many_fields_is_refused() {
        let (committed, _, rights) = notebook_with_sighting();
        let mut phone = committed.clone();
        let mut fields = serde_json::Map::new();
        for i in 0..=schemas::limits::MAX_FIELDS_PER_RECORD {
            fields.insert(format!("extra{i}"), json!(i));
        }
        put_raw_record(&mut phone, RecordKind::Sighting, "k", &Json::Object(fields)).unwrap();
        assert!(matches!(
            decide(&committed, &phone, &rights),
            Err(Refusal::TooManyFields { limit: 64, .. })
        ));
    }

    #[test]
    fn keys_that_are_not_part_of_a_notebook_are_refused() {
        use automerge::transaction::Transactable;
        let (committed, _, rights) = notebook_with_sighting();
        let mut phone = committed.clone();
        phone
            .transact::<_, _, automerge::AutomergeError>(|tx| {
                tx.put(automerge::ROOT, "payload", "x".repeat(1000))
            })
            .unwrap();
        assert_eq!(
            decide(&committed, &phone, &rights),
            Err(Refusal::NotPartOfANotebook {
                key: "payload".to_string()
            })
        );
    }

    /// `committed` with one more change, made by `edit` in a transaction on
    /// the sighting's record map.
    fn edited(
        committed: &Automerge,
        edit: impl FnOnce(
            &mut automerge::transaction::Transaction<'_>,
            &automerge::ObjId,
        ) -> Result<(), automerge::AutomergeError>,
    ) -> Automerge {
        let mut phone = committed.clone();
        let record = record_obj(&phone, "sightings", &SIGHTING.to_string());
        phone
            .transact::<_, _, automerge::AutomergeError>(|tx| edit(tx, &record))
            .unwrap();
        phone
    }

    #[test]
    fn a_change_on_an_object_the_document_does_not_have_is_refused_not_a_panic() {
        let (committed, _, rights) = notebook_with_sighting();
        let phone = edited(&committed, |tx, record| {
            use automerge::transaction::Transactable;
            tx.put(record, "notes", "x").map(|_| ())
        });
        let mut expanded = phone.get_last_local_change().unwrap().decode();
        let actor = expanded.actor_id.clone();
        for op in &mut expanded.operations {
            op.obj = automerge::legacy::ObjectId::Id(automerge::legacy::OpId::new(9_999, &actor));
        }
        let forged = automerge::Change::from(expanded);
        assert!(matches!(
            authorize_notebook_changes(&committed, &[forged.raw_bytes().to_vec()], &rights),
            Decision::Refused(_)
        ));
    }

    #[test]
    fn texts_hold_characters_only_and_what_is_inserted_is_bounded() {
        use automerge::transaction::Transactable;
        let (committed, _, rights) = notebook_with_sighting();
        let with_bytes = edited(&committed, |tx, record| {
            let text = tx.put_object(record, "notes", automerge::ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "ok")?;
            tx.insert(&text, 1, ScalarValue::Bytes(vec![0; 50_000]))
        });
        assert!(matches!(
            decide(&committed, &with_bytes, &rights),
            Err(Refusal::Unsupported {
                what: "values other than characters",
                ..
            })
        ));
        let inserted_then_deleted = edited(&committed, |tx, record| {
            let text = tx.put_object(record, "notes", automerge::ObjType::Text)?;
            tx.splice_text(&text, 0, 0, &"x".repeat(20_000))?;
            tx.splice_text(&text, 0, 20_000, "short")
        });
        assert!(matches!(
            decide(&committed, &inserted_then_deleted, &rights),
            Err(Refusal::TooLong { got: 20_005, .. })
        ));
        let marked = edited(&committed, |tx, record| {
            let text = tx.put_object(record, "notes", automerge::ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "bold")?;
            tx.mark(
                &text,
                automerge::marks::Mark::new("bold".into(), true, 0, 4),
                automerge::marks::ExpandMark::None,
            )
        });
        assert!(matches!(
            decide(&committed, &marked, &rights),
            Err(Refusal::Unsupported { what: "marks", .. })
        ));
    }

    #[test]
    fn a_nul_character_is_refused_in_a_field_name_a_value_and_a_text_naming_it() {
        use automerge::transaction::Transactable;
        let (committed, _, rights) = notebook_with_sighting();
        let in_name = edited(&committed, |tx, record| {
            tx.put(record, "notes\u{0}evil", "x").map(|_| ())
        });
        let refusal = decide(&committed, &in_name, &rights).unwrap_err();
        assert!(
            matches!(&refusal, Refusal::ForbiddenCharacter { location, character }
                if location.ends_with("notes{U+0000}evil") && character == "U+0000"),
            "{refusal:?}"
        );
        assert!(
            !refusal.to_string().contains('\0'),
            "the message holds no NUL"
        );
        let in_value = edited(&committed, |tx, record| {
            tx.put(record, "notes", "before\u{0}after").map(|_| ())
        });
        assert!(matches!(
            decide(&committed, &in_value, &rights),
            Err(Refusal::ForbiddenCharacter { .. })
        ));
        // Inserted then deleted: still in the document's history.
        let in_text = edited(&committed, |tx, record| {
            let text = tx.put_object(record, "notes", automerge::ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "a\u{1b}b")?;
            tx.splice_text(&text, 1, 1, "")
        });
        assert!(matches!(
            decide(&committed, &in_text, &rights),
            Err(Refusal::ForbiddenCharacter { ref character, .. }) if character == "U+001B"
        ));
        let with_line_breaks = edited(&committed, |tx, record| {
            tx.put(record, "notes", "one\ntwo\tthree").map(|_| ())
        });
        assert_eq!(decide(&committed, &with_line_breaks, &rights), Ok(()));
    }

    #[test]
    fn an_owner_text_cannot_pass_through_another_id() {
        use automerge::transaction::Transactable;
        let (committed, owner, rights) = notebook_with_sighting();
        let detour = edited(&committed, |tx, record| {
            let text = tx.put_object(record, "authorId", automerge::ObjType::Text)?;
            tx.splice_text(&text, 0, 0, &Uuid::new_v4().to_string())?;
            tx.splice_text(&text, 0, 36, &owner.to_string())
        });
        assert!(matches!(
            decide(&committed, &detour, &rights),
            Err(Refusal::TooLong {
                limit: 36,
                got: 72,
                ..
            })
        ));
    }

    #[test]
    fn large_values_of_unknown_type_are_bounded_too() {
        use automerge::transaction::Transactable;
        let (committed, _, rights) = notebook_with_sighting();
        let phone = edited(&committed, |tx, record| {
            tx.put(
                record,
                "notes",
                ScalarValue::Unknown {
                    type_code: 14,
                    bytes: vec![1; 20_000],
                },
            )
        });
        assert!(matches!(
            decide(&committed, &phone, &rights),
            Err(Refusal::TooLong { got: 20_000, .. })
        ));
    }

    #[test]
    fn a_record_must_be_a_map_of_fields() {
        let (committed, _, rights) = notebook_with_sighting();
        let mut phone = committed.clone();
        put_raw_record(&mut phone, RecordKind::Sighting, "k", &json!({"id": "k"})).unwrap();
        let collection = phone.get(automerge::ROOT, "sightings").unwrap().unwrap().1;
        phone
            .transact::<_, _, automerge::AutomergeError>(|tx| {
                use automerge::transaction::Transactable;
                let list = tx.put_object(&collection, "k", automerge::ObjType::List)?;
                let item = tx.insert_object(&list, 0, automerge::ObjType::Map)?;
                tx.put(&item, "authorId", Uuid::new_v4().to_string())?;
                tx.put(&item, "approvalStatus", "approved").map(|_| ())
            })
            .unwrap();
        assert!(matches!(
            decide(&committed, &phone, &rights),
            Err(Refusal::NotAMap { .. })
        ));
    }

    /// The review document's changes, as a phone would send them.
    fn review_changes(doc: &mut Automerge, header: NotebookHeader, status: &str) -> Vec<u8> {
        let before = doc.get_heads();
        let entry = crate::review::DecisionEntry {
            record_id: Uuid::new_v4(),
            record_kind: "timesheet_entry".into(),
            decision: "approval".into(),
            status: status.into(),
            reason: None,
            decided_by: "Me".into(),
            decided_at: "2026-12-02T10:00:00.000Z".into(),
        };
        crate::review::put_decisions(doc, header, &[entry]).unwrap();
        doc.save_after(&before)
    }

    #[test]
    fn nobody_writes_a_review_document_over_sync_not_even_its_volunteer() {
        let header = NotebookHeader {
            territory_id: Uuid::new_v4(),
            owner_id: Uuid::new_v4(),
        };
        let owner = rights(header.owner_id, header.territory_id);
        // Creating one: a volunteer making up their own approvals.
        let mut forged = Automerge::new();
        let created = review_changes(&mut forged, header, "approved");
        assert!(matches!(
            authorize_notebook_changes(&Automerge::new(), &[created], &owner),
            Decision::Refused(Refusal::ReviewDocument)
        ));
        // Changing the one the server keeps.
        let mut committed = Automerge::new();
        review_changes(&mut committed, header, "returned");
        let mut phone = committed.fork();
        let change = review_changes(&mut phone, header, "approved");
        assert!(matches!(
            authorize_notebook_changes(&committed, &[change], &owner),
            Decision::Refused(Refusal::ReviewDocument)
        ));
    }

    #[test]
    fn nobody_writes_a_species_list_over_sync() {
        let territory = Uuid::new_v4();
        let volunteer = rights(Uuid::new_v4(), territory);
        let taxon = |name: &str| crate::species::Species {
            scientific_name: name.into(),
            vernacular_name: None,
            taxon_id: None,
            rank: None,
        };
        // Creating one under a fresh id.
        let mut forged = Automerge::new();
        crate::species::put_species_list(&mut forged, territory, &[taxon("Bufo bufo")]).unwrap();
        assert!(matches!(
            authorize_notebook_changes(&Automerge::new(), &[forged.save_after(&[])], &volunteer),
            Decision::Refused(Refusal::SpeciesListDocument)
        ));
        // Adding a taxon to the one the server keeps.
        let mut committed = Automerge::new();
        crate::species::put_species_list(&mut committed, territory, &[taxon("Bufo bufo")]).unwrap();
        let mut phone = committed.fork();
        let before = phone.get_heads();
        crate::species::put_species_list(
            &mut phone,
            territory,
            &[taxon("Bufo bufo"), taxon("Canis lupus")],
        )
        .unwrap();
        assert!(matches!(
            authorize_notebook_changes(&committed, &[phone.save_after(&before)], &volunteer),
            Decision::Refused(Refusal::SpeciesListDocument)
        ));
    }
}
