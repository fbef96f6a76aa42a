//! Password sessions for the web/API (coordinators, auditors, admins) and
//! `GET /api/me`: who the presented credential stands for.

use axum::{extract::State, http::Method, http::StatusCode, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    extractor::{AuthUser, JsonBody},
    ApiError, AppState, Routes,
};
use crate::auth::{admin, Credential};

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::POST, "/api/auth/login", login)
        .route(Method::POST, "/api/auth/logout", logout)
        .route(Method::GET, "/api/me", me)
}

/// No Debug: it holds a password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<Value>, ApiError> {
    let session = admin::login(&state.pool, &request.email, &request.password)
        .await?
        // One message for both cases: which part was wrong is for the person
        // who knows the password to find out.
        .ok_or_else(|| ApiError::BadSecret("the email or the password is wrong".to_string()))?;
    Ok(Json(
        json!({ "token": session.token, "expiresAt": session.expires_at }),
    ))
}

async fn logout(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<StatusCode, ApiError> {
    match principal.credential {
        Credential::Session { session_id } => {
            admin::logout(&state.pool, session_id).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        Credential::Device { device_id } => Err(ApiError::forbidden(format!(
            "a device credential is not a session; to stop this phone syncing, revoke it: \
             POST /api/devices/{device_id}/revoke"
        ))),
    }
}

async fn me(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<Json<Value>, ApiError> {
    let email: Option<String> = sqlx::query_scalar("SELECT email FROM accounts WHERE id = $1")
        .bind(principal.account_id)
        .fetch_one(&state.pool)
        .await?;
    let territories: Vec<Uuid> = principal
        .memberships
        .iter()
        .map(|m| m.territory_id)
        .collect();
    let names: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, name FROM territories WHERE id = ANY($1)")
            .bind(&territories)
            .fetch_all(&state.pool)
            .await?;
    let memberships: Vec<Value> = principal
        .memberships
        .iter()
        .map(|m| {
            let name = names
                .iter()
                .find(|(id, _)| *id == m.territory_id)
                .map(|(_, name)| name);
            json!({ "territoryId": m.territory_id, "territoryName": name, "role": m.role })
        })
        .collect();
    let credential = match principal.credential {
        Credential::Session { session_id } => json!({ "kind": "session", "id": session_id }),
        Credential::Device { device_id } => json!({ "kind": "device", "id": device_id }),
    };
    Ok(Json(json!({
        "accountId": principal.account_id,
        "displayName": principal.display_name,
        "email": email,
        "isAdmin": principal.is_admin,
        "memberships": memberships,
        "credential": credential,
    })))
}
