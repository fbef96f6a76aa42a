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
//! - [`rows`]: the typed rows a reviewer reads (table, record page, pairs);
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
pub mod rows;

mod error;
pub use error::ReviewError;

use schemas::RecordKind;

use crate::inventory::kinds;

/// The kind a client names in `field`, or the 400 that lists the kinds.
pub fn parse_kind(field: &str, text: &str) -> Result<RecordKind, ReviewError> {
    kinds::parse(text).ok_or_else(|| {
        ReviewError::bad_request(
            field,
            format!("must be {} (got {text:?})", kinds::KIND_NAMES),
        )
    })
}
