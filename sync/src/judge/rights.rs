//! What the writer of a change may do: the judge's one input besides the
//! documents, established by the server from the credential that delivered
//! the change.

use uuid::Uuid;

/// What the writer of a change may do, as the server established it from their credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterRights {
    pub account_id: Uuid,
    /// Territories where the writer may keep a notebook (volunteers and coordinators).
    pub notebook_territories: Vec<Uuid>,
}
