//! The field notebook: one automerge document per volunteer and territory.
//!
//! ```text
//! {
//!   "type": "fieldnotes.notebook", "schemaVersion": 1,
//!   "territoryId": "<uuid>", "ownerId": "<uuid>",
//!   "sightings":          { "<record uuid>": { ...Sighting fields... } },
//!   "degradationReports": { "<record uuid>": { ...DegradationReport fields... } },
//!   "timesheetEntries":   { "<record uuid>": { ...TimesheetEntry fields... } }
//! }
//! ```
//! Records are maps keyed by their UUID (not lists) so that two phones adding
//! records offline never collide, and each field is its own automerge register:
//! two phones editing different fields of one record merge without conflict;
//! editing the same field keeps both values (see [`super::read`]).

use automerge::{ObjId, ObjType, ReadDoc, Value, ROOT};
use schemas::{
    DegradationReport, FieldProblem, FieldRecord, RecordKind, Sighting, TimesheetEntry,
    BOOKKEEPING_FIELDS,
};
use serde_json::Value as Json;
use uuid::Uuid;

use super::read::{read_map_with_conflicts, value_to_json, FieldConflict};

/// Value of the root `type` field that marks a document as a field notebook.
pub const NOTEBOOK_TYPE: &str = "fieldnotes.notebook";
/// Version of the notebook layout described above.
pub const SCHEMA_VERSION: i64 = 1;

/// The three record collections of a notebook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    Sightings,
    DegradationReports,
    TimesheetEntries,
}

/// Collections sort by their key in the document (as automerge lists them).
impl Ord for Collection {
    fn cmp(&self, other: &Collection) -> std::cmp::Ordering {
        self.key().cmp(other.key())
    }
}

impl PartialOrd for Collection {
    fn partial_cmp(&self, other: &Collection) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Collection {
    pub const ALL: [Collection; 3] = [
        Collection::Sightings,
        Collection::DegradationReports,
        Collection::TimesheetEntries,
    ];

    /// The root key of this collection in the document.
    pub fn key(self) -> &'static str {
        match self {
            Collection::Sightings => "sightings",
            Collection::DegradationReports => "degradationReports",
            Collection::TimesheetEntries => "timesheetEntries",
        }
    }

    pub fn kind(self) -> RecordKind {
        match self {
            Collection::Sightings => RecordKind::Sighting,
            Collection::DegradationReports => RecordKind::DegradationReport,
            Collection::TimesheetEntries => RecordKind::TimesheetEntry,
        }
    }

    pub fn of_kind(kind: RecordKind) -> Collection {
        match kind {
            RecordKind::Sighting => Collection::Sightings,
            RecordKind::DegradationReport => Collection::DegradationReports,
            RecordKind::TimesheetEntry => Collection::TimesheetEntries,
        }
    }
}

/// Who a notebook belongs to and where; fixed when the notebook is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotebookHeader {
    pub territory_id: Uuid,
    pub owner_id: Uuid,
}

/// A record that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadRecord {
    Sighting(Sighting),
    DegradationReport(DegradationReport),
    TimesheetEntry(TimesheetEntry),
}

/// One record as the document holds it: what the volunteer typed, the fields
/// with concurrent values, and the typed record or every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordState {
    pub kind: RecordKind,
    /// The record's key in its collection (its UUID when the client is well behaved).
    pub key: String,
    /// The record as typed, each field at its winning value.
    pub raw: Json,
    /// The fields with concurrent values, bookkeeping ones
    /// ([`BOOKKEEPING_FIELDS`]) aside.
    pub conflicts: Vec<FieldConflict>,
    pub parsed: Result<ReadRecord, Vec<FieldProblem>>,
}

/// A notebook read whole.
#[derive(Debug, Clone, PartialEq)]
pub struct NotebookRead {
    /// The header, or why this document is not a usable notebook.
    pub header: Result<NotebookHeader, Vec<FieldProblem>>,
    pub records: Vec<RecordState>,
}

/// Reads a notebook document into records. Never fails: a document that is not
/// a notebook yields header problems and whatever records can be found, so
/// nothing a phone sent is ignored silently.
pub fn read_notebook<D: ReadDoc>(doc: &D) -> NotebookRead {
    let header = read_header(doc);
    let mut records = Vec::new();
    for collection in Collection::ALL {
        let Ok(Some((Value::Object(ObjType::Map), coll_obj))) = doc.get(ROOT, collection.key())
        else {
            continue;
        };
        // One pass over the collection; see `read::read_map_with_conflicts`.
        for item in doc.map_range(&coll_obj, ..) {
            let (key, id, conflict) = (item.key.to_string(), item.id(), item.conflict);
            let winner = (item.value.into_value(), id);
            records.push(read_record(
                doc, collection, &coll_obj, key, winner, conflict,
            ));
        }
    }
    NotebookRead { header, records }
}

/// One record: `winner` is the value automerge resolves its key to;
/// `conflict` tells whether phones created it concurrently.
fn read_record<D: ReadDoc>(
    doc: &D,
    collection: Collection,
    coll_obj: &ObjId,
    key: String,
    winner: (Value<'static>, ObjId),
    conflict: bool,
) -> RecordState {
    let kind = collection.kind();
    let (Value::Object(ObjType::Map), record_obj) = winner else {
        let raw = value_to_json(doc, &winner.0, &winner.1);
        return RecordState {
            kind,
            key,
            raw,
            conflicts: Vec::new(),
            parsed: Err(vec![problem("", "a record must be a map of fields")]),
        };
    };
    let (fields, mut conflicts) = read_map_with_conflicts(doc, &record_obj);
    conflicts.retain(|conflict| !BOOKKEEPING_FIELDS.contains(&conflict.field.as_str()));
    let raw = Json::Object(fields);
    let all = if conflict {
        doc.get_all(coll_obj, key.as_str()).unwrap_or_default()
    } else {
        Vec::new()
    };
    if all.len() > 1 {
        // Two phones created a record under the same key: keep every version.
        conflicts.insert(
            0,
            FieldConflict {
                field: "*".to_string(),
                winner: raw.clone(),
                values: all
                    .iter()
                    .map(|(v, id)| value_to_json(doc, v, id))
                    .collect(),
            },
        );
    }
    let parsed = parse_record(kind, &key, &raw);
    RecordState {
        kind,
        key,
        raw,
        conflicts,
        parsed,
    }
}

fn parse_record(kind: RecordKind, key: &str, raw: &Json) -> Result<ReadRecord, Vec<FieldProblem>> {
    match kind {
        RecordKind::Sighting => parse_keyed::<Sighting>(key, raw).map(ReadRecord::Sighting),
        RecordKind::DegradationReport => {
            parse_keyed::<DegradationReport>(key, raw).map(ReadRecord::DegradationReport)
        }
        RecordKind::TimesheetEntry => {
            parse_keyed::<TimesheetEntry>(key, raw).map(ReadRecord::TimesheetEntry)
        }
    }
}

/// Parses a record and checks that it sits under its own id, so one record
/// cannot overwrite another's inventory row by copying its id.
fn parse_keyed<R: FieldRecord>(key: &str, raw: &Json) -> Result<R, Vec<FieldProblem>> {
    let record = R::from_raw(raw)?;
    if record.id().to_string() != key.to_ascii_lowercase() {
        return Err(vec![problem(
            "id",
            &format!("must equal the record's key in the notebook ({key})"),
        )]);
    }
    Ok(record)
}

/// The notebook's header alone (cheap: the records are not read).
pub fn read_header<D: ReadDoc>(doc: &D) -> Result<NotebookHeader, Vec<FieldProblem>> {
    let field = |name: &str| {
        doc.get(ROOT, name)
            .ok()
            .flatten()
            .map(|(v, id)| value_to_json(doc, &v, &id))
    };
    let mut problems = Vec::new();
    match field("type") {
        Some(Json::String(t)) if t == NOTEBOOK_TYPE => {}
        other => problems.push(problem(
            "type",
            &format!("must be \"{NOTEBOOK_TYPE}\" (got {})", show(&other)),
        )),
    }
    match field("schemaVersion") {
        Some(v) if v.as_i64() == Some(SCHEMA_VERSION) => {}
        other => problems.push(problem(
            "schemaVersion",
            &format!("must be {SCHEMA_VERSION} (got {})", show(&other)),
        )),
    }
    let mut uuid_field = |name: &str| match field(name) {
        Some(Json::String(s)) => match Uuid::parse_str(&s) {
            Ok(id) => Some(id),
            Err(_) => {
                problems.push(problem(name, &format!("must be a UUID (got {s:?})")));
                None
            }
        },
        other => {
            problems.push(problem(
                name,
                &format!("must be a UUID (got {})", show(&other)),
            ));
            None
        }
    };
    let territory_id = uuid_field("territoryId");
    let owner_id = uuid_field("ownerId");
    match (territory_id, owner_id, problems.is_empty()) {
        (Some(territory_id), Some(owner_id), true) => Ok(NotebookHeader {
            territory_id,
            owner_id,
        }),
        _ => Err(problems),
    }
}

fn show(value: &Option<Json>) -> String {
    value
        .as_ref()
        .map(Json::to_string)
        .unwrap_or_else(|| "nothing".to_string())
}

pub(crate) fn problem(field: &str, reason: &str) -> FieldProblem {
    FieldProblem {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}
