//! Photos attached to records, without HTTP: uploaded by phones apart from
//! the automerge notebooks (a record's `photos` field holds their SHA-256),
//! resumably, stored in PostgreSQL with the thumbnail the server makes.
//! `http::photos` maps the upload protocol's headers and answers onto these.
//!
//! - [`upload`]: the state of a partial upload (its chunks, its offset) and
//!   its finishing: the last chunk verified and stored with its thumbnail in
//!   one transaction;
//! - [`verify`]: checking that bytes hash to their address and are a photo,
//!   and making the thumbnail (CPU work, no database);
//! - [`stored`]: the photos held, as described to clients and as served.

pub mod stored;
pub mod upload;
pub mod verify;

/// Why a photo, or a chunk of one, is refused (or could not be handled).
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// Well formed but not what it claims to be: bytes that do not hash to
    /// the address (`field`: `sha256`), or an image that cannot be decoded
    /// (`body`).
    #[error("{field}: {message}")]
    Unprocessable {
        field: &'static str,
        message: String,
    },
    /// Neither a JPEG nor a PNG.
    #[error("{0}")]
    NotAPhoto(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}
