//! The audit trail a régie relies on (migrations 0009, 0013): every accepted
//! change to a record and every review decision, recorded in the transaction
//! that accepts it and hash-chained per territory.
//!
//! - [`trail`]: a commit of notebook changes is queued by its transaction
//!   (the sync core calls [`trail::queue`]) and written out afterwards as one
//!   entry per change and record, with the fields' values before and after;
//!   decisions are appended by a trigger on `review_history`; both land in
//!   `audit_pending` without taking any lock;
//! - [`chain`]: writes queued commits out and gives pending entries their
//!   places in their territory's chain, in the background when the sync
//!   core is quiet and before every read of the chain;
//! - [`verify`]: walks a territory's chain and names the first entry that
//!   does not hold;
//! - [`record`]: one record's history, and its state at a past date.

pub mod chain;
pub mod record;
pub mod trail;
pub mod verify;
