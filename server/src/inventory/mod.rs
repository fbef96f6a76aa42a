//! The inventory: the PostGIS tables coordinators and régies read, a
//! projection of the volunteers' notebooks.
//!
//! - [`materialise`]: the write side, each stored document filed into the
//!   tables in the transaction that stores its change;
//! - [`rows`]: the read side, one typed row per record kind (and invalid
//!   records, documents), built by the queries that read them;
//! - [`warnings`]: what is accepted but implausible about a row;
//! - [`kinds`]: the one mapping from a record kind to its table and columns,
//!   which the review queries (`review::filter`, `review::decisions`) use too.

pub mod kinds;
pub mod materialise;
pub mod rows;
pub mod warnings;
