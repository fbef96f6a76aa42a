//! What the service does with a person's data at their request
//! (docs/PRIVACY.md):
//!
//! - [`export`]: their own data as one JSON file (RGPD art. 15 and 20);
//! - [`erasure`]: erasing them (art. 17): account pseudonymised, notebooks
//!   replaced by history-free copies, their personal fields redacted from
//!   the audit trail, which still verifies.

pub mod erasure;
pub mod export;

pub use export::{export, PersonalData};
