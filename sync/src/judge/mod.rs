//! Who may write what into a notebook: the decision the server takes on every
//! incoming change before it is applied.
//!
//! A notebook belongs to one volunteer in one territory. Only its owner writes
//! it; the owner must (still) hold a writing role in that territory; the header
//! never changes after creation; no record may carry a coordinator's decision
//! (verification, approval, follow-up status), which belong in the territory's
//! review documents, not in a volunteer's notebook; every record names the
//! owner as its author (and as the volunteer whose hours it declares); and
//! nothing exceeds the size limits of `schemas::limits`.
//!
//! These rules hold for **every value a change writes** ([`crate::documents::written`]),
//! not just for the merged state: a value in a concurrent branch that loses
//! the merge, or one a later change deletes, is still in the document, one
//! deletion away from surfacing.
//!
//! One file per concern:
//! - `decision.rs`: the decision on one message ([`authorize_notebook_changes`]):
//!   which document, whose, which territory, which changes wait;
//! - `values.rs`: the rules for every value the changes write;
//! - `limits.rs`: the size rules of a record's fields, which the server's own
//!   writes of a field are held to as well ([`check_field_json`]);
//! - `refusal.rs`: why a change is refused ([`Refusal`]), the text the peer
//!   reads; `rights.rs`: what the writer may do ([`WriterRights`]);
//! - `tests/`: the judge's tests, on whole messages as a phone sends them.

mod decision;
mod limits;
mod refusal;
mod rights;
#[cfg(test)]
mod tests;
mod values;

pub use decision::{
    authorize_notebook_changes, Decision, MAX_CHANGES_PER_MESSAGE, MAX_OPERATIONS_PER_CHANGE,
    MAX_WAITING_CHANGES,
};
pub use limits::{check_field_json, EXTRA_LIST_MAX_ITEMS};
pub use refusal::Refusal;
pub use rights::WriterRights;
pub use values::{COORDINATOR_FIELDS, OWNER_FIELDS};
