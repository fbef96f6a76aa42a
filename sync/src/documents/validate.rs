//! Checks on incoming changes that go beyond one record's validity.
//!
//! A notebook's header says whose notebook it is and which territory it belongs
//! to; the server files every record under that territory. A change that rewrites
//! the header would move records between territories or owners, so the header is
//! fixed once the server has seen it, and a change to it is reported.

use serde::Serialize;

use super::notebook::NotebookHeader;

/// A change that tried to alter what must stay fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderViolation {
    /// JSON name of the header field (`territoryId`, `ownerId`).
    pub field: &'static str,
    pub established: String,
    pub attempted: String,
}

/// Compares a notebook's header with the one established when the server first
/// saw the notebook.
pub fn check_header_unchanged(
    established: &NotebookHeader,
    current: &NotebookHeader,
) -> Vec<HeaderViolation> {
    let mut violations = Vec::new();
    if established.territory_id != current.territory_id {
        violations.push(HeaderViolation {
            field: "territoryId",
            established: established.territory_id.to_string(),
            attempted: current.territory_id.to_string(),
        });
    }
    if established.owner_id != current.owner_id {
        violations.push(HeaderViolation {
            field: "ownerId",
            established: established.owner_id.to_string(),
            attempted: current.owner_id.to_string(),
        });
    }
    violations
}
