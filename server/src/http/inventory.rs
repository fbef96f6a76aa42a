//! Read access to the materialised inventory (`crate::inventory::rows`),
//! as JSON, limited to the territories where the caller holds a role (an admin reads all). A volunteer
//! reads their territory's inventory, but among invalid records and documents
//! only their own: those are drafts, not yet part of the shared inventory.
//!
//! Every row carries `warnings` (`crate::inventory::warnings`): what is accepted but implausible, for a
//! coordinator to look at (`code`, `field`, `message`): a point outside its
//! territory beyond its uncertainty, a date in the future of when the server
//! received the record, more than 24 hours declared by one volunteer on one day.

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::Method,
    Json,
};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{error::UNAUTHENTICATED, extractor::AuthUser, ApiError, AppState, Routes};
use crate::{
    auth::Role,
    inventory::{
        kinds,
        rows::{
            self, DegradationReport, Document, InvalidRecord, InvalidRecordsReader, Listing,
            Sighting, TimesheetEntry,
        },
    },
};

/// Roles that read everything in their territory, drafts included.
const REVIEWERS: &[Role] = &[Role::Coordinator, Role::RegieAuditor];

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

    /// The rows it selects among those `user` may read.
    fn listing(&self, user: &AuthUser) -> Listing {
        Listing {
            territory: self.territory,
            conflicts: self.conflicts,
            readable: user.readable_territories(),
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
            offset: self.offset.unwrap_or(0),
        }
    }
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
) -> Result<Json<Vec<Sighting>>, ApiError> {
    let listing = ListQuery::from(query, &user)?.listing(&user);
    Ok(Json(rows::sightings(&state.pool, &listing, &user.0).await?))
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
) -> Result<Json<Vec<DegradationReport>>, ApiError> {
    let listing = ListQuery::from(query, &user)?.listing(&user);
    Ok(Json(
        rows::degradation_reports(&state.pool, &listing).await?,
    ))
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
) -> Result<Json<Vec<TimesheetEntry>>, ApiError> {
    let listing = ListQuery::from(query, &user)?.listing(&user);
    Ok(Json(rows::timesheet_entries(&state.pool, &listing).await?))
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
) -> Result<Json<Vec<InvalidRecord>>, ApiError> {
    let query = ListQuery::from(query, &user)?;
    if let Some(kind) = &query.kind {
        if kinds::parse(kind).is_none() {
            return Err(ApiError::bad_request(
                "kind",
                format!("must be {} (got {kind:?})", kinds::KIND_NAMES),
            ));
        }
    }
    let reader = InvalidRecordsReader {
        reviewed: (!user.0.is_admin).then(|| user.0.territories_with(REVIEWERS)),
        drafted: user.0.territories_with(&[Role::Volunteer]),
        owner: user.0.account_id,
    };
    let listing = query.listing(&user);
    Ok(Json(
        rows::invalid_records(&state.pool, &listing, query.kind.as_deref(), &reader).await?,
    ))
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
) -> Result<Json<Document>, ApiError> {
    let document = rows::document(&state.pool, &doc_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("document {doc_id}")))?;
    if document.owner_id != Some(user.0.account_id) {
        user.require_role(
            document.territory_id,
            REVIEWERS,
            "read another person's document",
        )?;
    }
    Ok(Json(document))
}
