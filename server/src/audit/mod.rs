//! The audit trail a régie relies on (migration 0009): every accepted change
//! to a record and every review decision, appended in the transaction that
//! accepts it and hash-chained per territory.
//!
//! - [`trail`]: the entries of the changes a commit stores (the sync core
//!   calls it; decisions are appended by a trigger on `review_history`),
//!   appended to `audit_pending` without taking any lock;
//! - [`chain`]: gives pending entries their places in their territory's
//!   chain, every half second and before every read of the chain;
//! - [`verify`]: walks a territory's chain and names the first entry that
//!   does not hold;
//! - [`record`]: one record's history, and its state at a past date.

pub mod chain;
pub mod record;
pub mod trail;
pub mod verify;
