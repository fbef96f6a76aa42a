//! Reports of damage to nature written by volunteers, and the follow-up coordinators
//! record on them (which régies audit).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::checks::{
    self, LATITUDE_MAX, LATITUDE_MIN, LONGITUDE_MAX, LONGITUDE_MIN,
    MAX_COORDINATE_UNCERTAINTY_METERS, NOT_BLANK, SHA256_HEX,
};
use crate::limits::{MAX_PHOTOS_PER_RECORD, NAME_MAX_CHARS, TEXT_MAX_CHARS};
use crate::{FieldProblem, FieldRecord, RecordKind};

/// Long enough for a detailed account, short enough to read on a phone.
const DESCRIPTION_MAX_CHARS: u64 = TEXT_MAX_CHARS;
/// Says in a few words what `other` means.
const CATEGORY_DETAIL_MAX_CHARS: u64 = 500;

/// What kind of damage was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DegradationCategory {
    WasteDumping,
    FelledOrDamagedTreesOrHedges,
    WaterPollution,
    DamagedWetland,
    PesticideUse,
    HarmToProtectedSpeciesOrHabitat,
    InvasiveAlienSpecies,
    LightPollution,
    Other,
}

/// A volunteer's report of damage to nature at one place and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DegradationReport {
    pub id: Uuid,
    /// The volunteer account that wrote the report.
    pub author_id: Uuid,
    #[schemars(regex(pattern = NOT_BLANK), length(max = NAME_MAX_CHARS))]
    pub device_id: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,

    pub category: DegradationCategory,
    /// Says what the damage is when `category` is `other`, so it can be triaged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = CATEGORY_DETAIL_MAX_CHARS))]
    pub category_detail: Option<String>,
    pub observed_at: DateTime<Utc>,
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
    #[schemars(regex(pattern = NOT_BLANK), length(max = DESCRIPTION_MAX_CHARS))]
    pub description: String,
    /// SHA-256 (lowercase hex) of each photo's bytes; the photos travel separately.
    #[serde(default)]
    #[schemars(
        length(max = MAX_PHOTOS_PER_RECORD),
        inner(regex(pattern = SHA256_HEX), length(max = 64))
    )]
    pub photos: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = NAME_MAX_CHARS))]
    pub site: Option<String>,
}

impl FieldRecord for DegradationReport {
    const KIND: RecordKind = RecordKind::DegradationReport;

    fn id(&self) -> Uuid {
        self.id
    }

    fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        checks::metadata(&mut out, &self.device_id, self.created_at, self.modified_at);
        if self.category == DegradationCategory::Other
            && self
                .category_detail
                .as_deref()
                .is_none_or(|d| d.trim().is_empty())
        {
            out.push(FieldProblem::new(
                "categoryDetail",
                "is required when category is \"other\"",
            ));
        }
        checks::not_in_future(&mut out, "observedAt", self.observed_at, Utc::now());
        checks::position(
            &mut out,
            self.decimal_latitude,
            self.decimal_longitude,
            self.coordinate_uncertainty_in_meters,
        );
        checks::not_blank(&mut out, "description", &self.description);
        checks::max_chars(
            &mut out,
            "description",
            &self.description,
            DESCRIPTION_MAX_CHARS,
        );
        checks::content_hashes(&mut out, "photos", &self.photos);
        out
    }
}

/// Where a report stands in its follow-up. Declaration order is the only direction a
/// report may move in, hence `Ord`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DegradationStatus {
    Received,
    UnderAnalysis,
    ActionTaken,
    Closed,
}

impl DegradationStatus {
    fn as_str(self) -> &'static str {
        match self {
            DegradationStatus::Received => "received",
            DegradationStatus::UnderAnalysis => "under_analysis",
            DegradationStatus::ActionTaken => "action_taken",
            DegradationStatus::Closed => "closed",
        }
    }
}

/// One step of a report's follow-up, written by a coordinator into the coordinator
/// document (never by the volunteer who reported).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: DegradationStatus,
    /// Why the status changed; required when closing so an audit can tell a fixed
    /// problem from a dismissed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub changed_by: Uuid,
    pub changed_at: DateTime<Utc>,
}

/// Checks a report's follow-up history: it starts at `received`, only moves forward
/// (skipping steps is fine, going back or repeating a status is not), closing gives a
/// reason, and time does not run backwards. Fields are named `statusHistory[i].…`.
pub fn check_status_history(history: &[StatusChange]) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    let Some(first) = history.first() else {
        out.push(FieldProblem::new(
            "statusHistory",
            "must start with \"received\" (got no status at all)",
        ));
        return out;
    };
    if first.status != DegradationStatus::Received {
        out.push(FieldProblem::new(
            "statusHistory[0].status",
            format!(
                "must be \"received\", the first status (got \"{}\")",
                first.status.as_str()
            ),
        ));
    }
    for (index, change) in history.iter().enumerate() {
        if change.status == DegradationStatus::Closed
            && change.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            out.push(FieldProblem::new(
                format!("statusHistory[{index}].reason"),
                "is required when closing",
            ));
        }
        let Some(previous) = index.checked_sub(1).map(|i| &history[i]) else {
            continue;
        };
        if change.status <= previous.status {
            out.push(FieldProblem::new(
                format!("statusHistory[{index}].status"),
                format!(
                    "cannot go back or stay: must move forward from \"{}\" (got \"{}\")",
                    previous.status.as_str(),
                    change.status.as_str()
                ),
            ));
        }
        if change.changed_at < previous.changed_at {
            out.push(FieldProblem::new(
                format!("statusHistory[{index}].changedAt"),
                format!(
                    "must not be before the previous change ({}) (got {})",
                    previous.changed_at.to_rfc3339(),
                    change.changed_at.to_rfc3339()
                ),
            ));
        }
    }
    out
}
