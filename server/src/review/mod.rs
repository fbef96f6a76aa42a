//! Coordinators' review of a territory's inventory, without HTTP: the
//! routes in `http::review` parse requests and call these.
//!
//! - [`filter`]: the review table's filters and keyset pages;
//! - [`counts`]: the counts of a dashboard, kept by triggers;
//! - [`decisions`]: verification, degradation follow-up and timesheet
//!   approval, one record or a selection at once (all or nothing), each with
//!   its row of history;
//! - [`conflicts`]: fields concurrent offline edits left with several values,
//!   who wrote each, and the coordinator's resolution written back into the
//!   record's notebook through the sync core;
//! - [`duplicates`]: sightings of one taxon close in space and time, merged or
//!   dismissed;
//! - [`publish`]: carrying decisions to the volunteers' review documents
//!   (`sync::documents::review`), from the outbox their transaction wrote.
//!
//! Every step is appended to `review_history` (`crate::history`).
//!
//! Decisions live in PostgreSQL (`review_decisions`, migration 0006) and are
//! taken in SQL transactions; the review documents are their copy for the
//! phones. A conflict resolution is the exception: it is a change to the
//! volunteer's own record, so it travels as an automerge change like any
//! other, and its history row is stored in the same transaction.

pub mod conflicts;
pub mod counts;
pub mod decisions;
pub mod duplicates;
pub mod filter;
pub mod publish;

mod error;
pub use error::ReviewError;

use serde::{Deserialize, Serialize};

/// The three kinds of record a coordinator reviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Sighting,
    DegradationReport,
    TimesheetEntry,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Sighting => "sighting",
            RecordKind::DegradationReport => "degradation_report",
            RecordKind::TimesheetEntry => "timesheet_entry",
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<RecordKind, ReviewError> {
        match text {
            "sighting" => Ok(RecordKind::Sighting),
            "degradation_report" => Ok(RecordKind::DegradationReport),
            "timesheet_entry" => Ok(RecordKind::TimesheetEntry),
            other => Err(ReviewError::bad_request(
                field,
                format!("must be sighting, degradation_report or timesheet_entry (got {other:?})"),
            )),
        }
    }

    pub(crate) fn table(self) -> &'static str {
        match self {
            RecordKind::Sighting => "sightings",
            RecordKind::DegradationReport => "degradation_reports",
            RecordKind::TimesheetEntry => "timesheet_entries",
        }
    }

    /// The column naming whose record it is.
    pub(crate) fn volunteer_column(self) -> &'static str {
        match self {
            RecordKind::TimesheetEntry => "volunteer_id",
            RecordKind::Sighting | RecordKind::DegradationReport => "author_id",
        }
    }

    /// The column of the record's own date (what "from"/"to" filter).
    pub(crate) fn date_column(self) -> &'static str {
        match self {
            RecordKind::Sighting => "event_date",
            RecordKind::DegradationReport => "observed_at",
            RecordKind::TimesheetEntry => "work_date",
        }
    }

    pub(crate) fn schema_kind(self) -> schemas::RecordKind {
        match self {
            RecordKind::Sighting => schemas::RecordKind::Sighting,
            RecordKind::DegradationReport => schemas::RecordKind::DegradationReport,
            RecordKind::TimesheetEntry => schemas::RecordKind::TimesheetEntry,
        }
    }
}
