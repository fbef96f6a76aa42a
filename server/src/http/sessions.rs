//! Password sessions for the web/API (coordinators, auditors, admins) and
//! `GET /api/me`: who the presented credential stands for.

use axum::{extract::State, http::Method, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
    extractor::{AuthUser, IdPath, JsonBody},
    ApiError, AppState, Routes,
};
use crate::auth::{
    admin,
    own_account::{self, OpenSession},
    password_reset, Credential, Role,
};

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::POST, "/api/auth/login", login)
        .route(Method::POST, "/api/auth/logout", logout)
        .route(Method::POST, "/api/auth/password-reset", reset_password)
        .route(Method::GET, "/api/me", me)
        .route(Method::GET, "/api/me/data", my_data)
        .route(Method::PUT, "/api/me/password", change_password)
        .route(Method::GET, "/api/me/sessions", sessions)
        .route(Method::DELETE, "/api/me/sessions/{id}", end_session)
}

/// No Debug: it holds a password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    #[schema(example = "camille@example.org")]
    email: String,
    #[schema(format = Password)]
    password: String,
}

/// A new web session.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Session {
    /// The session token (`fns_…`), shown once: send it as `Authorization:
    /// Bearer <token>`.
    token: String,
    /// 12 hours after the login.
    expires_at: DateTime<Utc>,
}

/// Logs in with a password
///
/// Public. At most 10 attempts, right or wrong, per email in 15 minutes.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A new session", body = Session),
        (status = 400, description = "The body is not `{email, password}`", body = ApiError),
        (status = 401, description = "The email or the password is wrong (which one is not said)", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
        (status = 429, description = "Too many attempts for this email", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds until an attempt is counted again"))),
    ),
)]
async fn login(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<Session>, ApiError> {
    let session = admin::login(&state.pool, &request.email, &request.password)
        .await?
        // One message for both cases: which part was wrong is for the person
        // who knows the password to find out.
        .ok_or_else(|| ApiError::BadSecret {
            code: "wrong_password",
            message: "the email or the password is wrong".to_string(),
        })?;
    Ok(Json(Session {
        token: session.token,
        expires_at: session.expires_at,
    }))
}

/// Ends the caller's session
///
/// For sessions only: a phone's device credential is revoked instead
/// (`POST /api/devices/{id}/revoke`).
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    operation_id = "logout",
    responses(
        (status = 204, description = "The session is ended; its token is refused from now on"),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The credential is a device's, not a session", body = ApiError),
    ),
    security(("bearer" = [])),
)]
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

/// The caller: their account, roles and credential.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Me {
    account_id: Uuid,
    display_name: String,
    /// Null for accounts that only enrol phones.
    #[schema(required = true)]
    email: Option<String>,
    is_admin: bool,
    /// One entry per role held in a territory.
    memberships: Vec<MeMembership>,
    credential: PresentedCredential,
}

/// A role the caller holds in one territory.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MeMembership {
    territory_id: Uuid,
    #[schema(required = true)]
    territory_name: Option<String>,
    role: Role,
}

/// The credential this request presented, by id (never the secret).
#[derive(Serialize, ToSchema)]
struct PresentedCredential {
    kind: CredentialKind,
    /// The session's id, or the device's.
    id: Uuid,
}

/// A web session (password login) or a phone's device credential (enrolment).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum CredentialKind {
    Session,
    Device,
}

/// Who the caller is
#[utoipa::path(
    get,
    path = "/api/me",
    operation_id = "me",
    responses(
        (status = 200, description = "The caller's account, roles and credential", body = Me),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn me(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<Json<Me>, ApiError> {
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
    let memberships = principal
        .memberships
        .iter()
        .map(|m| MeMembership {
            territory_id: m.territory_id,
            territory_name: names
                .iter()
                .find(|(id, _)| *id == m.territory_id)
                .map(|(_, name)| name.clone()),
            role: m.role,
        })
        .collect();
    let credential = match principal.credential {
        Credential::Session { session_id } => PresentedCredential {
            kind: CredentialKind::Session,
            id: session_id,
        },
        Credential::Device { device_id } => PresentedCredential {
            kind: CredentialKind::Device,
            id: device_id,
        },
    };
    Ok(Json(Me {
        account_id: principal.account_id,
        display_name: principal.display_name,
        email,
        is_admin: principal.is_admin,
        memberships,
        credential,
    }))
}

/// No Debug: it holds passwords.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PasswordChange {
    #[schema(format = Password)]
    old_password: String,
    /// At least 12 characters.
    #[schema(format = Password)]
    new_password: String,
}

/// A password, changed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PasswordChanged {
    /// The caller's other sessions, ended by the change.
    sessions_ended: u64,
}

/// The session a request came with: a phone's device credential does not
/// manage passwords or web sessions.
fn session_of(credential: &Credential, what: &str) -> Result<Uuid, ApiError> {
    match credential {
        Credential::Session { session_id } => Ok(*session_id),
        Credential::Device { .. } => Err(ApiError::forbidden(format!(
            "a phone's device credential cannot {what}; log in with a password"
        ))),
    }
}

/// Changes the caller's password
///
/// The old password is required. Every other session of the account ends
/// (the one making the change stays open).
#[utoipa::path(
    put,
    path = "/api/me/password",
    operation_id = "changeOwnPassword",
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed; the other sessions are ended", body = PasswordChanged),
        (status = 400, description = "`oldPassword` is wrong or `newPassword` too short or too long (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The credential is a phone's, not a session", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
        (status = 429, description = "Too many attempts with a wrong old password", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds until an attempt is counted again"))),
    ),
    security(("bearer" = [])),
)]
async fn change_password(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    JsonBody(change): JsonBody<PasswordChange>,
) -> Result<Json<PasswordChanged>, ApiError> {
    let current = session_of(&principal.credential, "change a password")?;
    let sessions_ended = own_account::change_password(
        &state.pool,
        principal.account_id,
        current,
        &change.old_password,
        &change.new_password,
    )
    .await?;
    Ok(Json(PasswordChanged { sessions_ended }))
}

/// The caller's open web sessions
#[utoipa::path(
    get,
    path = "/api/me/sessions",
    operation_id = "ownSessions",
    responses(
        (status = 200, description = "Open sessions, newest first; `current` marks this request's", body = [OpenSession]),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The credential is a phone's, not a session", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn sessions(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<Json<Vec<OpenSession>>, ApiError> {
    let current = session_of(&principal.credential, "list web sessions")?;
    Ok(Json(
        own_account::open_sessions(&state.pool, principal.account_id, current).await?,
    ))
}

/// Ends one of the caller's sessions
#[utoipa::path(
    delete,
    path = "/api/me/sessions/{id}",
    operation_id = "endOwnSession",
    params(("id" = Uuid, Path, description = "One of the caller's open sessions")),
    responses(
        (status = 204, description = "Ended; its token is refused from now on"),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The credential is a phone's, not a session", body = ApiError),
        (status = 404, description = "No open session of the caller's has this id", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn end_session(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    IdPath(session): IdPath,
) -> Result<StatusCode, ApiError> {
    session_of(&principal.credential, "end web sessions")?;
    own_account::end_session(&state.pool, principal.account_id, session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// No Debug: it holds a secret and a password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PasswordReset {
    /// The code an admin issued (`fnr_…`).
    code: String,
    /// At least 12 characters.
    #[schema(format = Password)]
    new_password: String,
}

/// Sets a new password with a reset code
///
/// Public: the code is the secret. It works once, within 24 hours; every
/// session of the account ends.
#[utoipa::path(
    post,
    path = "/api/auth/password-reset",
    operation_id = "resetPassword",
    request_body = PasswordReset,
    responses(
        (status = 204, description = "The password is set; log in with it"),
        (status = 400, description = "`newPassword` is too short or too long, or the body is invalid", body = ApiError),
        (status = 401, description = "The code is not known", body = ApiError),
        (status = 410, description = "The code was used, replaced by a newer one, or has expired", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
)]
async fn reset_password(
    State(state): State<AppState>,
    JsonBody(reset): JsonBody<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    password_reset::redeem(&state.pool, &reset.code, &reset.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything the service holds about you
///
/// Your account, roles and phones, every record of your notebooks as the
/// notebook holds it, and the coordinators' decisions about them, as one
/// JSON file to keep or take elsewhere (RGPD art. 15 and 20; what else is
/// kept about you, and for how long: docs/PRIVACY.md).
#[utoipa::path(
    get,
    path = "/api/me/data",
    operation_id = "myData",
    responses(
        (status = 200, description = "Your data, as a JSON download", body = crate::personal_data::PersonalData),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn my_data(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let data = crate::personal_data::export(&state.pool, user.0.account_id)
        .await
        .map_err(|error| ApiError::Internal(format!("exporting personal data: {error:#}")))?
        .ok_or(ApiError::Unauthorized)?;
    tracing::info!(account = %user.0.account_id, "personal data exported");
    Ok((
        [(
            axum::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"fieldnotes-my-data.json\"",
        )],
        Json(data),
    ))
}
