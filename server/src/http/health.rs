//! `GET /health`: liveness and database reachability, for load balancers —
//! public, and saying nothing about the data: how many documents and sync
//! connections this process holds in memory, for operators watching load.

use axum::{extract::State, http::Method, Json};
use serde_json::{json, Value};

use super::{ApiError, AppState, Routes};

pub fn routes() -> Routes {
    Routes::new().route(Method::GET, "/health", health)
}

async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    sqlx::query("SELECT 1").execute(&state.pool).await?;
    Ok(Json(json!({
        "status": "ok",
        "database": "ok",
        "sync": {
            "liveDocuments": state.sync.live_documents(),
            "openConnections": state.sync.access().open_connections(),
        },
    })))
}
