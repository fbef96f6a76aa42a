//! The automerge document model of the field survey service: which records
//! live in which document, and how a document is read, written and compared.
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
//! # Reading, writing, comparing
//! - [`read`] turns automerge values into JSON, keeping every concurrent value;
//!   [`write`] puts records into a notebook, one register per field;
//! - [`validate`]: what must stay fixed in a notebook once the server has seen it
//!   (its header);
//! - [`written`]: every value a set of changes writes, wherever it lands, the
//!   ones a merge hides included. The judge judges each of them, and [`audit`]
//!   reads the same values to say what one accepted change did to a notebook's
//!   records (the fields it wrote, before and after), which the server's audit
//!   trail keeps. It is a way of reading changes, not a rule, so it lives here,
//!   below both of its readers: the judge imports the model, never the reverse;
//! - [`wire`]: the change chunks of a sync message, parsed strictly into
//!   changes and counted before automerge inflates them. It belongs to the
//!   model, not to the network protocol: it reads automerge's own formats (a
//!   change, a bundle, a document), and the judge (which splits a message
//!   into the changes it judges), the protocol engine (which bounds what a
//!   message inflates to) and the server's audit trail all read chunks with it.
//!
//! - [`erasure`]: a notebook's history-free copy without its owner's personal
//!   fields, which replaces it when the person is erased.
//!
//! Nothing here imports the judge or the protocol engine.

pub mod audit;
pub mod erasure;
pub mod notebook;
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
