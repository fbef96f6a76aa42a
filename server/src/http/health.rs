//! `GET /health`: liveness and database reachability, for load balancers —
//! public, and saying nothing about the data: how many documents and sync
//! connections this process holds in memory, for operators watching load.
//! `GET /ready`: whether this process should be sent traffic — its database
//! answers, every migration it knows is applied, and it is not shutting
//! down. A process that is alive but not ready is left alone by a balancer,
//! not restarted.

use axum::{extract::State, http::Method, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState, Routes};

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/health", health)
        .route(Method::GET, "/ready", ready)
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

/// The process takes traffic.
#[derive(Serialize, ToSchema)]
struct Ready {
    /// Always true: a process that is not ready answers 503.
    ready: bool,
}

/// Readiness, for balancers
///
/// Public. 200 when the database answers, every migration this build holds
/// is applied and the process is not shutting down; otherwise 503, its
/// message saying which (`database unreachable: …`, `migrations pending: …`,
/// `draining`).
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "ready",
    responses(
        (status = 200, description = "The process takes traffic", body = Ready),
        (status = 503, description = "It does not; the message says why (code `not_ready`)", body = ApiError),
    ),
)]
async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if state.draining.is_cancelled() {
        return Err(ApiError::NotReady("draining".to_string()));
    }
    match unready_database(&state.pool).await {
        Some(reason) => Err(ApiError::NotReady(reason)),
        None => Ok(Json(Ready { ready: true })),
    }
}

/// Why the database is not ready for this build, if it is not. Bounded in
/// time: a balancer's probe must not hang on a database that does not answer.
async fn unready_database(pool: &sqlx::PgPool) -> Option<String> {
    let latest = crate::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied = tokio::time::timeout(
        READY_TIMEOUT,
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT max(version) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(pool),
    )
    .await;
    match applied {
        Err(_) => Some(format!(
            "database unreachable: no answer within {} s",
            READY_TIMEOUT.as_secs()
        )),
        Ok(Err(error)) => Some(format!("database unreachable: {error}")),
        Ok(Ok(applied)) if applied.unwrap_or(0) < latest => Some(format!(
            "migrations pending: the database is at {}, this build needs {latest}",
            applied.unwrap_or(0)
        )),
        Ok(Ok(_)) => None,
    }
}

/// How long `/ready` waits for the database.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
