//! The capture API: create and edit sightings, degradation reports and timesheet
//! entries on the phone, with GPS fixes, and read them back.
//!
//! Decisions:
//! - **Records go in as JSON objects of the form's fields** (camelCase, the
//!   `schemas` JSON), so an app (through FFI too) needs no per-type binding; the
//!   device fills what the volunteer never types: `id`, `authorId`, `deviceId`,
//!   `createdAt`, `modifiedAt`, plus `occurrenceID` and `recordedBy` (sightings) and
//!   `volunteerId` (timesheets) when absent, and the event time (`eventDate`,
//!   `observedAt`) from the GPS fix or the clock when the form has none.
//! - **The phone validates with the server's rules** (`FieldRecord::from_raw`),
//!   returning every problem with its field. [`Device::create`] and
//!   [`Device::edit`] refuse an invalid record and store nothing; an app that wants
//!   to keep a half-filled form (gloves on, rain starting) calls
//!   [`Device::save_draft`] / [`Device::edit_draft`], which store it anyway and
//!   return the problems: the server keeps such a record in `invalid_records` until
//!   it is fixed, exactly as it would from any other client.
//! - **Durable before returning**: the change is appended to the store (and
//!   `fsync`ed) inside samod's document lock, so no change can reach the server
//!   that is not on disk first.

use automerge::Automerge;
use chrono::{DateTime, SecondsFormat, Utc};
use schemas::{DegradationReport, FieldProblem, FieldRecord, RecordKind, Sighting, TimesheetEntry};
use serde_json::{Map, Value as Json};
use sync::documents::{put_raw_record, read_notebook, set_field, RecordState, WriteError};
use uuid::Uuid;

use crate::{device::Device, store::StoreError};

/// Fields the device sets; a form cannot change them.
const SYSTEM_FIELDS: [&str; 5] = ["id", "authorId", "deviceId", "createdAt", "modifiedAt"];

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The record breaks the rules; nothing was stored. Every problem names its field.
    #[error("the record is not valid: {}", list(.0))]
    Invalid(Vec<FieldProblem>),
    #[error("a record is given as a JSON object of its fields")]
    NotAnObject,
    #[error("no {kind} with id {id} in this notebook", kind = .0.as_str(), id = .1)]
    NoRecord(RecordKind, Uuid),
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The change could not be made durable: it must be treated as not saved.
    #[error("the record could not be saved on the phone: {0}")]
    Store(#[from] StoreError),
}

fn list(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A position from the phone's GPS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpsFix {
    /// WGS84 degrees.
    pub latitude: f64,
    /// WGS84 degrees.
    pub longitude: f64,
    /// Radius of the 68 % confidence circle reported by the phone, in metres;
    /// becomes Darwin Core `coordinateUncertaintyInMeters`.
    pub accuracy_m: Option<f64>,
    /// When the fix was taken.
    pub taken_at: DateTime<Utc>,
}

impl GpsFix {
    fn apply(&self, fields: &mut Map<String, Json>) {
        fields.insert("decimalLatitude".into(), Json::from(self.latitude));
        fields.insert("decimalLongitude".into(), Json::from(self.longitude));
        match self.accuracy_m {
            Some(accuracy) => {
                fields.insert("coordinateUncertaintyInMeters".into(), Json::from(accuracy))
            }
            None => fields.remove("coordinateUncertaintyInMeters"),
        };
    }
}

/// A record stored although it breaks rules; `problems` lists what to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub id: Uuid,
    pub problems: Vec<FieldProblem>,
}

impl Device {
    /// Creates a record from the form's `fields` (and a GPS fix), validated;
    /// refused with every problem if invalid. Returns its id once on disk.
    pub fn create(
        &self,
        kind: RecordKind,
        fields: &Json,
        gps: Option<&GpsFix>,
    ) -> Result<Uuid, CaptureError> {
        let (id, record) = self.complete_new(kind, fields, gps)?;
        let problems = problems_of(kind, &record);
        if !problems.is_empty() {
            return Err(CaptureError::Invalid(problems));
        }
        self.put_raw(kind, id, &record)?;
        Ok(id)
    }

    /// Creates a record even if it breaks rules (a draft the volunteer finishes
    /// later); returns its id and what is wrong with it.
    pub fn save_draft(
        &self,
        kind: RecordKind,
        fields: &Json,
        gps: Option<&GpsFix>,
    ) -> Result<Draft, CaptureError> {
        let (id, record) = self.complete_new(kind, fields, gps)?;
        let problems = problems_of(kind, &record);
        self.put_raw(kind, id, &record)?;
        Ok(Draft { id, problems })
    }

    /// Stores a complete typed record (its id and system fields as given).
    pub fn put<R: FieldRecord>(&self, record: &R) -> Result<(), CaptureError> {
        let raw = serde_json::to_value(record).map_err(WriteError::from)?;
        let problems = problems_of(R::KIND, &raw);
        if !problems.is_empty() {
            return Err(CaptureError::Invalid(problems));
        }
        self.put_raw(R::KIND, record.id(), &raw)
    }

    /// Changes some fields of a record (`fields` holds only those; `null` clears
    /// an optional one), refused if the result is invalid. Each field is its own
    /// register, so an edit on another phone of another field merges cleanly.
    pub fn edit(
        &self,
        kind: RecordKind,
        id: Uuid,
        fields: &Json,
        gps: Option<&GpsFix>,
    ) -> Result<(), CaptureError> {
        let (changes, merged) = self.complete_edit(kind, id, fields, gps)?;
        let problems = problems_of(kind, &merged);
        if !problems.is_empty() {
            return Err(CaptureError::Invalid(problems));
        }
        self.set_fields(kind, id, &changes)
    }

    /// Like [`Device::edit`], but keeps the result even if invalid; returns what
    /// is still wrong.
    pub fn edit_draft(
        &self,
        kind: RecordKind,
        id: Uuid,
        fields: &Json,
        gps: Option<&GpsFix>,
    ) -> Result<Vec<FieldProblem>, CaptureError> {
        let (changes, merged) = self.complete_edit(kind, id, fields, gps)?;
        self.set_fields(kind, id, &changes)?;
        Ok(problems_of(kind, &merged))
    }

    /// Every record of the notebook, with concurrent values and problems.
    pub fn records(&self) -> Vec<RecordState> {
        self.notebook
            .with_document(|doc| read_notebook(&*doc).records)
    }

    /// One record, if the notebook has it.
    pub fn record(&self, kind: RecordKind, id: Uuid) -> Option<RecordState> {
        let key = id.to_string();
        self.records()
            .into_iter()
            .find(|r| r.kind == kind && r.key == key)
    }

    fn complete_new(
        &self,
        kind: RecordKind,
        fields: &Json,
        gps: Option<&GpsFix>,
    ) -> Result<(Uuid, Json), CaptureError> {
        let Json::Object(fields) = fields else {
            return Err(CaptureError::NotAnObject);
        };
        let mut record = without_system_fields(fields);
        apply_gps(kind, &mut record, gps)?;
        let id = Uuid::new_v4();
        let now = timestamp(Utc::now());
        let identity = &self.identity;
        for (name, value) in [
            ("id", id.to_string()),
            ("authorId", identity.account_id.to_string()),
            ("deviceId", identity.credential.device_id.to_string()),
            ("createdAt", now.clone()),
            ("modifiedAt", now.clone()),
        ] {
            record.insert(name.into(), Json::String(value));
        }
        let event_time = gps.map_or(now, |fix| timestamp(fix.taken_at));
        let mut default = |name: &str, value: Option<String>| {
            if let (false, Some(value)) = (record.contains_key(name), value) {
                record.insert(name.into(), Json::String(value));
            }
        };
        match kind {
            RecordKind::Sighting => {
                default("occurrenceID", Some(format!("urn:uuid:{id}")));
                default("recordedBy", identity.volunteer_name.clone());
                default("eventDate", Some(event_time));
            }
            RecordKind::DegradationReport => default("observedAt", Some(event_time)),
            RecordKind::TimesheetEntry => {
                default("volunteerId", Some(identity.account_id.to_string()))
            }
        }
        Ok((id, Json::Object(record)))
    }

    /// The fields to write, and the whole record as it will read afterwards.
    fn complete_edit(
        &self,
        kind: RecordKind,
        id: Uuid,
        fields: &Json,
        gps: Option<&GpsFix>,
    ) -> Result<(Map<String, Json>, Json), CaptureError> {
        let Json::Object(fields) = fields else {
            return Err(CaptureError::NotAnObject);
        };
        let locked: Vec<FieldProblem> = fields
            .keys()
            .filter(|name| SYSTEM_FIELDS.contains(&name.as_str()))
            .map(|name| {
                FieldProblem::new(name.as_str(), "is set by the phone and cannot be edited")
            })
            .collect();
        if !locked.is_empty() {
            return Err(CaptureError::Invalid(locked));
        }
        let current = self
            .record(kind, id)
            .ok_or(CaptureError::NoRecord(kind, id))?;
        let mut changes = fields.clone();
        apply_gps(kind, &mut changes, gps)?;
        changes.insert("modifiedAt".into(), Json::String(timestamp(Utc::now())));
        let mut merged = match current.raw {
            Json::Object(map) => map,
            _ => Map::new(),
        };
        for (name, value) in &changes {
            if value.is_null() {
                merged.remove(name);
            } else {
                merged.insert(name.clone(), value.clone());
            }
        }
        Ok((changes, Json::Object(merged)))
    }

    fn put_raw(&self, kind: RecordKind, id: Uuid, record: &Json) -> Result<(), CaptureError> {
        self.durably(|doc| put_raw_record(doc, kind, &id.to_string(), record))
    }

    fn set_fields(
        &self,
        kind: RecordKind,
        id: Uuid,
        changes: &Map<String, Json>,
    ) -> Result<(), CaptureError> {
        self.durably(|doc| {
            for (name, value) in changes {
                set_field(doc, kind, id, name, value)?;
            }
            Ok(())
        })
    }

    /// Applies `edit` to the notebook and appends the resulting changes to the
    /// store before samod's lock is released (so before it can sync them).
    fn durably(
        &self,
        edit: impl FnOnce(&mut Automerge) -> Result<(), WriteError>,
    ) -> Result<(), CaptureError> {
        let id = self.notebook.document_id().clone();
        self.notebook.with_document(|doc| {
            let before = doc.get_heads();
            edit(doc)?;
            self.store.append_changes(&id, doc.get_changes(&before))?;
            Ok::<_, CaptureError>(())
        })
        // The status task sees the change and updates the sync status.
    }
}

fn without_system_fields(fields: &Map<String, Json>) -> Map<String, Json> {
    fields
        .iter()
        .filter(|(name, _)| !SYSTEM_FIELDS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

fn apply_gps(
    kind: RecordKind,
    fields: &mut Map<String, Json>,
    gps: Option<&GpsFix>,
) -> Result<(), CaptureError> {
    match (kind, gps) {
        (_, None) => Ok(()),
        (RecordKind::TimesheetEntry, Some(_)) => {
            Err(CaptureError::Invalid(vec![FieldProblem::new(
                "",
                "a timesheet entry has no location: attach no GPS fix",
            )]))
        }
        (_, Some(fix)) => {
            fix.apply(fields);
            Ok(())
        }
    }
}

/// The server's validation, run on the phone.
fn problems_of(kind: RecordKind, raw: &Json) -> Vec<FieldProblem> {
    match kind {
        RecordKind::Sighting => Sighting::from_raw(raw).err(),
        RecordKind::DegradationReport => DegradationReport::from_raw(raw).err(),
        RecordKind::TimesheetEntry => TimesheetEntry::from_raw(raw).err(),
    }
    .unwrap_or_default()
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
