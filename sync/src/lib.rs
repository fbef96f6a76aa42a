//! The automerge document model of the field survey service.
//!
//! This crate decides which records live in which automerge document, reads a
//! document into typed records (keeping every concurrent value automerge holds for
//! a field edited on two phones at once), writes records into documents, and checks
//! incoming changes against the rules a document must keep. It does no I/O: no
//! network, no SQL, no files — so it can be tested and fuzzed on bytes alone.
//!
//! # Partitioning
//! One **field notebook** per volunteer and territory holds that volunteer's
//! sightings, degradation reports and timesheet entries (see [`notebook`]):
//! - *permissions* follow the document: a volunteer writes their own notebook and
//!   nobody else's, so the server can grant or refuse write access per document;
//! - *sync cost*: a phone reconnecting after a day offline exchanges one document,
//!   not one per record (automerge-repo syncs document by document);
//! - *history growth* stays bounded by one person's work in one place.
//!
//! Coordinator decisions (identification verification, degradation follow-up,
//! timesheet approval) never live in a notebook: they belong to a territory's
//! review document ([`review`], one per volunteer and territory), written only
//! by the server on a coordinator's behalf, so a volunteer cannot approve
//! their own hours by editing their own notebook.
//!
//! A territory's species list ([`species`], one per territory) is a reference
//! document the same way: the server writes it from a coordinator's import,
//! every member's phone reads it.
//!
//! [`audit`] says what one accepted change did to a notebook's records (the
//! fields it wrote, before and after), which the server's audit trail keeps.

pub mod audit;
pub mod authorize;
pub mod notebook;
pub mod protocol;
pub mod read;
pub mod review;
pub mod species;
pub mod validate;
pub mod wire;
pub mod write;
pub mod written;

pub use notebook::{
    read_header, read_notebook, Collection, NotebookHeader, NotebookRead, ReadRecord, RecordState,
    NOTEBOOK_TYPE, SCHEMA_VERSION,
};
pub use read::FieldConflict;
pub use validate::{check_header_unchanged, HeaderViolation};
pub use write::{new_notebook, put_raw_record, put_record, set_field, WriteError};
