//! Read access to the materialised inventory, as JSON, limited to the
//! territories where the caller holds a role (an admin reads all). A volunteer
//! reads their territory's inventory, but among invalid records and documents
//! only their own: those are drafts, not yet part of the shared inventory.
//!
//! Every row carries `warnings`: what is accepted but implausible, for a
//! coordinator to look at (`code`, `field`, `message`): a point outside its
//! territory beyond its uncertainty, a date in the future of when the server
//! received the record, more than 24 hours declared by one volunteer on one day.

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::Method,
    Json,
};
use std::collections::{hash_map::Entry, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{error::UNAUTHENTICATED, extractor::AuthUser, ApiError, AppState, Routes};
use crate::{
    auth::Role,
    export::sensitive::{self, Audience, Location, SensitiveTaxa, Subject},
};

/// Roles that read everything in their territory, drafts included.
const REVIEWERS: &[Role] = &[Role::Coordinator, Role::RegieAuditor];

/// The `warnings` of a located record `t` (sightings, reports): its point
/// farther from its territory's boundary than its uncertainty radius (none
/// when the territory has no boundary), and its date (`date_column`, the
/// record's `date_field`) later than when the server received it.
fn point_warnings(date_column: &str, date_field: &str) -> String {
    format!(
        "to_jsonb(array_remove(ARRAY[\
           (SELECT jsonb_build_object('code', 'outsideTerritory', 'field', 'decimalLatitude', \
              'message', format('the point is %s m outside the territory''s boundary, \
                beyond its uncertainty (%s m)', \
                round(ST_Distance(t.geom::geography, b.boundary::geography)::numeric), \
                COALESCE(t.coordinate_uncertainty_m, 0))) \
            FROM territories b WHERE b.id = t.territory_id AND b.boundary IS NOT NULL \
              AND NOT ST_DWithin(t.geom::geography, b.boundary::geography, \
                                 COALESCE(t.coordinate_uncertainty_m, 0))), \
           CASE WHEN t.{date_column} > t.materialised_at THEN jsonb_build_object(\
             'code', 'futureDate', 'field', '{date_field}', \
             'message', '{date_field} is later than when the server received the record') END\
         ], NULL))"
    )
}

const DEFAULT_LIMIT: i64 = 500;
const MAX_LIMIT: i64 = 5000;

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/api/sightings", sightings)
        .route(Method::GET, "/api/degradation-reports", degradation_reports)
        .route(Method::GET, "/api/timesheet-entries", timesheet_entries)
        .route(Method::GET, "/api/invalid-records", invalid_records)
        .route(Method::GET, "/api/documents/{doc_id}", document)
}

/// Filters shared by the list endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only rows of this territory (one where the caller holds a role).
    territory: Option<Uuid>,
    /// Only rows with (true) or without (false) concurrent edits to review.
    conflicts: Option<bool>,
    /// Only invalid records of this kind (documented on that route only).
    #[param(ignore)]
    kind: Option<String>,
    /// At most this many rows (default 500).
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<i64>,
    /// Skip this many rows first (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// Something accepted but implausible about a row, for a coordinator to look at.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
struct Warning {
    /// `outsideTerritory`, `futureDate` (sightings, reports) or
    /// `over24HoursADay` (timesheet entries).
    #[schema(example = "outsideTerritory")]
    code: String,
    /// The field the warning is about.
    field: String,
    message: String,
}

/// A field two phones set concurrently: the row holds `winner`.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
struct Conflict {
    /// The field's JSON name (`individualCount`).
    field: String,
    /// Any JSON value.
    winner: Value,
    /// Every concurrent value, the winner included.
    values: Vec<Value>,
}

/// A sighting of the inventory (Darwin Core terms).
// Documentation only: the query of `sightings` builds this JSON.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Sighting {
    id: Uuid,
    territory_id: Uuid,
    /// The notebook document it was synced in.
    document_id: String,
    #[serde(rename = "occurrenceID")]
    occurrence_id: String,
    scientific_name: String,
    #[serde(rename = "taxonID")]
    #[schema(required = true)]
    taxon_id: Option<i64>,
    #[schema(required = true)]
    vernacular_name: Option<String>,
    event_date: DateTime<Utc>,
    decimal_latitude: f64,
    decimal_longitude: f64,
    #[schema(required = true)]
    coordinate_uncertainty_in_meters: Option<f64>,
    #[schema(required = true)]
    individual_count: Option<i64>,
    occurrence_status: String,
    basis_of_record: String,
    recorded_by: String,
    #[schema(required = true)]
    site: Option<String>,
    #[schema(required = true)]
    notes: Option<String>,
    /// Empty, unless the position was generalised (sensitive species):
    /// then how.
    data_generalizations: String,
    /// Empty, unless something was withheld (sensitive species): then what.
    information_withheld: String,
    /// SHA-256 of each photo (`GET /api/photos/{sha256}`).
    photos: Vec<String>,
    author_id: Uuid,
    device_id: String,
    created_at: DateTime<Utc>,
    modified_at: DateTime<Utc>,
    has_conflicts: bool,
    conflicts: Vec<Conflict>,
    warnings: Vec<Warning>,
}

/// A degradation report of the inventory, with its follow-up.
// Documentation only: the query of `degradation_reports` builds this JSON.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DegradationReport {
    id: Uuid,
    territory_id: Uuid,
    document_id: String,
    #[schema(example = "waste_dumping")]
    category: String,
    /// What `other` means here.
    #[schema(required = true)]
    category_detail: Option<String>,
    observed_at: DateTime<Utc>,
    decimal_latitude: f64,
    decimal_longitude: f64,
    #[schema(required = true)]
    coordinate_uncertainty_in_meters: Option<f64>,
    description: String,
    photos: Vec<String>,
    #[schema(required = true)]
    site: Option<String>,
    /// Follow-up set by coordinators (`received` at first).
    status: String,
    #[schema(required = true)]
    status_reason: Option<String>,
    /// Every status it had, oldest first.
    status_history: Vec<StatusChange>,
    author_id: Uuid,
    device_id: String,
    created_at: DateTime<Utc>,
    modified_at: DateTime<Utc>,
    has_conflicts: bool,
    conflicts: Vec<Conflict>,
    warnings: Vec<Warning>,
}

/// One step of a report's follow-up.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StatusChange {
    status: String,
    #[schema(required = true)]
    reason: Option<String>,
    #[schema(required = true)]
    changed_by: Option<Uuid>,
    changed_at: DateTime<Utc>,
}

/// A timesheet entry of the inventory: a volunteer's hours.
// Documentation only: the query of `timesheet_entries` builds this JSON.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TimesheetEntry {
    id: Uuid,
    territory_id: Uuid,
    document_id: String,
    volunteer_id: Uuid,
    work_date: NaiveDate,
    #[schema(required = true)]
    started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    ended_at: Option<DateTime<Utc>>,
    duration_minutes: i32,
    #[schema(example = "clean_up")]
    activity: String,
    #[schema(required = true)]
    site: Option<String>,
    #[schema(required = true)]
    notes: Option<String>,
    /// Coordinator decision (`pending` at first).
    approval_status: String,
    #[schema(required = true)]
    approved_by: Option<Uuid>,
    #[schema(required = true)]
    approved_at: Option<DateTime<Utc>>,
    author_id: Uuid,
    device_id: String,
    created_at: DateTime<Utc>,
    modified_at: DateTime<Utc>,
    has_conflicts: bool,
    conflicts: Vec<Conflict>,
    warnings: Vec<Warning>,
}

/// Why a record or a document cannot be used as it is.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
struct Problem {
    /// The field at fault (JSON name).
    field: String,
    reason: String,
}

/// A record that failed validation, kept as typed.
// Documentation only: the query of `invalid_records` builds this JSON.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct InvalidRecord {
    document_id: String,
    /// `sighting`, `degradation_report` or `timesheet_entry`.
    kind: String,
    /// The record's key in its notebook.
    record_key: String,
    territory_id: Uuid,
    /// The record as the phone wrote it.
    #[schema(value_type = Object)]
    raw: Value,
    /// Every problem found.
    problems: Vec<Problem>,
    conflicts: Vec<Conflict>,
    first_seen_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A synced document on the server.
// Documentation only: the query of `document` builds this JSON.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Document {
    document_id: String,
    territory_id: Uuid,
    /// The notebook's owner; null until a header names one.
    #[schema(required = true)]
    owner_id: Option<Uuid>,
    /// `notebook`, or `unknown` until a header says so.
    kind: String,
    /// Increases with each stored change.
    revision: i64,
    /// Document-level problems (bad header, a change that rewrote it, a
    /// record that could not be filed).
    problems: Vec<Problem>,
    first_seen_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// One per stored change, in the order received.
    receipts: Vec<Receipt>,
}

/// Who delivered one stored change: the account, and the device or the
/// session whose connection carried it (exactly one of the two).
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Receipt {
    change_hash: String,
    account_id: Uuid,
    #[schema(required = true)]
    device_id: Option<Uuid>,
    #[schema(required = true)]
    session_id: Option<Uuid>,
    received_at: DateTime<Utc>,
}

impl ListQuery {
    /// The query, checked, once the caller may read the territory it names.
    fn from(
        query: Result<Query<ListQuery>, QueryRejection>,
        user: &AuthUser,
    ) -> Result<ListQuery, ApiError> {
        let query = super::extractor::query(query)?;
        if let Some(territory) = query.territory {
            user.require_member(territory)?;
        }
        if let Some(limit) = query.limit {
            if !(1..=MAX_LIMIT).contains(&limit) {
                return Err(ApiError::bad_request(
                    "limit",
                    format!("must be between 1 and {MAX_LIMIT} (got {limit})"),
                ));
            }
        }
        if query.offset.is_some_and(|offset| offset < 0) {
            return Err(ApiError::bad_request("offset", "must not be negative"));
        }
        Ok(query)
    }
}

/// Runs `select` (which yields one JSON object per row, ordered) with the
/// common territory/conflicts/limit/offset filters, within the territories
/// `user` may read.
async fn list(
    state: &AppState,
    user: &AuthUser,
    select: &str,
    query: &ListQuery,
) -> Result<Json<Value>, ApiError> {
    let sql = format!(
        "SELECT COALESCE(jsonb_agg(row), '[]') FROM ( {select} \
         WHERE ($1::uuid IS NULL OR t.territory_id = $1) \
           AND ($2::boolean IS NULL OR t.has_conflicts = $2) \
           AND ($5::uuid[] IS NULL OR t.territory_id = ANY($5)) \
         ORDER BY t.created_at, t.id LIMIT $3 OFFSET $4 ) AS rows"
    );
    let rows: Value = sqlx::query_scalar(&sql)
        .bind(query.territory)
        .bind(query.conflicts)
        .bind(query.limit.unwrap_or(DEFAULT_LIMIT))
        .bind(query.offset.unwrap_or(0))
        .bind(user.readable_territories())
        .fetch_one(&state.pool)
        .await?;
    Ok(Json(rows))
}

/// Lists materialised sightings
///
/// Rows of the caller's territories (admins: all), oldest first, each with
/// its `warnings`. A sighting of a taxon on its territory's sensitive list
/// is shown exactly only to the territory's coordinators and régie
/// auditors, admins and its own observer; anyone else gets it as exports
/// do: at the centre of its grid square, without site, notes, or the
/// concurrent values and warnings of these (`dataGeneralizations` says so).
#[utoipa::path(
    get,
    path = "/api/sightings",
    operation_id = "listSightings",
    params(ListQuery),
    responses(
        (status = 200, description = "The rows", body = [Sighting]),
        (status = 400, description = "A query parameter is invalid (named in `field`; `query` when it does not parse)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in `territory`", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn sightings(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = ListQuery::from(query, &user)?;
    let sql = format!(
        "SELECT jsonb_build_object(\
           'id', t.id, 'territoryId', t.territory_id, 'documentId', t.doc_id, \
           'occurrenceID', t.occurrence_id, 'scientificName', t.scientific_name, \
           'taxonID', t.taxon_id, 'vernacularName', t.vernacular_name, 'eventDate', t.event_date, \
           'individualCount', t.individual_count, 'occurrenceStatus', t.occurrence_status, \
           'basisOfRecord', t.basis_of_record, 'recordedBy', t.recorded_by, \
           'photos', t.photos, 'authorId', t.author_id, 'deviceId', t.device_id, \
           'createdAt', t.created_at, 'modifiedAt', t.modified_at, \
           'hasConflicts', t.has_conflicts, 'conflicts', t.conflicts, \
           'warnings', {warnings}) AS row, \
           t.territory_id, t.author_id, t.taxon_id, t.scientific_name, {location} \
         FROM sightings t {joins} \
         WHERE ($1::uuid IS NULL OR t.territory_id = $1) \
           AND ($2::boolean IS NULL OR t.has_conflicts = $2) \
           AND ($5::uuid[] IS NULL OR t.territory_id = ANY($5)) \
         ORDER BY t.created_at, t.id LIMIT $3 OFFSET $4",
        warnings = point_warnings("event_date", "eventDate"),
        location = sensitive::location_columns("t"),
        joins = sensitive::location_joins("t"),
    );
    let rows: Vec<SightingListRow> = sqlx::query_as(&sql)
        .bind(query.territory)
        .bind(query.conflicts)
        .bind(query.limit.unwrap_or(DEFAULT_LIMIT))
        .bind(query.offset.unwrap_or(0))
        .bind(user.readable_territories())
        .fetch_all(&state.pool)
        .await?;
    // Each territory's list is read once, on its first row.
    let mut lists: HashMap<Uuid, SensitiveTaxa> = HashMap::new();
    let mut conn = state.pool.acquire().await?;
    let mut shown = Vec::with_capacity(rows.len());
    for row in rows {
        let taxa = match lists.entry(row.territory_id) {
            Entry::Occupied(list) => list.into_mut(),
            Entry::Vacant(slot) => {
                slot.insert(SensitiveTaxa::load(&mut conn, row.territory_id).await?)
            }
        };
        shown.push(row.shown_to(&user, taxa));
    }
    Ok(Json(Value::Array(shown)))
}

/// Fields of a sighting that a generalisation withholds or replaces: the
/// concurrent values of these are withheld too.
const LOCATED_FIELDS: [&str; 5] = [
    "decimalLatitude",
    "decimalLongitude",
    "coordinateUncertaintyInMeters",
    "site",
    "notes",
];

/// A row of `GET /api/sightings` before it is shown: its JSON without its
/// location, and what deciding who sees the location needs.
#[derive(sqlx::FromRow)]
struct SightingListRow {
    row: Value,
    territory_id: Uuid,
    author_id: Uuid,
    taxon_id: Option<i64>,
    scientific_name: String,
    #[sqlx(flatten)]
    location: Location,
}

impl SightingListRow {
    /// The row as `user` may see it: a sensitive sighting generalised
    /// (`sensitive::Location::show_to`) unless they may see it exactly, and
    /// then neither the concurrent values of its location, site and notes
    /// nor a warning measuring its exact point go out either.
    fn shown_to(mut self, user: &AuthUser, taxa: &SensitiveTaxa) -> Value {
        let subject = Subject {
            territory: self.territory_id,
            author: self.author_id,
            taxon_id: self.taxon_id,
            scientific_name: &self.scientific_name,
        };
        self.location
            .show_to(Audience::Reader(&user.0), &subject, taxa);
        let location = &self.location;
        let mut row = self.row;
        let Value::Object(fields) = &mut row else {
            return row;
        };
        if location.generalised {
            for (key, located) in [("conflicts", "field"), ("warnings", "field")] {
                if let Some(Value::Array(items)) = fields.get_mut(key) {
                    items.retain(|item| {
                        !item[located]
                            .as_str()
                            .is_some_and(|field| LOCATED_FIELDS.contains(&field))
                    });
                }
            }
        }
        for (key, value) in [
            ("decimalLatitude", json!(location.latitude)),
            ("decimalLongitude", json!(location.longitude)),
            (
                "coordinateUncertaintyInMeters",
                json!(location.uncertainty_m),
            ),
            ("site", json!(location.site)),
            ("notes", json!(location.notes)),
            (
                "dataGeneralizations",
                json!(location.data_generalizations()),
            ),
            (
                "informationWithheld",
                json!(location.information_withheld()),
            ),
        ] {
            fields.insert(key.to_string(), value);
        }
        row
    }
}

/// Lists degradation reports with their follow-up
///
/// Rows of the caller's territories (admins: all), oldest first, each with
/// its `warnings`.
#[utoipa::path(
    get,
    path = "/api/degradation-reports",
    operation_id = "listDegradationReports",
    params(ListQuery),
    responses(
        (status = 200, description = "The rows", body = [DegradationReport]),
        (status = 400, description = "A query parameter is invalid (named in `field`; `query` when it does not parse)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in `territory`", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn degradation_reports(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = ListQuery::from(query, &user)?;
    list(
        &state,
        &user,
        &format!(
            "SELECT jsonb_build_object(\
           'id', t.id, 'territoryId', t.territory_id, 'documentId', t.doc_id, \
           'category', t.category, 'categoryDetail', t.category_detail, \
           'observedAt', t.observed_at, 'decimalLatitude', ST_Y(t.geom), \
           'decimalLongitude', ST_X(t.geom), \
           'coordinateUncertaintyInMeters', t.coordinate_uncertainty_m, \
           'description', t.description, 'photos', t.photos, 'site', t.site, \
           'status', t.status, 'statusReason', t.status_reason, \
           'statusHistory', (SELECT COALESCE(jsonb_agg(jsonb_build_object(\
               'status', h.status, 'reason', h.reason, 'changedBy', h.changed_by, \
               'changedAt', h.changed_at) ORDER BY h.changed_at, h.seq), '[]') \
             FROM (SELECT status, reason, changed_by, changed_at, 0::bigint AS seq \
                   FROM degradation_status_history WHERE report_id = t.id \
                   UNION ALL SELECT status, reason, decided_by, decided_at, id \
                   FROM review_history WHERE record_id = t.id AND action = 'follow_up') h), \
           'authorId', t.author_id, 'deviceId', t.device_id, 'createdAt', t.created_at, \
           'modifiedAt', t.modified_at, 'hasConflicts', t.has_conflicts, \
           'conflicts', t.conflicts, \
           'warnings', {warnings}) AS row \
         FROM degradation_reports t",
            warnings = point_warnings("observed_at", "observedAt")
        ),
        &query,
    )
    .await
}

/// Lists volunteer hours
///
/// Rows of the caller's territories (admins: all), oldest first, each with
/// its `warnings`.
#[utoipa::path(
    get,
    path = "/api/timesheet-entries",
    operation_id = "listTimesheetEntries",
    params(ListQuery),
    responses(
        (status = 200, description = "The rows", body = [TimesheetEntry]),
        (status = 400, description = "A query parameter is invalid (named in `field`; `query` when it does not parse)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in `territory`", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn timesheet_entries(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = ListQuery::from(query, &user)?;
    list(
        &state,
        &user,
        "SELECT jsonb_build_object(\
           'id', t.id, 'territoryId', t.territory_id, 'documentId', t.doc_id, \
           'volunteerId', t.volunteer_id, 'workDate', t.work_date, 'startedAt', t.started_at, \
           'endedAt', t.ended_at, 'durationMinutes', t.duration_minutes, \
           'activity', t.activity, 'site', t.site, 'notes', t.notes, \
           'approvalStatus', t.approval_status, 'approvedBy', t.approved_by, \
           'approvedAt', t.approved_at, 'authorId', t.author_id, 'deviceId', t.device_id, \
           'createdAt', t.created_at, 'modifiedAt', t.modified_at, \
           'hasConflicts', t.has_conflicts, 'conflicts', t.conflicts, \
           'warnings', to_jsonb(array_remove(ARRAY[\
             (SELECT jsonb_build_object('code', 'over24HoursADay', 'field', 'durationMinutes', \
                'message', format('%s minutes declared by this volunteer on %s, more than 24 hours', \
                  sum(o.duration_minutes), t.work_date)) \
              FROM timesheet_entries o \
              WHERE o.volunteer_id = t.volunteer_id AND o.work_date = t.work_date \
              HAVING sum(o.duration_minutes) > 1440)\
           ], NULL))) AS row \
         FROM timesheet_entries t",
        &query,
    )
    .await
}

/// Lists records that failed validation
///
/// Coordinators and auditors see their territories' invalid records; a
/// volunteer sees those of the documents they own.
#[utoipa::path(
    get,
    path = "/api/invalid-records",
    operation_id = "listInvalidRecords",
    params(
        ListQuery,
        ("kind" = Option<String>, Query, description = "Only records of this kind: `sighting`, `degradation_report` or `timesheet_entry`"),
    ),
    responses(
        (status = 200, description = "The records, oldest first", body = [InvalidRecord]),
        (status = 400, description = "A query parameter is invalid (named in `field`; `query` when it does not parse)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in `territory`", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn invalid_records(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = ListQuery::from(query, &user)?;
    if let Some(kind) = &query.kind {
        if !["sighting", "degradation_report", "timesheet_entry"].contains(&kind.as_str()) {
            return Err(ApiError::bad_request(
                "kind",
                format!("must be sighting, degradation_report or timesheet_entry (got {kind:?})"),
            ));
        }
    }
    let rows: Value = sqlx::query_scalar(
        "SELECT COALESCE(jsonb_agg(row), '[]') FROM ( \
           SELECT jsonb_build_object('documentId', doc_id, 'kind', kind, 'recordKey', record_key, \
             'territoryId', territory_id, 'raw', raw, 'problems', problems, \
             'conflicts', conflicts, 'firstSeenAt', first_seen_at, 'updatedAt', updated_at) AS row \
           FROM invalid_records \
           WHERE ($1::uuid IS NULL OR territory_id = $1) AND ($2::text IS NULL OR kind = $2) \
             AND ($3::boolean IS NULL OR (jsonb_array_length(conflicts) > 0) = $3) \
             AND ($6::uuid[] IS NULL OR territory_id = ANY($6) \
                  OR (territory_id = ANY($7) AND doc_id IN ( \
                        SELECT doc_id FROM documents WHERE owner_id = $8))) \
           ORDER BY first_seen_at, doc_id, record_key LIMIT $4 OFFSET $5 ) AS rows",
    )
    .bind(query.territory)
    .bind(&query.kind)
    .bind(query.conflicts)
    .bind(query.limit.unwrap_or(DEFAULT_LIMIT))
    .bind(query.offset.unwrap_or(0))
    .bind((!user.0.is_admin).then(|| user.0.territories_with(REVIEWERS)))
    .bind(user.0.territories_with(&[Role::Volunteer]))
    .bind(user.0.account_id)
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(rows))
}

/// One synced document
///
/// A document's state on the server: revision, document-level problems, and
/// the receipt of every change (who delivered it, over which device or session).
/// For its owner, the coordinators and auditors of its territory, and admins.
#[utoipa::path(
    get,
    path = "/api/documents/{doc_id}",
    operation_id = "showDocument",
    params(("doc_id" = String, Path, description = "The automerge document id (base58check)")),
    responses(
        (status = 200, description = "The document", body = Document),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Another person's notebook, and the caller neither coordinates nor audits its territory", body = ApiError),
        (status = 404, description = "No such document", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn document(
    State(state): State<AppState>,
    user: AuthUser,
    Path(doc_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row: Option<(Uuid, Option<Uuid>, Value)> = sqlx::query_as(
        "SELECT territory_id, owner_id, jsonb_build_object('documentId', doc_id, \
           'territoryId', territory_id, 'ownerId', owner_id, 'kind', kind, 'revision', revision, \
           'problems', problems, 'firstSeenAt', first_seen_at, 'updatedAt', updated_at, \
           'receipts', (SELECT COALESCE(jsonb_agg(jsonb_build_object('changeHash', r.change_hash, \
               'accountId', r.account_id, 'deviceId', r.device_id, 'sessionId', r.session_id, \
               'receivedAt', r.received_at) ORDER BY r.received_at, r.change_hash), '[]') \
             FROM change_receipts r WHERE r.doc_id = documents.doc_id)) \
         FROM documents WHERE doc_id = $1",
    )
    .bind(&doc_id)
    .fetch_optional(&state.pool)
    .await?;
    let (territory, owner, document) =
        row.ok_or_else(|| ApiError::NotFound(format!("document {doc_id}")))?;
    if owner != Some(user.0.account_id) {
        user.require_role(territory, REVIEWERS, "read another person's document")?;
    }
    Ok(Json(document))
}
