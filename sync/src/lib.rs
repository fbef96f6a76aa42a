//! The automerge side of the field survey service, free of I/O: no network,
//! no SQL, no files, so every part can be tested and fuzzed on bytes alone.
//! The server (`server/src/sync/`) and the phones (`mobile-bridge/`) do the
//! I/O around it.
//!
//! Three parts, each a folder:
//! - [`documents`]: the document model. Which records live in which automerge
//!   document (a volunteer's notebook, their review document, a territory's
//!   species list), reading a document into typed records with every
//!   concurrent value kept, writing records, what a set of changes writes and
//!   what one change did to a notebook's records (the audit trail's diff),
//!   and the change chunks of a sync message.
//! - [`judge`]: who may write what into a notebook: the decision the server
//!   takes on every change a peer sends, before anything is applied, and the
//!   size rules that also bound the server's own writes of a record's field.
//! - [`protocol`]: the automerge-repo network protocol engine: the message
//!   codec, a connection's handshake, one (connection, document) pair's sync
//!   state.
//!
//! What each may import from the others: `documents` imports neither of
//! them; `judge` and `protocol` import `documents` (the judge reads
//! notebooks; the protocol counts what a message's change chunks inflate to
//! with [`documents::wire`]) and never each other. Nothing else in the crate
//! imports `protocol`: the server takes changes out of a message with it and
//! hands them to the judge itself (`server/src/sync/document.rs`).

pub mod documents;
pub mod judge;
pub mod protocol;
