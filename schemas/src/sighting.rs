//! Species sightings (Darwin Core occurrences) and the coordinator's review of them.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::checks::{
    self, LATITUDE_MAX, LATITUDE_MIN, LONGITUDE_MAX, LONGITUDE_MIN,
    MAX_COORDINATE_UNCERTAINTY_METERS, NOT_BLANK, SHA256_HEX,
};
use crate::limits::{
    MAX_PHOTOS_PER_RECORD, NAME_MAX_CHARS, SCIENTIFIC_NAME_MAX_CHARS, TEXT_MAX_CHARS,
};
use crate::{FieldProblem, FieldRecord, RecordKind};

/// Darwin Core `occurrenceStatus`: an absence ("searched here, not found") is data too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OccurrenceStatus {
    #[default]
    Present,
    Absent,
}

/// Darwin Core `basisOfRecord`: a person saw it, or a device (camera trap, bat
/// detector) recorded it. Spelled as in the Darwin Core vocabulary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum BasisOfRecord {
    #[default]
    HumanObservation,
    MachineObservation,
}

/// One species seen (or searched for and not seen) at one place and time, aligned on
/// Darwin Core terms so exports to GBIF / SINP need no renaming.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sighting {
    pub id: Uuid,
    /// The volunteer account that wrote the record.
    pub author_id: Uuid,
    #[schemars(regex(pattern = NOT_BLANK), length(max = NAME_MAX_CHARS))]
    pub device_id: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,

    /// Darwin Core `occurrenceID`: the identifier exported to GBIF / SINP. It is
    /// `urn:uuid:<id>`, derived from the record's id, so no two records of the
    /// service (whose ids are unique) can share one.
    #[serde(rename = "occurrenceID")]
    #[schemars(regex(pattern = NOT_BLANK), length(max = NAME_MAX_CHARS))]
    pub occurrence_id: String,
    #[schemars(regex(pattern = NOT_BLANK), length(max = SCIENTIFIC_NAME_MAX_CHARS))]
    pub scientific_name: String,
    /// TAXREF `cd_nom`, the French national taxonomic reference.
    #[serde(rename = "taxonID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub taxon_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = NAME_MAX_CHARS))]
    pub vernacular_name: Option<String>,
    pub event_date: DateTime<Utc>,
    /// WGS84 (EPSG:4326).
    #[schemars(range(min = LATITUDE_MIN, max = LATITUDE_MAX))]
    pub decimal_latitude: f64,
    /// WGS84 (EPSG:4326).
    #[schemars(range(min = LONGITUDE_MIN, max = LONGITUDE_MAX))]
    pub decimal_longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        extend("exclusiveMinimum" = 0),
        range(max = MAX_COORDINATE_UNCERTAINTY_METERS)
    )]
    pub coordinate_uncertainty_in_meters: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub individual_count: Option<i64>,
    #[serde(default)]
    pub occurrence_status: OccurrenceStatus,
    #[serde(default)]
    pub basis_of_record: BasisOfRecord,
    /// Free text: a person, a pupil group, a display name. Who wrote the record
    /// is `authorId`, which the server binds to the notebook's owner.
    #[schemars(regex(pattern = NOT_BLANK), length(max = NAME_MAX_CHARS))]
    pub recorded_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = NAME_MAX_CHARS))]
    pub site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TEXT_MAX_CHARS))]
    pub notes: Option<String>,
    /// SHA-256 (lowercase hex) of each photo's bytes; the photos travel separately.
    #[serde(default)]
    #[schemars(
        length(max = MAX_PHOTOS_PER_RECORD),
        inner(regex(pattern = SHA256_HEX), length(max = 64))
    )]
    pub photos: Vec<String>,
}

impl Sighting {
    /// An absence with a positive count contradicts itself (Darwin Core: an absent
    /// occurrence has individualCount 0 or none).
    pub fn occurrence_status_absent_requires_zero_count(&self) -> Option<FieldProblem> {
        match (self.occurrence_status, self.individual_count) {
            (OccurrenceStatus::Absent, Some(count)) if count > 0 => Some(FieldProblem::new(
                "individualCount",
                format!("must be 0 or left out when occurrenceStatus is \"absent\" (got {count})"),
            )),
            _ => None,
        }
    }
}

impl Sighting {
    /// The `occurrenceID` a sighting with this id carries.
    pub fn occurrence_id_for(id: Uuid) -> String {
        format!("urn:uuid:{id}")
    }

    /// An `occurrenceID` other than `urn:uuid:<id>` could be another record's.
    fn occurrence_id_is_derived_from_the_id(&self) -> Option<FieldProblem> {
        let derived = self
            .occurrence_id
            .get(..9)
            .filter(|scheme| scheme.eq_ignore_ascii_case("urn:uuid:"))
            .and_then(|_| Uuid::parse_str(&self.occurrence_id[9..]).ok())
            == Some(self.id);
        (!derived).then(|| {
            FieldProblem::new(
                "occurrenceID",
                format!(
                    "must be {}, derived from the record's id, so that no two records share it (got {})",
                    Sighting::occurrence_id_for(self.id),
                    checks::quoted(&self.occurrence_id)
                ),
            )
        })
    }
}

impl FieldRecord for Sighting {
    const KIND: RecordKind = RecordKind::Sighting;

    fn id(&self) -> Uuid {
        self.id
    }

    fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        checks::metadata(&mut out, &self.device_id, self.created_at, self.modified_at);
        checks::not_blank(&mut out, "occurrenceID", &self.occurrence_id);
        out.extend(self.occurrence_id_is_derived_from_the_id());
        checks::not_blank(&mut out, "scientificName", &self.scientific_name);
        checks::max_chars(
            &mut out,
            "scientificName",
            &self.scientific_name,
            SCIENTIFIC_NAME_MAX_CHARS,
        );
        if let Some(taxon_id) = self.taxon_id {
            checks::integer_at_least(&mut out, "taxonID", taxon_id, 1);
        }
        checks::not_in_future(&mut out, "eventDate", self.event_date, Utc::now());
        checks::position(
            &mut out,
            self.decimal_latitude,
            self.decimal_longitude,
            self.coordinate_uncertainty_in_meters,
        );
        if let Some(count) = self.individual_count {
            checks::integer_at_least(&mut out, "individualCount", count, 0);
        }
        out.extend(self.occurrence_status_absent_requires_zero_count());
        checks::not_blank(&mut out, "recordedBy", &self.recorded_by);
        checks::content_hashes(&mut out, "photos", &self.photos);
        out
    }
}

/// Darwin Core `identificationVerificationStatus`, as decided by a coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    Unverified,
    Verified,
    Rejected,
    /// The coordinator cannot tell; a specialist of the group must look at it.
    NeedsExpert,
}

/// A coordinator's verdict on a sighting's identification. Kept apart from [`Sighting`]
/// because volunteers never write it and it must not be merged with their edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SightingReview {
    pub sighting_id: Uuid,
    pub identification_verification_status: VerificationStatus,
    pub reviewed_by: Uuid,
    pub reviewed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}
