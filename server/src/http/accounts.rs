//! `POST /api/accounts`: an admin creates the accounts of people who log in
//! with a password (coordinators, auditors, other admins). Volunteers get
//! theirs by redeeming an invitation on their phone.

use axum::{extract::State, http::Method, http::StatusCode, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    extractor::{AuthUser, JsonBody},
    ApiError, AppState, Routes,
};
use crate::auth::admin;

pub fn routes() -> Routes {
    Routes::new().route(Method::POST, "/api/accounts", create)
}

/// No Debug: it holds a password.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAccount {
    display_name: String,
    email: Option<String>,
    password: Option<String>,
    #[serde(default)]
    is_admin: bool,
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(account): JsonBody<NewAccount>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    user.require_admin("create accounts")?;
    let id = admin::create_account(
        &state.pool,
        &account.display_name,
        account.email.as_deref(),
        account.password.as_deref(),
        account.is_admin,
    )
    .await?;
    tracing::info!(account = %id, by = %user.0.account_id, is_admin = account.is_admin, "account created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "displayName": account.display_name.trim(),
            "email": account.email.as_deref().map(str::trim),
            "isAdmin": account.is_admin,
        })),
    ))
}
