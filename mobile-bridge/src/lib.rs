//! The phone-side library: a volunteer's field notebook kept as an automerge
//! document in a crash-safe store on the phone, edited offline, and synchronised
//! with the server over the automerge-repo WebSocket protocol when there is signal.
//!
//! - [`Device`]: an enrolled phone — [`Device::enrol`], [`Device::open`], the
//!   capture API ([`Device::create`], [`Device::save_draft`], [`Device::edit`],
//!   [`Device::pending`], …) and sync ([`Device::go_online`], [`Device::sync`],
//!   [`Device::sync_status`]).
//! - [`Store`]: the on-device store (see `store.rs` and the crate README for its format).
//! - `Phone` (feature `simulated-phone`, for tests and the load generators): a
//!   lightweight in-memory phone without a store.
//!
//! Modules depend one way, from what an app calls down to the disk and the
//! network: `ffi` → `capture` → `device` → `sync_client` → `store`, `pending`,
//! `ws_dialer`, `repo_runtime`; `credential` is below all of them, and
//! `simulated_phone` and `photos` use the sync client only.

mod capture;
mod credential;
mod device;
mod pending;
pub mod photos;
mod repo_runtime;
#[cfg(feature = "simulated-phone")]
mod simulated_phone;
mod store;
mod sync_client;
mod ws_dialer;

pub use capture::{CaptureError, Draft, GpsFix};
pub use credential::DeviceCredential;
pub use device::{Device, DeviceError};
pub use pending::PendingRecord;
pub use samod::{BackoffConfig, DocumentId};
#[cfg(feature = "simulated-phone")]
pub use simulated_phone::{Phone, PhoneError};
pub use store::{Identity, Store, StoreError, SyncState};
pub use sync::documents::{FieldConflict, RecordState};
pub use sync_client::{sync_url, PendingPhotos, SyncStatus, SyncTimeout, DEFAULT_BACKOFF};
pub use ws_dialer::{InvalidCredential, WireCounters, WsDialer};

// The UniFFI exports (Kotlin, Swift, Python bindings); see `ffi.rs`.
pub mod ffi;
uniffi::setup_scaffolding!();
