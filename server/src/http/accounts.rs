//! `POST /api/accounts`: an admin creates the accounts of people who log in
//! with a password (coordinators, auditors, other admins). Volunteers get
//! theirs by redeeming an invitation on their phone. `POST
//! /api/password-resets`: an admin issues a one-time code for a person who
//! forgot their password (redeemed at `POST /api/auth/password-reset`).

use axum::{extract::State, http::Method, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
    extractor::{AuthUser, JsonBody},
    ApiError, AppState, Routes,
};
use crate::auth::{admin, password_reset};

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::POST, "/api/accounts", create)
        .route(Method::POST, "/api/password-resets", issue_password_reset)
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResetFor {
    /// The email the person logs in with (any case).
    #[schema(example = "camille@example.org")]
    email: String,
}

/// A one-time password reset, to pass on to its person.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct IssuedReset {
    account_id: Uuid,
    /// The code (`fnr_…`), shown once; the person types it on the web app's
    /// reset page, or opens `/#/reset?code=<code>`.
    code: String,
    /// 24 hours after issuing.
    expires_at: DateTime<Utc>,
}

/// Issues a one-time password reset code (admins)
///
/// For a person who forgot their password: the admin passes the code on by a
/// channel they trust. A new code withdraws the account's unused ones.
#[utoipa::path(
    post,
    path = "/api/password-resets",
    operation_id = "issuePasswordReset",
    request_body = ResetFor,
    responses(
        (status = 201, description = "The code, shown once", body = IssuedReset),
        (status = 400, description = "The body is not `{email}`", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only an admin issues password resets", body = ApiError),
        (status = 404, description = "No active account has this email", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn issue_password_reset(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(request): JsonBody<ResetFor>,
) -> Result<(StatusCode, Json<IssuedReset>), ApiError> {
    user.require_admin("issue password resets")?;
    let issued = password_reset::issue(&state.pool, user.0.account_id, &request.email).await?;
    tracing::info!(account = %issued.account_id, by = %user.0.account_id, "password reset issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedReset {
            account_id: issued.account_id,
            code: issued.code,
            expires_at: issued.expires_at,
        }),
    ))
}
