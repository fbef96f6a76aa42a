//! What can go wrong in a review, in terms the HTTP layer maps to a status.

/// A review request that cannot be done; `field` names what is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Malformed input (400).
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    /// A record (or pair) the territory does not hold (404).
    #[error("{0} not found")]
    NotFound(String),
    /// Well formed but not possible in the record's state (409): a follow-up
    /// move the workflow does not allow, a field no longer in conflict.
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// A value that would make the record invalid (422).
    #[error("{field}: {message}")]
    Unprocessable { field: String, message: String },
    /// The sync core could not store the change; nothing was.
    #[error("storing the change failed: {0}")]
    Storage(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ReviewError {
    pub fn bad_request(field: &str, message: impl Into<String>) -> ReviewError {
        ReviewError::BadRequest {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn conflict(field: &str, message: impl Into<String>) -> ReviewError {
        ReviewError::Conflict {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn unprocessable(field: &str, message: impl Into<String>) -> ReviewError {
        ReviewError::Unprocessable {
            field: field.to_string(),
            message: message.into(),
        }
    }
}
