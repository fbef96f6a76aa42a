//! The review API over a territory's inventory. Coordinators (and admins)
//! decide; régie auditors read everything a coordinator reads and decide
//! nothing; volunteers only learn the id of their own review document.

use axum::{
    extract::{rejection::JsonRejection, rejection::QueryRejection, Path, Query, State},
    http::Method,
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{extractor::AuthUser, ApiError, AppState, Routes};
use crate::{
    auth::Role,
    review::{
        conflicts::{self, Resolution},
        decisions::{self, DecisionRequest},
        duplicates::{self, Pair, Settings},
        filter::Filter,
        history,
        publish::review_document,
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

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| ApiError::bad_request("query", rejection.body_text()))
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(body)| body)
        .map_err(|rejection| ApiError::bad_request("body", rejection.body_text()))
}

/// `GET …/review/records`: a keyset page of the review table.
async fn records(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    filter: Result<Query<Filter>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, READERS, "review the inventory")?;
    let selection = query(filter)?.check()?;
    Ok(Json(selection.page(&state.pool, territory).await?))
}

/// `GET …/review/counts`: the dashboard's figures.
async fn counts(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, READERS, "review the inventory")?;
    Ok(Json(
        crate::review::filter::counts(&state.pool, territory).await?,
    ))
}

/// `GET …/review/records/{record_id}/history`: current decisions and every step.
async fn record_history(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, record)): Path<(Uuid, Uuid)>,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, READERS, "read the review history")?;
    Ok(Json(
        history::of_record(&state.pool, territory, record).await?,
    ))
}

/// `POST …/review/decisions`: one decision on records (ids or filter), all or nothing.
async fn decide(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    request: Result<Json<DecisionRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, DECIDERS, "take review decisions")?;
    let request = body(request)?;
    let decided = decisions::decide(&state.pool, territory, user.0.account_id, &request).await?;
    // Taken and kept; a publishing failure is retried by the sweep.
    let published = state
        .publisher
        .publish(territory, &decided.volunteers)
        .await
        .is_ok();
    Ok(Json(json!({
        "changed": decided.changed,
        "unchanged": decided.unchanged,
        "publishedToPhones": published,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    kind: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET …/review/conflicts`: records with conflicting edits, each value attributed.
async fn conflict_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
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
async fn resolve_conflict(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, record)): Path<(Uuid, Uuid)>,
    resolution: Result<Json<Resolution>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, DECIDERS, "resolve conflicts")?;
    let resolution = body(resolution)?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PairPage {
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET …/review/duplicates`: proposed pairs.
async fn duplicate_proposals(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    page: Result<Query<PairPage>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, READERS, "review the inventory")?;
    let page = query(page)?;
    Ok(Json(
        duplicates::proposals(&state.pool, territory, page.after.as_deref(), page.limit).await?,
    ))
}

/// `POST …/review/duplicates/merge`.
async fn merge_duplicates(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    pair: Result<Json<Pair>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, DECIDERS, "merge duplicates")?;
    let pair = body(pair)?;
    let volunteers = duplicates::merge(&state.pool, territory, user.0.account_id, &pair).await?;
    let published = state
        .publisher
        .publish(territory, &volunteers)
        .await
        .is_ok();
    Ok(Json(json!({
        "reference": pair.reference,
        "duplicate": pair.duplicate,
        "publishedToPhones": published,
    })))
}

/// `POST …/review/duplicates/dismiss`.
async fn dismiss_duplicates(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    pair: Result<Json<Pair>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, DECIDERS, "dismiss duplicates")?;
    let pair = body(pair)?;
    duplicates::dismiss(&state.pool, territory, user.0.account_id, &pair).await?;
    Ok(Json(
        json!({ "dismissed": [pair.reference, pair.duplicate] }),
    ))
}

/// `GET …/review/settings`.
async fn get_settings(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
) -> Result<Json<Settings>, ApiError> {
    user.require_role(territory, READERS, "read the review settings")?;
    Ok(Json(duplicates::settings(&state.pool, territory).await?))
}

/// `PUT …/review/settings`.
async fn put_settings(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    settings: Result<Json<Settings>, JsonRejection>,
) -> Result<Json<Settings>, ApiError> {
    user.require_role(territory, DECIDERS, "change the review settings")?;
    let settings = body(settings)?;
    Ok(Json(
        duplicates::set_settings(&state.pool, territory, &settings).await?,
    ))
}

/// `GET /api/territories/{id}/review-document`: the id of the caller's own
/// review document in the territory, which their phone syncs to see the
/// decisions about their records.
async fn own_review_document(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    user.require_member(territory)?;
    let id = review_document(&state.pool, territory, user.0.account_id).await?;
    Ok(Json(
        json!({ "territoryId": territory, "documentId": id.to_string() }),
    ))
}
