//! The automerge-repo network protocol, free of I/O: what the server needs to
//! speak to the JavaScript `@automerge/automerge-repo` 2.x client (and to our
//! own phone library) without a library between it and the bytes.
//!
//! - [`message`]: the CBOR codec of every message the JS client sends or
//!   expects (`join`, `peer`, `leave`, `request`, `sync`, `doc-unavailable`,
//!   `ephemeral`, `error`, `remote-subscription-change`,
//!   `remote-heads-changed`), with size and type limits and an error that
//!   names what is wrong;
//! - [`connection`]: one connection's handshake and the checks every later
//!   message must pass (its sender is the peer that joined, it is addressed to
//!   us);
//! - [`document_sync`]: one (connection, document) pair's automerge sync
//!   state, where changes are taken out of a message to be judged before they
//!   are applied, and replies are generated from the state the caller commits.
//!
//! References read (not copied): the automerge-repo network protocol README
//! and `messages.ts`, samod-core's `wire_protocol.rs`. Frames recorded from the
//! real JS client are the codec's test fixtures (`sync/tests/frames/`).

pub mod connection;
pub mod document_sync;
pub mod ids;
pub mod message;

pub use connection::{Connection, ConnectionError, Incoming};
pub use document_sync::{DocumentSync, IncomingSync, SyncDataError, SyncDataLimits};
pub use ids::{DocumentId, PeerId};
pub use message::{decode, encode, DecodeError, HeadsAt, Limits, Message, PeerMetadata};

/// The only protocol version automerge-repo 2.x speaks.
pub const PROTOCOL_VERSION: &str = "1";
