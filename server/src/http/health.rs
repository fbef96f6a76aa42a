//! `GET /health`: liveness and database reachability, for load balancers —
//! public, and saying nothing about the data: how many documents and sync
//! connections this process holds in memory, for operators watching load.

use axum::{extract::State, http::Method, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState, Routes};

pub fn routes() -> Routes {
    Routes::new().route(Method::GET, "/health", health)
}

/// The process is up and its database answers.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`: a process in trouble answers 500 instead.
    #[schema(example = "ok")]
    status: &'static str,
    /// Always `ok`: the database answered a query.
    #[schema(example = "ok")]
    database: &'static str,
    sync: SyncLoad,
}

/// What this process holds in memory.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SyncLoad {
    /// Documents held live (by a connection, or idle for less than
    /// `--document-idle-secs`).
    live_documents: usize,
    /// Open `/sync` WebSocket connections.
    open_connections: usize,
}

/// Liveness and database reachability
///
/// Public. Answers 500 when the database does not answer.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    responses(
        (status = 200, description = "The process is up and its database answers", body = Health),
    ),
)]
async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    sqlx::query("SELECT 1").execute(&state.pool).await?;
    Ok(Json(Health {
        status: "ok",
        database: "ok",
        sync: SyncLoad {
            live_documents: state.sync.live_documents(),
            open_connections: state.sync.access().open_connections(),
        },
    }))
}
