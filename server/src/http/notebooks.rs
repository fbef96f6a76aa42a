//! `GET /api/territories/{id}/notebooks`: the caller's own notebooks in a
//! territory, so a volunteer's second device (a browser) syncs the notebook
//! their first phone already filled instead of starting another one.

use axum::{extract::State, http::Method, Json};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    error::UNAUTHENTICATED,
    extractor::{AuthUser, IdPath},
    ApiError, AppState, Routes,
};

pub fn routes() -> Routes {
    Routes::new().route(
        Method::GET,
        "/api/territories/{id}/notebooks",
        own_notebooks,
    )
}

/// The caller's notebooks in the territory.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Notebooks {
    /// Most recently written first.
    notebooks: Vec<Notebook>,
}

/// One notebook the server holds.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
struct Notebook {
    /// The automerge-repo document id to sync (`automerge:<id>`).
    document_id: String,
    /// Records the server filed from it (inventory rows and invalid records).
    records: i64,
    /// When a change to it was last stored.
    updated_at: DateTime<Utc>,
}

/// `GET /api/territories/{id}/notebooks`.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/notebooks",
    operation_id = "ownNotebooks",
    tag = "notebooks",
    params(("id" = Uuid, Path, description = "The territory")),
    responses(
        (status = 200, description = "The caller's own notebooks in the territory (none listed: start one)", body = Notebooks),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in the territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn own_notebooks(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
) -> Result<Json<Notebooks>, ApiError> {
    user.require_member(territory)?;
    let notebooks: Vec<Notebook> = sqlx::query_as(
        "SELECT d.doc_id AS document_id, d.updated_at, \
           (SELECT count(*) FROM sightings r WHERE r.doc_id = d.doc_id) \
           + (SELECT count(*) FROM degradation_reports r WHERE r.doc_id = d.doc_id) \
           + (SELECT count(*) FROM timesheet_entries r WHERE r.doc_id = d.doc_id) \
           + (SELECT count(*) FROM invalid_records r WHERE r.doc_id = d.doc_id) AS records \
         FROM documents d \
         WHERE d.owner_id = $1 AND d.territory_id = $2 AND d.kind = 'notebook' \
         ORDER BY d.updated_at DESC, d.doc_id",
    )
    .bind(user.0.account_id)
    .bind(territory)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(Notebooks { notebooks }))
}
