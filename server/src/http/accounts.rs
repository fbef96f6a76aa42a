//! `POST /api/accounts`: an admin creates the accounts of people who log in
//! with a password (coordinators, auditors, other admins). Volunteers get
//! theirs by redeeming an invitation on their phone.

use axum::{extract::State, http::Method, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
    extractor::{AuthUser, JsonBody},
    ApiError, AppState, Routes,
};
use crate::auth::admin;

pub fn routes() -> Routes {
    Routes::new().route(Method::POST, "/api/accounts", create)
}

/// No Debug: it holds a password.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAccount {
    /// Trimmed, 1 to 200 characters.
    #[schema(example = "Camille Martin")]
    display_name: String,
    /// Unique, case-insensitively; needed with a password.
    #[schema(example = "camille@example.org")]
    email: Option<String>,
    /// At least 12 characters. Without one (and without an email) the
    /// account only enrols phones.
    #[schema(format = Password, min_length = 12)]
    password: Option<String>,
    #[serde(default)]
    is_admin: bool,
}

/// A new account.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Account {
    id: Uuid,
    display_name: String,
    #[schema(required = true)]
    email: Option<String>,
    is_admin: bool,
}

/// Creates an account (admins)
#[utoipa::path(
    post,
    path = "/api/accounts",
    operation_id = "createAccount",
    request_body = NewAccount,
    responses(
        (status = 201, description = "The account is created", body = Account),
        (status = 400, description = "A field is missing or invalid (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only an admin creates accounts", body = ApiError),
        (status = 409, description = "An account has this email already (`field`: `email`)", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(account): JsonBody<NewAccount>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
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
        Json(Account {
            id,
            display_name: account.display_name.trim().to_string(),
            email: account
                .email
                .as_deref()
                .map(|email| email.trim().to_string()),
            is_admin: account.is_admin,
        }),
    ))
}
