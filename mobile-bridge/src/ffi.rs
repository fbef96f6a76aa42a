//! The library as Android and iOS apps see it, through UniFFI: Kotlin, Swift
//! (and Python, for the FFI test) bindings are generated from these exports by
//! `mobile-bridge/bindings.sh`; see the FFI section of `mobile-bridge/README.md`.
//!
//! This is a facade over [`Device`] and nothing more: each method converts its
//! arguments into the Rust API's types, calls it, and converts the answer
//! back. Capture rules, validation, storage and sync live in the Rust API, so
//! the Rust callers (fieldkit, the tests) and the apps get the same behaviour.
//!
//! Decisions:
//! - **Blocking methods over a runtime the device owns.** UniFFI can export
//!   `async` functions, but each foreign language then needs its own executor
//!   glue (Kotlin coroutines, Swift concurrency, Python asyncio) for every call.
//!   Apps already run storage and network work off their UI thread (a Kotlin
//!   `Dispatchers.IO` coroutine, a Swift `Task.detached`, a WorkManager job), so
//!   plain blocking calls are the simplest contract that works in all of them.
//!   Each [`FieldDevice`] owns a small tokio runtime that keeps its sync client
//!   running between calls.
//! - **Records go in as JSON objects of their fields** ([`FieldDevice::create_record`]),
//!   as the capture API takes them, so degradation reports and timesheet entries
//!   need no per-type binding; sightings, the commonest form, also have a typed
//!   [`SightingInput`].
//! - **Errors carry data, not just text**: a refused record lists every problem
//!   with its field (`decimalLatitude`, …) so the app can mark the form's fields.

use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value as Json};
use url::Url;
use uuid::Uuid;

use crate::{CaptureError, Device, DeviceError, GpsFix, PendingRecord, StoreError, SyncStatus};

/// Why a call failed. Every variant but `Invalid` carries the library's own
/// explanation in `message`, phrased for the volunteer.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum FieldError {
    /// The record breaks the rules and nothing was stored.
    #[error("the record is not valid: {}", problems.iter().map(|p| format!("{}: {}", p.field, p.reason)).collect::<Vec<_>>().join("; "))]
    Invalid { problems: Vec<FieldProblem> },
    /// An argument the app passed is malformed (not a URL, not a JSON object, not an id).
    #[error("{argument}: {reason}")]
    BadArgument { argument: String, reason: String },
    /// The store holds no identity: enrol with [`FieldDevice::enrol`] first.
    #[error("{message}")]
    NotEnrolled { message: String },
    /// The store already belongs to an enrolled device.
    #[error("{message}")]
    AlreadyEnrolled { message: String },
    /// The server answered the enrolment with a refusal (expired or used code, …).
    #[error("the server refused the enrolment ({status}): {message}")]
    EnrolmentRefused { status: u16, message: String },
    /// The server could not be reached (no network, wrong address).
    #[error("{message}")]
    Unreachable { message: String },
    /// The server did not acknowledge everything in time; nothing is lost, the
    /// records stay pending and the next sync carries them.
    #[error("{message}")]
    SyncTimeout {
        message: String,
        status: DeviceStatus,
    },
    /// No record of that kind and id in the notebook.
    #[error("{message}")]
    NoRecord { message: String },
    /// The phone's storage failed: the record must be treated as not saved.
    #[error("{message}")]
    Storage { message: String },
    /// The device's sync client has stopped.
    #[error("{message}")]
    Stopped { message: String },
}

/// One thing wrong with a record: its JSON field name (`decimalLatitude`,
/// `statusHistory[2].reason`; empty for the record as a whole) and why.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FieldProblem {
    pub field: String,
    pub reason: String,
}

/// The kinds of record a volunteer captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RecordKind {
    Sighting,
    DegradationReport,
    TimesheetEntry,
}

/// A position from the phone's GPS.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct GpsPosition {
    /// WGS84 degrees.
    pub latitude: f64,
    /// WGS84 degrees.
    pub longitude: f64,
    /// Radius of the 68 % confidence circle, in metres, as the phone reports it.
    #[uniffi(default = None)]
    pub accuracy_m: Option<f64>,
    /// When the fix was taken; becomes the record's event time unless the form sets one.
    pub taken_at: SystemTime,
}

/// A sighting as the volunteer fills it in; the device adds the rest
/// (identifiers, author, device, timestamps, `recordedBy`).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SightingInput {
    /// Latin name, e.g. `Bufo bufo`.
    pub scientific_name: String,
    /// WGS84 degrees.
    pub latitude: f64,
    /// WGS84 degrees.
    pub longitude: f64,
    /// GPS accuracy in metres (Darwin Core `coordinateUncertaintyInMeters`).
    #[uniffi(default = None)]
    pub accuracy_m: Option<f64>,
    #[uniffi(default = None)]
    pub individual_count: Option<i64>,
    #[uniffi(default = None)]
    pub vernacular_name: Option<String>,
    /// TAXREF `cd_nom`.
    #[uniffi(default = None)]
    pub taxon_id: Option<i64>,
    #[uniffi(default = None)]
    pub site: Option<String>,
    #[uniffi(default = None)]
    pub notes: Option<String>,
    /// When the animal or plant was seen; now if not given.
    #[uniffi(default = None)]
    pub observed_at: Option<SystemTime>,
}

/// A record stored although it breaks rules, and what is still wrong with it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Draft {
    pub id: String,
    pub problems: Vec<FieldProblem>,
}

/// A record whose latest state the server has not acknowledged.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PendingItem {
    pub kind: RecordKind,
    pub id: String,
}

/// What the app shows about syncing.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DeviceStatus {
    /// A connection to the server is open now.
    pub connected: bool,
    /// Records whose latest changes the server has not acknowledged.
    pub pending_records: u64,
    /// Notebook changes the server has not acknowledged.
    pub unacknowledged_changes: u64,
    /// Photos waiting for upload.
    pub pending_photos: u64,
    /// When the server last acknowledged everything this phone held.
    pub last_sync: Option<SystemTime>,
    /// Why the last connection attempt failed, while it does.
    pub last_error: Option<String>,
}

/// Who this phone is, as enrolment made it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DeviceIdentity {
    pub device_id: String,
    pub account_id: String,
    pub territory_id: String,
    pub server_url: String,
    pub device_name: String,
}

/// An enrolled phone: its store, notebook and sync client.
///
/// Methods block (see the module's notes) and may be called from several
/// threads; calls on one device run one at a time, except that
/// [`FieldDevice::sync`] releases the device while it waits for the server.
#[derive(uniffi::Object)]
pub struct FieldDevice {
    // Declared before the runtime: dropped first, while its tasks can still run.
    device: Mutex<Device>,
    runtime: tokio::runtime::Runtime,
}

#[uniffi::export]
impl FieldDevice {
    /// Redeems the invitation `code` at `server_url` (the server's base URL,
    /// e.g. `https://nature.example.org`), keeps the identity in `store_dir`
    /// and opens the device. `volunteer_name` fills `recordedBy` on sightings.
    #[uniffi::constructor]
    pub fn enrol(
        store_dir: String,
        server_url: String,
        code: String,
        device_name: String,
        volunteer_name: Option<String>,
    ) -> Result<Arc<FieldDevice>, FieldError> {
        let server = Url::parse(&server_url).map_err(|e| bad_argument("serverUrl", e))?;
        let runtime = runtime()?;
        let device = runtime.block_on(Device::enrol(
            Path::new(&store_dir),
            &server,
            &code,
            &device_name,
            volunteer_name.as_deref(),
        ))?;
        Ok(FieldDevice::new(device, runtime))
    }

    /// Opens the device enrolled in `store_dir`; fails with `NotEnrolled` on a
    /// store that never was, so the app knows to show its enrolment screen.
    #[uniffi::constructor]
    pub fn open(store_dir: String) -> Result<Arc<FieldDevice>, FieldError> {
        let runtime = runtime()?;
        let device = runtime.block_on(Device::open(Path::new(&store_dir)))?;
        Ok(FieldDevice::new(device, runtime))
    }

    pub fn identity(&self) -> DeviceIdentity {
        let device = self.device();
        let identity = device.identity();
        DeviceIdentity {
            device_id: identity.credential.device_id.to_string(),
            account_id: identity.account_id.to_string(),
            territory_id: identity.territory_id.to_string(),
            server_url: identity.server.to_string(),
            device_name: identity.device_name.clone(),
        }
    }

    /// Records a sighting, validated with the server's rules; returns its id
    /// once it is on the phone's disk. Needs no network.
    pub fn record_sighting(&self, sighting: SightingInput) -> Result<String, FieldError> {
        let mut fields = json!({
            "scientificName": sighting.scientific_name,
            "decimalLatitude": sighting.latitude,
            "decimalLongitude": sighting.longitude,
        });
        let optional = [
            (
                "coordinateUncertaintyInMeters",
                sighting.accuracy_m.map(Json::from),
            ),
            ("individualCount", sighting.individual_count.map(Json::from)),
            ("vernacularName", sighting.vernacular_name.map(Json::from)),
            ("taxonID", sighting.taxon_id.map(Json::from)),
            ("site", sighting.site.map(Json::from)),
            ("notes", sighting.notes.map(Json::from)),
            ("eventDate", sighting.observed_at.map(rfc3339)),
        ];
        let object = fields.as_object_mut().expect("built as an object");
        object.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_string(), value?))),
        );
        let id =
            self.within(|device| device.create(schemas::RecordKind::Sighting, &fields, None))?;
        Ok(id.to_string())
    }

    /// Records any kind of record from the JSON object of its form's fields
    /// (camelCase, as in `schemas/json/`), validated; returns its id once on disk.
    pub fn create_record(
        &self,
        kind: RecordKind,
        fields_json: String,
        gps: Option<GpsPosition>,
    ) -> Result<String, FieldError> {
        let fields = json_object(&fields_json)?;
        let gps = gps.map(GpsFix::from);
        let id = self.within(|device| device.create(kind.into(), &fields, gps.as_ref()))?;
        Ok(id.to_string())
    }

    /// Stores a record even if it breaks rules (a form to finish later) and
    /// returns what is wrong with it.
    pub fn save_draft(
        &self,
        kind: RecordKind,
        fields_json: String,
        gps: Option<GpsPosition>,
    ) -> Result<Draft, FieldError> {
        let fields = json_object(&fields_json)?;
        let gps = gps.map(GpsFix::from);
        let draft = self.within(|device| device.save_draft(kind.into(), &fields, gps.as_ref()))?;
        Ok(Draft {
            id: draft.id.to_string(),
            problems: problems(draft.problems),
        })
    }

    /// Changes some fields of a record (`fields_json` holds only those; `null`
    /// clears an optional one); refused if the result is invalid.
    pub fn edit_record(
        &self,
        kind: RecordKind,
        id: String,
        fields_json: String,
        gps: Option<GpsPosition>,
    ) -> Result<(), FieldError> {
        let id = Uuid::parse_str(&id).map_err(|e| bad_argument("id", e))?;
        let fields = json_object(&fields_json)?;
        let gps = gps.map(GpsFix::from);
        self.within(|device| device.edit(kind.into(), id, &fields, gps.as_ref()))?;
        Ok(())
    }

    /// Records the server has not acknowledged in their latest state.
    pub fn pending(&self) -> Result<Vec<PendingItem>, FieldError> {
        let pending = self.within(Device::pending)?;
        Ok(pending.into_iter().map(PendingItem::from).collect())
    }

    pub fn status(&self) -> DeviceStatus {
        self.device().sync_status().into()
    }

    /// Starts syncing in the background (connecting when the network allows,
    /// reconnecting with backoff); returns at once. [`FieldDevice::status`] follows it.
    pub fn go_online(&self) -> Result<(), FieldError> {
        let mut device = self.device();
        let _runtime = self.runtime.enter();
        Ok(device.go_online()?)
    }

    /// Stops syncing; capture goes on.
    pub fn go_offline(&self) {
        let mut device = self.device();
        let _runtime = self.runtime.enter();
        device.go_offline();
    }

    /// Goes online if needed and waits until the server has acknowledged
    /// everything this phone holds, at most `timeout_secs` seconds.
    /// The device is free meanwhile: captures from other threads go on.
    pub fn sync(&self, timeout_secs: u32) -> Result<DeviceStatus, FieldError> {
        let timeout = Duration::from_secs(timeout_secs.into());
        let synced = {
            let mut device = self.device();
            let _runtime = self.runtime.enter();
            device.start_sync(timeout)?
        };
        let status = self.runtime.block_on(synced)?;
        Ok(status.into())
    }
}

impl FieldDevice {
    fn new(device: Device, runtime: tokio::runtime::Runtime) -> Arc<FieldDevice> {
        Arc::new(FieldDevice {
            device: Mutex::new(device),
            runtime,
        })
    }

    fn device(&self) -> MutexGuard<'_, Device> {
        // Every change is on disk before a call returns, so a call that
        // panicked left nothing half-done in memory worth refusing service for.
        self.device.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a synchronous Rust API call inside the device's runtime (the
    /// notebook may wake sync tasks).
    fn within<T, E>(&self, call: impl FnOnce(&Device) -> Result<T, E>) -> Result<T, FieldError>
    where
        FieldError: From<E>,
    {
        let device = self.device();
        let _runtime = self.runtime.enter();
        Ok(call(&device)?)
    }
}

/// Two worker threads: the sync client's few tasks need no more on a phone.
fn runtime() -> Result<tokio::runtime::Runtime, FieldError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fieldnotes-device")
        .enable_all()
        .build()
        .map_err(|e| FieldError::Stopped {
            message: format!("could not start the device's runtime: {e}"),
        })
}

fn bad_argument(argument: &str, reason: impl ToString) -> FieldError {
    FieldError::BadArgument {
        argument: argument.to_string(),
        reason: reason.to_string(),
    }
}

fn json_object(fields_json: &str) -> Result<Json, FieldError> {
    match serde_json::from_str(fields_json) {
        Ok(Json::Object(fields)) => Ok(Json::Object(fields)),
        Ok(_) => Err(bad_argument("fieldsJson", "must be a JSON object")),
        Err(e) => Err(bad_argument("fieldsJson", e)),
    }
}

fn rfc3339(time: SystemTime) -> Json {
    Json::from(DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn problems(problems: Vec<schemas::FieldProblem>) -> Vec<FieldProblem> {
    problems
        .into_iter()
        .map(|p| FieldProblem {
            field: p.field,
            reason: p.reason,
        })
        .collect()
}

impl From<RecordKind> for schemas::RecordKind {
    fn from(kind: RecordKind) -> Self {
        match kind {
            RecordKind::Sighting => schemas::RecordKind::Sighting,
            RecordKind::DegradationReport => schemas::RecordKind::DegradationReport,
            RecordKind::TimesheetEntry => schemas::RecordKind::TimesheetEntry,
        }
    }
}

impl From<schemas::RecordKind> for RecordKind {
    fn from(kind: schemas::RecordKind) -> Self {
        match kind {
            schemas::RecordKind::Sighting => RecordKind::Sighting,
            schemas::RecordKind::DegradationReport => RecordKind::DegradationReport,
            schemas::RecordKind::TimesheetEntry => RecordKind::TimesheetEntry,
        }
    }
}

impl From<GpsPosition> for GpsFix {
    fn from(gps: GpsPosition) -> Self {
        GpsFix {
            latitude: gps.latitude,
            longitude: gps.longitude,
            accuracy_m: gps.accuracy_m,
            taken_at: gps.taken_at.into(),
        }
    }
}

impl From<PendingRecord> for PendingItem {
    fn from(pending: PendingRecord) -> Self {
        PendingItem {
            kind: pending.kind.into(),
            id: pending.key,
        }
    }
}

impl From<SyncStatus> for DeviceStatus {
    fn from(status: SyncStatus) -> Self {
        DeviceStatus {
            connected: status.connected,
            pending_records: status.pending_records as u64,
            unacknowledged_changes: status.unacknowledged_changes as u64,
            pending_photos: status.pending_photos,
            last_sync: status.last_sync.map(SystemTime::from),
            last_error: status.last_error,
        }
    }
}

impl From<CaptureError> for FieldError {
    fn from(error: CaptureError) -> Self {
        let message = error.to_string();
        match error {
            CaptureError::Invalid(found) => FieldError::Invalid {
                problems: problems(found),
            },
            CaptureError::NotAnObject => bad_argument("fieldsJson", message),
            CaptureError::NoRecord(..) => FieldError::NoRecord { message },
            CaptureError::Write(_) | CaptureError::Store(_) => FieldError::Storage { message },
        }
    }
}

impl From<StoreError> for FieldError {
    fn from(error: StoreError) -> Self {
        FieldError::Storage {
            message: error.to_string(),
        }
    }
}

impl From<DeviceError> for FieldError {
    fn from(error: DeviceError) -> Self {
        let message = error.to_string();
        match error {
            DeviceError::Store(_) => FieldError::Storage { message },
            DeviceError::NotEnrolled(_) => FieldError::NotEnrolled { message },
            DeviceError::AlreadyEnrolled(_) => FieldError::AlreadyEnrolled { message },
            DeviceError::Unreachable { .. } => FieldError::Unreachable { message },
            DeviceError::EnrolmentRefused { status, message } => {
                FieldError::EnrolmentRefused { status, message }
            }
            DeviceError::Stopped => FieldError::Stopped { message },
            DeviceError::SyncTimeout(timeout) => FieldError::SyncTimeout {
                message,
                status: timeout.status.into(),
            },
        }
    }
}
