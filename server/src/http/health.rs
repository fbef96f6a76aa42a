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
    audit: AuditBacklog,
}

/// What the audit trail has not chained (all territories): a count only.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AuditBacklog {
    /// Commits whose entries could not be written (each territory's
    /// verification says which and why); 0 when the trail is whole.
    set_aside_commits: i64,
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
    let set_aside_commits: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_commits_set_aside")
        .fetch_one(&state.pool)
        .await?;
    Ok(Json(Health {
        audit: AuditBacklog { set_aside_commits },
        status: "ok",
        database: "ok",
        sync: SyncLoad {
            live_documents: state.sync.live_documents(),
            open_connections: state.sync.access().open_connections(),
        },
    }))
}
