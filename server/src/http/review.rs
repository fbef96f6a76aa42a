//! The review API over a territory's inventory. Coordinators (and admins)
//! decide; régie auditors read everything a coordinator reads and decide
//! nothing; volunteers only learn the id of their own review document.

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::Method,
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
    extractor::{query, AuthUser, IdPath, JsonBody},
    ApiError, AppState, Routes,
};
use crate::{
    auth::Role,
    history::RecordHistory,
    review::{
        conflicts::{self, Resolution, Resolved},
        decisions::{self, DecisionRequest},
        duplicates::{self, Pair, Settings},
        filter::Filter,
        publish::review_document,
        rows::{ProposalPage, ReviewPage, ReviewRow},
        ReviewError,
    },
};

const READERS: &[Role] = &[Role::Coordinator, Role::RegieAuditor];
const DECIDERS: &[Role] = &[Role::Coordinator];

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/api/territories/{id}/review/records", records)
        .route(Method::GET, "/api/territories/{id}/review/counts", counts)
        .route(
            Method::GET,
            "/api/territories/{id}/review/records/{record_id}",
            record,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/review/records/{record_id}/history",
            record_history,
        )
        .route(
            Method::POST,
            "/api/territories/{id}/review/decisions",
            decide,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/review/conflicts",
            conflict_queue,
        )
        .route(
            Method::POST,
            "/api/territories/{id}/review/conflicts/{record_id}/resolution",
            resolve_conflict,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/review/duplicates",
            duplicate_proposals,
        )
        .route(
            Method::POST,
            "/api/territories/{id}/review/duplicates/merge",
            merge_duplicates,
        )
        .route(
            Method::POST,
            "/api/territories/{id}/review/duplicates/dismiss",
            dismiss_duplicates,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/review/settings",
            get_settings,
        )
        .route(
            Method::PUT,
            "/api/territories/{id}/review/settings",
            put_settings,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/review-document",
            own_review_document,
        )
}

impl From<ReviewError> for ApiError {
    fn from(error: ReviewError) -> ApiError {
        match error {
            ReviewError::BadRequest { field, message } => ApiError::BadRequest { field, message },
            ReviewError::NotFound(what) => ApiError::NotFound(what),
            ReviewError::Conflict { field, message } => ApiError::Conflict { field, message },
            ReviewError::Unprocessable { field, message } => {
                ApiError::Unprocessable { field, message }
            }
            ReviewError::Storage(reason) => ApiError::Internal(reason),
            ReviewError::Database(error) => ApiError::Database(error),
        }
    }
}

/// `GET …/review/records`: a keyset page of the review table.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/review/records",
    operation_id = "reviewRecords",
    tag = "review",
    params(("id" = Uuid, Path, description = "The territory"), Filter),
    responses(
        (status = 200, description = "One page, newest first", body = ReviewPage),
        (status = 400, description = "A filter is malformed (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators and régie auditors review it", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn records(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    filter: Result<Query<Filter>, QueryRejection>,
) -> Result<Json<ReviewPage>, ApiError> {
    user.require_role(territory, READERS, "review the inventory")?;
    let selection = query(filter)?.check()?;
    Ok(Json(selection.page(&state.read_pool, territory).await?))
}

/// `GET …/review/counts`: the dashboard's figures.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/review/counts",
    operation_id = "reviewCounts",
    tag = "review",
    params(("id" = Uuid, Path, description = "The territory")),
    responses(
        (status = 200, description = "Per kind: `total`, `byStatus`, `conflicts` (and for hours \
            `minutesByStatus`); `invalidRecords`", body = Object),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators and régie auditors review it", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn counts(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, READERS, "review the inventory")?;
    Ok(Json(
        crate::review::counts::counts(&state.pool, territory).await?,
    ))
}

/// `GET …/review/records/{record_id}`: one record, as a row of the review table.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/review/records/{record_id}",
    operation_id = "reviewRecord",
    tag = "review",
    params(
        ("id" = Uuid, Path, description = "The territory"),
        ("record_id" = Uuid, Path, description = "The record (sighting, report or entry)"),
    ),
    responses(
        (status = 200, description = "The record, as a row of the review table", body = ReviewRow),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators and régie auditors review it", body = ApiError),
        (status = 404, description = "No such record in the territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn record(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, record)): Path<(Uuid, Uuid)>,
) -> Result<Json<ReviewRow>, ApiError> {
    user.require_role(territory, READERS, "review the inventory")?;
    Ok(Json(
        crate::review::filter::record(&state.pool, territory, record).await?,
    ))
}

/// `GET …/review/records/{record_id}/history`: current decisions and every step.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/review/records/{record_id}/history",
    operation_id = "reviewRecordHistory",
    tag = "review",
    params(
        ("id" = Uuid, Path, description = "The territory"),
        ("record_id" = Uuid, Path, description = "The record"),
    ),
    responses(
        (status = 200, description = "Its decisions and history", body = RecordHistory),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators and régie auditors read it", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn record_history(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, record)): Path<(Uuid, Uuid)>,
) -> Result<Json<RecordHistory>, ApiError> {
    user.require_role(territory, READERS, "read the review history")?;
    Ok(Json(
        crate::history::of_record(&state.pool, territory, record).await?,
    ))
}

/// What a decision did.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DecisionOutcome {
    /// Records whose decision changed (one history row each).
    changed: usize,
    /// Records that already had it.
    unchanged: usize,
    /// Whether the volunteers' review documents already hold it (if not,
    /// they will within seconds: the decision is kept either way).
    published_to_phones: bool,
}

/// `POST …/review/decisions`: one decision on records (ids or filter), all or nothing.
#[utoipa::path(
    post,
    path = "/api/territories/{id}/review/decisions",
    operation_id = "reviewDecide",
    tag = "review",
    params(("id" = Uuid, Path, description = "The territory")),
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "Taken, on every record or none", body = DecisionOutcome),
        (status = 400, description = "A field is missing or invalid (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators decide", body = ApiError),
        (status = 409, description = "A record cannot take it, e.g. a follow-up move the workflow does not allow (`records[i]`)", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
        (status = 422, description = "A record is not of the territory or kind (`records[i]`), or the filter selects none or too many", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn decide(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    JsonBody(request): JsonBody<DecisionRequest>,
) -> Result<Json<DecisionOutcome>, ApiError> {
    user.require_role(territory, DECIDERS, "take review decisions")?;
    let decided = decisions::decide(&state.pool, territory, user.0.account_id, &request).await?;
    // Taken and kept; a publishing failure is retried by the sweep.
    let published_to_phones = state
        .publisher
        .publish(territory, &decided.volunteers)
        .await
        .is_ok();
    Ok(Json(DecisionOutcome {
        changed: decided.changed,
        unchanged: decided.unchanged,
        published_to_phones,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Page {
    /// `sighting` (default), `degradation_report` or `timesheet_entry`.
    kind: Option<String>,
    /// The `nextCursor` of the previous page.
    after: Option<String>,
    /// Rows per page (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// `GET …/review/conflicts`: records with conflicting edits, each value attributed.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/review/conflicts",
    operation_id = "reviewConflicts",
    tag = "review",
    params(("id" = Uuid, Path, description = "The territory"), Page),
    responses(
        (status = 200, description = "A page of records in conflict; each `conflicts` entry \
            has `field`, `winner` and `values`, each value with `value`, `changeHash`, \
            `writtenAt` (the writer's clock, when it gave one) and `writtenBy` (account, \
            display name, device or session, `receivedAt`)", body = ReviewPage),
        (status = 400, description = "A parameter is malformed (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators and régie auditors review it", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn conflict_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<ReviewPage>, ApiError> {
    user.require_role(territory, READERS, "review the inventory")?;
    let page = query(page)?;
    let filter = Filter {
        kind: page.kind,
        after: page.after,
        limit: page.limit,
        ..Filter::default()
    };
    Ok(Json(
        conflicts::queue(&state.pool, territory, &filter).await?,
    ))
}

/// `POST …/review/conflicts/{record_id}/resolution`: the coordinator's value,
/// written into the record's notebook.
#[utoipa::path(
    post,
    path = "/api/territories/{id}/review/conflicts/{record_id}/resolution",
    operation_id = "reviewResolveConflict",
    tag = "review",
    params(
        ("id" = Uuid, Path, description = "The territory"),
        ("record_id" = Uuid, Path, description = "The record in conflict"),
    ),
    request_body = Resolution,
    responses(
        (status = 200, description = "Written into the record's notebook and stored; every phone converges on it", body = Resolved),
        (status = 400, description = "The field cannot be resolved, or the body is invalid", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators resolve conflicts", body = ApiError),
        (status = 404, description = "No such record in the territory", body = ApiError),
        (status = 409, description = "The field is not (or no longer) in conflict", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
        (status = 422, description = "The value would make the record invalid (`value`)", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn resolve_conflict(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, record)): Path<(Uuid, Uuid)>,
    JsonBody(resolution): JsonBody<Resolution>,
) -> Result<Json<Resolved>, ApiError> {
    user.require_role(territory, DECIDERS, "resolve conflicts")?;
    let resolved = conflicts::resolve(
        &state.pool,
        &state.sync,
        territory,
        record,
        &user.0,
        resolution,
    )
    .await?;
    Ok(Json(resolved))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PairPage {
    /// The `nextCursor` of the previous page.
    after: Option<String>,
    /// Pairs per page (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// `GET …/review/duplicates`: proposed pairs.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/review/duplicates",
    operation_id = "reviewDuplicates",
    tag = "review",
    params(("id" = Uuid, Path, description = "The territory"), PairPage),
    responses(
        (status = 200, description = "Sightings of one taxon within the territory's distance and time window, neither merged nor dismissed", body = ProposalPage),
        (status = 400, description = "A parameter is malformed (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators and régie auditors review it", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn duplicate_proposals(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    page: Result<Query<PairPage>, QueryRejection>,
) -> Result<Json<ProposalPage>, ApiError> {
    user.require_role(territory, READERS, "review the inventory")?;
    let page = query(page)?;
    Ok(Json(
        duplicates::proposals(&state.pool, territory, page.after.as_deref(), page.limit).await?,
    ))
}

/// A merge, done.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Merged {
    reference: Uuid,
    duplicate: Uuid,
    /// Whether the duplicate's volunteer's review document already says so.
    published_to_phones: bool,
}

/// `POST …/review/duplicates/merge`.
#[utoipa::path(
    post,
    path = "/api/territories/{id}/review/duplicates/merge",
    operation_id = "reviewMergeDuplicates",
    tag = "review",
    params(("id" = Uuid, Path, description = "The territory")),
    request_body = Pair,
    responses(
        (status = 200, description = "`duplicate` is marked duplicate of `reference`; both stay in the inventory", body = Merged),
        (status = 400, description = "The body is invalid, or names one record twice", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators merge", body = ApiError),
        (status = 409, description = "The reference is itself a duplicate, or the duplicate is already another's", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
        (status = 422, description = "A record is not a sighting of the territory (named in `field`)", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn merge_duplicates(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    JsonBody(pair): JsonBody<Pair>,
) -> Result<Json<Merged>, ApiError> {
    user.require_role(territory, DECIDERS, "merge duplicates")?;
    let volunteers = duplicates::merge(&state.pool, territory, user.0.account_id, &pair).await?;
    let published_to_phones = state
        .publisher
        .publish(territory, &volunteers)
        .await
        .is_ok();
    Ok(Json(Merged {
        reference: pair.reference,
        duplicate: pair.duplicate,
        published_to_phones,
    }))
}

/// A dismissal, kept.
#[derive(Serialize, ToSchema)]
struct Dismissed {
    /// The pair, never proposed again.
    dismissed: [Uuid; 2],
}

/// `POST …/review/duplicates/dismiss`.
#[utoipa::path(
    post,
    path = "/api/territories/{id}/review/duplicates/dismiss",
    operation_id = "reviewDismissDuplicates",
    tag = "review",
    params(("id" = Uuid, Path, description = "The territory")),
    request_body = Pair,
    responses(
        (status = 200, description = "The pair is not proposed again", body = Dismissed),
        (status = 400, description = "The body is invalid, or names one record twice", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators dismiss", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
        (status = 422, description = "A record is not a sighting of the territory (named in `field`)", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn dismiss_duplicates(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    JsonBody(pair): JsonBody<Pair>,
) -> Result<Json<Dismissed>, ApiError> {
    user.require_role(territory, DECIDERS, "dismiss duplicates")?;
    duplicates::dismiss(&state.pool, territory, user.0.account_id, &pair).await?;
    Ok(Json(Dismissed {
        dismissed: [pair.reference, pair.duplicate],
    }))
}

/// `GET …/review/settings`.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/review/settings",
    operation_id = "reviewSettings",
    tag = "review",
    params(("id" = Uuid, Path, description = "The territory")),
    responses(
        (status = 200, description = "The territory's duplicate settings", body = Settings),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators and régie auditors read them", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn get_settings(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
) -> Result<Json<Settings>, ApiError> {
    user.require_role(territory, READERS, "read the review settings")?;
    Ok(Json(duplicates::settings(&state.pool, territory).await?))
}

/// `PUT …/review/settings`.
#[utoipa::path(
    put,
    path = "/api/territories/{id}/review/settings",
    operation_id = "reviewSetSettings",
    tag = "review",
    params(("id" = Uuid, Path, description = "The territory")),
    request_body = Settings,
    responses(
        (status = 200, description = "The settings now", body = Settings),
        (status = 400, description = "A value is out of range (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators change them", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn put_settings(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    JsonBody(settings): JsonBody<Settings>,
) -> Result<Json<Settings>, ApiError> {
    user.require_role(territory, DECIDERS, "change the review settings")?;
    Ok(Json(
        duplicates::set_settings(&state.pool, territory, &settings).await?,
    ))
}

/// The caller's review document in a territory.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReviewDocument {
    territory_id: Uuid,
    /// The automerge-repo document id to sync (`automerge:<id>`).
    document_id: String,
}

/// `GET /api/territories/{id}/review-document`: the id of the caller's own
/// review document in the territory, which their phone syncs to see the
/// decisions about their records.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/review-document",
    operation_id = "ownReviewDocument",
    tag = "review",
    params(("id" = Uuid, Path, description = "The territory")),
    responses(
        (status = 200, description = "The caller's review document (allocated on first use)", body = ReviewDocument),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in the territory", body = ApiError),
        (status = 404, description = "No such territory (an admin, who holds no role, naming one)", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn own_review_document(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
) -> Result<Json<ReviewDocument>, ApiError> {
    user.require_member(territory)?;
    super::territories::require_territory(&state.pool, territory).await?;
    let id = review_document(&state.pool, territory, user.0.account_id).await?;
    Ok(Json(ReviewDocument {
        territory_id: territory,
        document_id: id.to_string(),
    }))
}
