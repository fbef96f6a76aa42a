//! The phone-side library: a volunteer's field notebook kept as an automerge
//! document in a crash-safe store on the phone, edited offline, and synchronised
//! with the server over the automerge-repo WebSocket protocol when there is signal.
//!
//! - [`Device`]: an enrolled phone — [`Device::enrol`], [`Device::open`], the
//!   capture API ([`Device::create`], [`Device::save_draft`], [`Device::edit`],
//!   [`Device::pending`], …) and sync ([`Device::go_online`], [`Device::sync`],
//!   [`Device::sync_status`]).
//! - [`Store`]: the on-device store (see `store.rs` and the crate README for its format).
//! - [`Phone`]: a lightweight in-memory phone for tests and the load generator.

mod capture;
mod device;
mod phone;
pub mod photos;
mod repo_runtime;
mod store;
mod sync_client;
mod ws_dialer;

pub use capture::{CaptureError, Draft, GpsFix, PendingRecord};
pub use device::{Device, DeviceError};
pub use phone::{DeviceCredential, Phone, PhoneError};
pub use samod::{BackoffConfig, DocumentId};
pub use store::{Identity, Store, StoreError, SyncState};
pub use sync::documents::{FieldConflict, RecordState};
pub use sync_client::{sync_url, PendingPhotos, SyncStatus, SyncTimeout, DEFAULT_BACKOFF};
pub use ws_dialer::{InvalidCredential, WireCounters, WsDialer};

// The UniFFI exports (Kotlin, Swift, Python bindings); see `ffi.rs`.
pub mod ffi;
uniffi::setup_scaffolding!();
