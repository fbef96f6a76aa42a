//! The rows a reviewer reads, typed: one row type per record kind for the
//! review table and the record page, and the two sides of a proposed
//! duplicate. Each type sits beside the column list that fills it, so a
//! field added here is added to its query in the same place.
//!
//! The review table's query is composed from its filters (`filter.rs`), so
//! its rows are read with `query_as` by column name ([`sqlx::FromRow`]); the
//! duplicate pair's sides are read by a static, checked query.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

use schemas::RecordKind;

use super::filter::HAS_POSSIBLE_DUPLICATE;
use crate::inventory::{
    rows::{Conflict, DAY_MINUTES, OUTSIDE_BY_M},
    warnings::Warning,
};

/// One row of the review table or one record page, whatever its kind: each
/// row names its `kind` (a field of its own rather than serde's tag, so the
/// OpenAPI document describes each kind as one plain object).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ReviewRow {
    Sighting(SightingRow),
    DegradationReport(DegradationReportRow),
    TimesheetEntry(TimesheetEntryRow),
}

impl ReviewRow {
    pub fn id(&self) -> Uuid {
        match self {
            ReviewRow::Sighting(row) => row.id,
            ReviewRow::DegradationReport(row) => row.id,
            ReviewRow::TimesheetEntry(row) => row.id,
        }
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            ReviewRow::Sighting(_) => RecordKind::Sighting,
            ReviewRow::DegradationReport(_) => RecordKind::DegradationReport,
            ReviewRow::TimesheetEntry(_) => RecordKind::TimesheetEntry,
        }
    }

    pub fn document_id(&self) -> &str {
        match self {
            ReviewRow::Sighting(row) => &row.document_id,
            ReviewRow::DegradationReport(row) => &row.document_id,
            ReviewRow::TimesheetEntry(row) => &row.document_id,
        }
    }

    /// The row's conflicts, which the conflict queue replaces with their
    /// attributed values.
    pub fn conflicts_mut(&mut self) -> &mut Json<Value> {
        match self {
            ReviewRow::Sighting(row) => &mut row.conflicts,
            ReviewRow::DegradationReport(row) => &mut row.conflicts,
            ReviewRow::TimesheetEntry(row) => &mut row.conflicts,
        }
    }
}

/// A sighting as the review table shows it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct SightingRow {
    /// `sighting`.
    #[schema(example = "sighting")]
    pub kind: String,
    pub id: Uuid,
    /// The notebook document it was synced in.
    pub document_id: String,
    pub scientific_name: String,
    #[serde(rename = "taxonID")]
    #[schema(required = true)]
    pub taxon_id: Option<i64>,
    #[schema(required = true)]
    pub vernacular_name: Option<String>,
    pub event_date: DateTime<Utc>,
    pub decimal_latitude: f64,
    pub decimal_longitude: f64,
    #[schema(required = true)]
    pub coordinate_uncertainty_in_meters: Option<f64>,
    #[schema(required = true)]
    pub individual_count: Option<i64>,
    #[schema(required = true)]
    pub site: Option<String>,
    pub recorded_by: String,
    #[schema(required = true)]
    pub notes: Option<String>,
    /// SHA-256 of each photo.
    pub photos: Vec<String>,
    pub author_id: Uuid,
    /// The author's display name (none once the account is gone).
    #[schema(required = true)]
    pub author_name: Option<String>,
    /// SINP validation status, 0 (not yet) to 6.
    pub validation_status: i16,
    /// The reference record, once a reviewer merged this one into it.
    #[schema(required = true)]
    pub duplicate_of: Option<Uuid>,
    pub has_conflicts: bool,
    /// In the table: field, winner and values. In the conflict queue, each
    /// value with who wrote it and when.
    #[schema(value_type = Vec<Conflict>)]
    pub conflicts: Json<Value>,
    /// Another sighting of the taxon lies within the territory's distance and
    /// time window, and no reviewer merged or dismissed the pair.
    pub possible_duplicate: bool,
    /// What the inventory accepted but a reviewer should look at, as the
    /// inventory's rows word it (`inventory::warnings`).
    #[sqlx(skip)]
    pub warnings: Vec<Warning>,
    pub modified_at: DateTime<Utc>,
}

/// A degradation report as the review table shows it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DegradationReportRow {
    /// `degradation_report`.
    #[schema(example = "degradation_report")]
    pub kind: String,
    pub id: Uuid,
    pub document_id: String,
    pub category: String,
    #[schema(required = true)]
    pub category_detail: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub decimal_latitude: f64,
    pub decimal_longitude: f64,
    #[schema(required = true)]
    pub coordinate_uncertainty_in_meters: Option<f64>,
    pub description: String,
    pub photos: Vec<String>,
    #[schema(required = true)]
    pub site: Option<String>,
    pub author_id: Uuid,
    #[schema(required = true)]
    pub author_name: Option<String>,
    /// Its follow-up step.
    pub status: String,
    #[schema(required = true)]
    pub status_reason: Option<String>,
    /// The steps a coordinator may move it to, by the rule decisions apply
    /// (`review::decisions::follow_up_targets`).
    #[sqlx(skip)]
    pub next_statuses: Vec<String>,
    pub has_conflicts: bool,
    #[schema(value_type = Vec<Conflict>)]
    pub conflicts: Json<Value>,
    /// What the inventory accepted but a reviewer should look at, as the
    /// inventory's rows word it (`inventory::warnings`).
    #[sqlx(skip)]
    pub warnings: Vec<Warning>,
    pub modified_at: DateTime<Utc>,
}

/// A timesheet entry as the review table shows it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TimesheetEntryRow {
    /// `timesheet_entry`.
    #[schema(example = "timesheet_entry")]
    pub kind: String,
    pub id: Uuid,
    pub document_id: String,
    pub volunteer_id: Uuid,
    #[schema(required = true)]
    pub author_name: Option<String>,
    pub work_date: NaiveDate,
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_minutes: i32,
    pub activity: String,
    #[schema(required = true)]
    pub site: Option<String>,
    #[schema(required = true)]
    pub notes: Option<String>,
    pub approval_status: String,
    #[schema(required = true)]
    pub approval_reason: Option<String>,
    #[schema(required = true)]
    pub approved_by: Option<Uuid>,
    #[schema(required = true)]
    pub approved_at: Option<DateTime<Utc>>,
    pub has_conflicts: bool,
    #[schema(value_type = Vec<Conflict>)]
    pub conflicts: Json<Value>,
    /// What the inventory accepted but a reviewer should look at, as the
    /// inventory's rows word it (`inventory::warnings`).
    #[sqlx(skip)]
    pub warnings: Vec<Warning>,
    pub modified_at: DateTime<Utc>,
}

/// The columns of a review row of `kind`, named as its fields (aliases: `t`
/// the record, `tr` its territory, `au` its author's account, as in
/// `Selection::push_from_where`), then what its warnings are measured from
/// (`outside_by_m` and `dated_after_receipt`, or `day_minutes`), read by
/// `filter::review_row`.
pub(crate) fn columns(kind: RecordKind) -> String {
    let own = match kind {
        RecordKind::Sighting => format!(
            "t.id, t.doc_id AS document_id, t.scientific_name, t.taxon_id, \
             t.vernacular_name, t.event_date, ST_Y(t.geom) AS decimal_latitude, \
             ST_X(t.geom) AS decimal_longitude, \
             t.coordinate_uncertainty_m AS coordinate_uncertainty_in_meters, \
             t.individual_count, t.site, t.recorded_by, t.notes, t.photos, t.author_id, \
             au.display_name AS author_name, t.validation_status, t.duplicate_of, \
             t.has_conflicts, t.conflicts, {HAS_POSSIBLE_DUPLICATE} AS possible_duplicate, \
             t.modified_at, {OUTSIDE_BY_M} AS outside_by_m, \
             t.event_date > t.materialised_at AS dated_after_receipt"
        ),
        RecordKind::DegradationReport => format!(
            "t.id, t.doc_id AS document_id, t.category, \
             t.category_detail, t.observed_at, ST_Y(t.geom) AS decimal_latitude, \
             ST_X(t.geom) AS decimal_longitude, \
             t.coordinate_uncertainty_m AS coordinate_uncertainty_in_meters, \
             t.description, t.photos, t.site, t.author_id, au.display_name AS author_name, \
             t.status, t.status_reason, t.has_conflicts, t.conflicts, t.modified_at, \
             {OUTSIDE_BY_M} AS outside_by_m, \
             t.observed_at > t.materialised_at AS dated_after_receipt"
        ),
        RecordKind::TimesheetEntry => format!(
            "t.id, t.doc_id AS document_id, t.volunteer_id, \
             au.display_name AS author_name, t.work_date, t.started_at, t.ended_at, \
             t.duration_minutes, t.activity, t.site, t.notes, t.approval_status, \
             t.approval_reason, t.approved_by, t.approved_at, t.has_conflicts, t.conflicts, \
             t.modified_at, {DAY_MINUTES} AS day_minutes"
        ),
    };
    format!("'{}' AS kind, {own}", kind.as_str())
}

/// A page of the review table.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewPage {
    /// The kind of record listed.
    #[schema(value_type = String, example = "sighting")]
    pub kind: RecordKind,
    /// Rows, newest first.
    pub items: Vec<ReviewRow>,
    /// `after=` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// One side of a proposed duplicate: enough to compare the two sightings.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PairSide {
    pub id: Uuid,
    pub scientific_name: String,
    #[serde(rename = "taxonID")]
    #[schema(required = true)]
    pub taxon_id: Option<i64>,
    pub event_date: DateTime<Utc>,
    pub decimal_latitude: f64,
    pub decimal_longitude: f64,
    #[schema(required = true)]
    pub coordinate_uncertainty_in_meters: Option<f64>,
    #[schema(required = true)]
    pub individual_count: Option<i64>,
    #[schema(required = true)]
    pub site: Option<String>,
    pub photos: Vec<String>,
    pub author_id: Uuid,
    #[schema(required = true)]
    pub author_name: Option<String>,
    pub validation_status: i16,
}

/// Two sightings of one taxon close in space and time.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProposedPair {
    /// The later filed.
    pub a: PairSide,
    pub b: PairSide,
    /// Metres between them, to the decimetre.
    pub distance_m: f64,
    /// Hours between them, to the hundredth.
    pub hours_apart: f64,
}

/// A page of proposed duplicates.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProposalPage {
    /// Pairs, newest first.
    pub items: Vec<ProposedPair>,
    /// `after=` for the next page; null on the last.
    pub next_cursor: Option<String>,
}
