//! `POST /api/accounts`: an admin creates the accounts of people who log in
//! with a password (coordinators, auditors, other admins). Volunteers get
//! theirs by redeeming an invitation on their phone. `GET /api/accounts`:
//! an admin finds an account (to grant it a role, to disable it); `POST
//! /api/accounts/{id}/disable|enable`: someone who left is cut off at once,
//! sessions and phones, and brought back if they return; `POST
//! /api/accounts/{id}/erasure`: a person erased at their request (RGPD
//! art. 17, `crate::personal_data::erasure`). `POST
//! /api/password-resets`: an admin issues a one-time code for a person who
//! forgot their password (redeemed at `POST /api/auth/password-reset`).

use axum::{
    extract::{rejection::QueryRejection, Query, State},
    http::Method,
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
    extractor::{query, AuthUser, IdPath, JsonBody},
    ApiError, AppState, Routes,
};
use crate::{
    auth::{admin, password_reset, Credential, Role},
    personal_data::erasure::{self, ErasureError, ErasureReport},
};

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/api/accounts", list)
        .route(Method::POST, "/api/accounts", create)
        .route(Method::POST, "/api/accounts/{id}/disable", disable)
        .route(Method::POST, "/api/accounts/{id}/enable", enable)
        .route(Method::POST, "/api/accounts/{id}/erasure", erase)
        .route(Method::POST, "/api/password-resets", issue_password_reset)
}

/// Accounts listed when `limit` is not given.
const DEFAULT_LIMIT: i64 = 200;
/// Most accounts one list holds.
const MAX_LIMIT: i64 = 1000;
/// Longest search text: a name or an email.
const MAX_SEARCH_CHARS: usize = 254;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AccountsQuery {
    /// Only accounts whose display name or email contains this text, in any case.
    q: Option<String>,
    /// At most this many accounts (default 200).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// An account as admins list it.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
struct ListedAccount {
    id: Uuid,
    display_name: String,
    /// Null for volunteers who only use their phones.
    #[schema(required = true)]
    email: Option<String>,
    is_admin: bool,
    /// Disabled: it can neither log in nor sync until an admin enables it.
    disabled: bool,
    /// Erased (RGPD art. 17): known by a pseudonym from then on, and never
    /// enabled again.
    erased: bool,
    created_at: DateTime<Utc>,
    /// Every role it holds, by territory name.
    #[sqlx(json)]
    memberships: Vec<AccountMembership>,
}

/// A role an account holds in a territory.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AccountMembership {
    territory_id: Uuid,
    territory_name: String,
    role: Role,
}

/// Accounts as [`ListedAccount`]s: those whose display name or email
/// contains `search` (any case), or the one `only` names; by display name.
async fn listed_accounts(
    pool: &PgPool,
    search: Option<&str>,
    only: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ListedAccount>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.display_name, a.email, a.is_admin, a.disabled_at IS NOT NULL AS disabled, \
           a.erased_at IS NOT NULL AS erased, a.created_at, \
           (SELECT COALESCE(jsonb_agg(jsonb_build_object('territoryId', t.id, \
                      'territoryName', t.name, 'role', m.role) ORDER BY t.name, t.id, m.role), '[]') \
            FROM memberships m JOIN territories t ON t.id = m.territory_id \
            WHERE m.account_id = a.id) AS memberships \
         FROM accounts a \
         WHERE ($1::text IS NULL OR strpos(lower(a.display_name), lower($1)) > 0 \
                OR strpos(lower(COALESCE(a.email, '')), lower($1)) > 0) \
           AND ($2::uuid IS NULL OR a.id = $2) \
         ORDER BY a.display_name, a.id \
         LIMIT $3",
    )
    .bind(search)
    .bind(only)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One account as [`listed_accounts`] lists it.
async fn listed_account(pool: &PgPool, account: Uuid) -> Result<ListedAccount, ApiError> {
    listed_accounts(pool, None, Some(account), 1)
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("account {account}")))
}

/// Lists accounts (admins)
///
/// By display name; `q` finds a person by a part of their name or email.
#[utoipa::path(
    get,
    path = "/api/accounts",
    operation_id = "listAccounts",
    params(AccountsQuery),
    responses(
        (status = 200, description = "The accounts, by display name", body = [ListedAccount]),
        (status = 400, description = "`limit` is out of range, `q` too long (named in `field`), or the query is malformed (`field`: `query`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only an admin lists accounts", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    filter: Result<Query<AccountsQuery>, QueryRejection>,
) -> Result<Json<Vec<ListedAccount>>, ApiError> {
    user.require_admin("list accounts")?;
    let filter = query(filter)?;
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "limit",
            format!("must be between 1 and {MAX_LIMIT} (got {limit})"),
        ));
    }
    let search = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if search.is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS) {
        return Err(ApiError::bad_request(
            "q",
            format!("must be at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    Ok(Json(
        listed_accounts(&state.pool, search, None, limit).await?,
    ))
}

/// Disables an account (admins)
///
/// Its password no longer logs in, its sessions end, its phones are refused
/// (they are not revoked: enabling the account brings them back), and its
/// open sync connections and live streams close at once. Disabling a
/// disabled account changes nothing.
#[utoipa::path(
    post,
    path = "/api/accounts/{id}/disable",
    operation_id = "disableAccount",
    params(("id" = Uuid, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account, disabled", body = ListedAccount),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only an admin disables accounts", body = ApiError),
        (status = 404, description = "No such account", body = ApiError),
        (status = 409, description = "An admin cannot disable their own account (`field`: `id`)", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn disable(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(account): IdPath,
) -> Result<Json<ListedAccount>, ApiError> {
    user.require_admin("disable accounts")?;
    if account == user.0.account_id {
        return Err(ApiError::Conflict {
            field: "id".to_string(),
            message: "you cannot disable your own account; another admin can".to_string(),
        });
    }
    admin::disable_account(&state.pool, account, user.0.account_id).await?;
    tracing::info!(%account, by = %user.0.account_id, "account disabled");
    Ok(Json(listed_account(&state.pool, account).await?))
}

/// Enables a disabled account (admins)
///
/// Its phones sync again and its password logs in again; its ended sessions
/// stay ended. An erased account cannot be enabled.
#[utoipa::path(
    post,
    path = "/api/accounts/{id}/enable",
    operation_id = "enableAccount",
    params(("id" = Uuid, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account, enabled", body = ListedAccount),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only an admin enables accounts", body = ApiError),
        (status = 404, description = "No such account", body = ApiError),
        (status = 409, description = "The account was erased: it stays disabled for good (`field`: `id`)", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn enable(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(account): IdPath,
) -> Result<Json<ListedAccount>, ApiError> {
    user.require_admin("enable accounts")?;
    admin::enable_account(&state.pool, account).await?;
    tracing::info!(%account, by = %user.0.account_id, "account enabled");
    Ok(Json(listed_account(&state.pool, account).await?))
}

/// Erases a person (admins)
///
/// At the person's request (RGPD art. 17), and for good: the account keeps
/// its records under a pseudonym, without email, password, roles, sessions
/// or phones; each of their notebooks is replaced by a copy without history
/// whose records lose their `notes` and have the pseudonym as `recordedBy`
/// (the old notebook is retired: no phone can sync it again); the audit
/// trail's values of those fields are replaced by a marker naming the
/// erasure, which is itself appended to the chain of every territory the
/// person worked in, so the chain still verifies. docs/PRIVACY.md says
/// what remains.
#[utoipa::path(
    post,
    path = "/api/accounts/{id}/erasure",
    operation_id = "eraseAccount",
    params(("id" = Uuid, Path, description = "The account's id")),
    responses(
        (status = 200, description = "What the erasure did", body = ErasureReport),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only an admin erases people", body = ApiError),
        (status = 404, description = "No such account", body = ApiError),
        (status = 409, description = "The account is the admin's own, or already erased (`field`: `id`)", body = ApiError),
        (status = 503, description = "The person's notebooks kept receiving commits; try again", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn erase(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(account): IdPath,
) -> Result<Json<ErasureReport>, ApiError> {
    user.require_admin("erase people")?;
    if account == user.0.account_id {
        return Err(ApiError::Conflict {
            field: "id".to_string(),
            message: "you cannot erase your own account; another admin can".to_string(),
        });
    }
    let session = match user.0.credential {
        Credential::Session { session_id } => Some(session_id),
        Credential::Device { .. } => None,
    };
    let report = erasure::erase(&state.pool, account, user.0.account_id, session)
        .await
        .map_err(|error| match error {
            ErasureError::NotFound(_) => ApiError::NotFound(format!("account {account}")),
            ErasureError::AlreadyErased(_) => ApiError::Conflict {
                field: "id".to_string(),
                message: format!("account {account} is already erased"),
            },
            ErasureError::Busy => ApiError::NotReady(error.to_string()),
            ErasureError::Database(error) => ApiError::Database(error),
            ErasureError::Unusable(reason) => ApiError::Internal(reason),
        })?;
    Ok(Json(report))
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
