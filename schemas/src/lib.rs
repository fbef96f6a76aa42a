//! Record types of the field survey service — sightings, degradation reports and
//! volunteer timesheets — with their validation and JSON Schema.
//!
//! Phones store records as plain JSON while offline; [`FieldRecord::from_raw`] turns such
//! a JSON object into a typed record or lists every problem in it, each naming its field,
//! so a volunteer can fix all of them in one go instead of one per sync attempt.
//! Coordinator decisions (reviews, approvals, degradation follow-up) live in separate
//! types because volunteers never write them.

mod checks;
mod degradation;
pub mod limits;
mod raw;
mod sighting;
pub mod text;
mod timesheet;

pub use degradation::{
    check_status_history, DegradationCategory, DegradationReport, DegradationStatus, StatusChange,
};
pub use sighting::{BasisOfRecord, OccurrenceStatus, Sighting, SightingReview, VerificationStatus};
pub use timesheet::{ActivityType, ApprovalDecision, TimesheetApproval, TimesheetEntry};

use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;

/// Which kind of record a document holds; also its name in storage, sync and file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Sighting,
    DegradationReport,
    TimesheetEntry,
}

impl RecordKind {
    /// Every kind, so callers (migrations, routers, schema export) cannot forget one.
    pub const ALL: [RecordKind; 3] = [
        RecordKind::Sighting,
        RecordKind::DegradationReport,
        RecordKind::TimesheetEntry,
    ];

    /// The snake_case name, identical to the serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordKind::Sighting => "sighting",
            RecordKind::DegradationReport => "degradation_report",
            RecordKind::TimesheetEntry => "timesheet_entry",
        }
    }
}

/// Record fields the phone (or the server) fills in by itself, never a
/// person: the ids, who and which device wrote the record, when it was created
/// and last modified, and the `occurrenceID` derived from its id. Two phones
/// editing a record both set `modifiedAt`, but that is bookkeeping, not a
/// disagreement a coordinator could settle: concurrent values of these fields
/// are not conflicts.
pub const BOOKKEEPING_FIELDS: [&str; 7] = [
    "id",
    "authorId",
    "volunteerId",
    "deviceId",
    "createdAt",
    "modifiedAt",
    "occurrenceID",
];

/// One thing wrong with a record, phrased for the volunteer who has to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    /// The JSON (camelCase) field name, e.g. `decimalLatitude`; nested as
    /// `statusHistory[2].reason`. Empty when the record as a whole is wrong (not an object).
    pub field: String,
    /// Human-readable, e.g. "must be between -90 and 90 (got 123)".
    pub reason: String,
}

impl FieldProblem {
    /// Shorthand used by every check, so problems read as `new("field", "reason")`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

/// A record type volunteers write on their phones.
pub trait FieldRecord:
    Sized + Serialize + DeserializeOwned + JsonSchema + Clone + std::fmt::Debug
{
    const KIND: RecordKind;

    fn id(&self) -> Uuid;

    /// Parse what a phone stored (a JSON object) into a valid record, or return EVERY
    /// problem found (not just the first), each naming its field.
    ///
    /// Structural problems (missing fields, wrong types, unknown enum values, ranges,
    /// lengths, formats) are all found by validating against [`json_schema_of`]; the
    /// cross-field checks of [`FieldRecord::problems`] need a typed record, so they run
    /// once the structure is sound. Unknown extra fields are ignored: JS clients may add
    /// their own.
    fn from_raw(raw: &serde_json::Value) -> Result<Self, Vec<FieldProblem>> {
        raw::parse(raw)
    }

    /// Semantic checks beyond types (ranges, cross-field rules); used by from_raw after
    /// structural checks pass.
    fn problems(&self) -> Vec<FieldProblem>;
}

/// The JSON Schema (draft 2020-12) of a record type, as shipped in `schemas/json/` for
/// phone and web clients; it describes the JSON a phone may write (serde's deserialize
/// view: fields with defaults are not required).
pub fn json_schema_of<R: FieldRecord>() -> serde_json::Value {
    schemars::schema_for!(R).to_value()
}

#[cfg(test)]
mod tests {
    use super::RecordKind;

    #[test]
    fn record_kind_names_are_their_serde_form() {
        for kind in RecordKind::ALL {
            let written = serde_json::to_value(kind).unwrap();
            assert_eq!(written, kind.as_str());
            assert_eq!(serde_json::from_value::<RecordKind>(written).unwrap(), kind);
        }
        let names: Vec<&str> = RecordKind::ALL.iter().map(RecordKind::as_str).collect();
        assert_eq!(names, ["sighting", "degradation_report", "timesheet_entry"]);
    }
}
