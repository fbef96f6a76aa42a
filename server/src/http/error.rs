//! One error type for every handler: each failure maps to a status and a JSON
//! body `{"error": {"code": …, "field": …, "message": …}}` naming the field at
//! fault. `code` is stable, for the apps to translate (`wrong_password`,
//! `invitation_expired`, …); `message` says it in English, with the details.
//!
//! Messages are written for the person at the other end and never contain a
//! secret: a refused password, token or invitation code is never echoed back.
//!
//! In the OpenAPI document (`super::openapi`) that body is the schema
//! `ApiError`: handlers' annotations say `body = ApiError` for their errors.

use axum::{
    http::{
        header::{RETRY_AFTER, WWW_AUTHENTICATE},
        HeaderValue, StatusCode,
    },
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::{
    openapi::{schema::Schema, RefOr},
    PartialSchema, ToSchema,
};

use crate::auth::AuthError;

/// How the OpenAPI document (`super::openapi`) describes every route's 401:
/// kept with the error, so that the handlers describing their answers need
/// not import the document that lists them.
pub const UNAUTHENTICATED: &str =
    "No credential, or one that is unknown, expired or revoked (`WWW-Authenticate: Bearer`)";

/// How the OpenAPI document describes the 413 of every route that reads a JSON body.
pub const BODY_TOO_LARGE: &str =
    "The JSON body is above 2 MiB (`field`: `Content-Length`, or `body` for a longer chunked one)";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    /// No credential, or one that is unknown, expired or revoked.
    #[error("authentication required")]
    Unauthorized,
    /// A secret presented to obtain a credential (password, invitation code)
    /// was refused; the message says what to do without saying which part was
    /// wrong. `code`: `wrong_password`, `unknown_invitation` or `unknown_reset_code`.
    #[error("{message}")]
    BadSecret { code: &'static str, message: String },
    /// Authenticated, but this principal may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    /// No route serves this path (the path only: a query may hold a token).
    #[error("no route {method} {path}")]
    NoRoute { method: String, path: String },
    /// The path is served, but not for this method.
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// Larger than the server accepts (a photo above the configured maximum,
    /// a JSON body above [`super::MAX_JSON_BODY_BYTES`]).
    #[error("{field}: {message}")]
    TooLarge { field: String, message: String },
    /// Not of a type the route accepts (a text file sent as a photo).
    #[error("{field}: {message}")]
    UnsupportedMediaType { field: String, message: String },
    /// Well formed but not what it claims to be (a photo whose bytes do not
    /// hash to its address).
    #[error("{field}: {message}")]
    Unprocessable { field: String, message: String },
    /// Existed once, cannot be used any more (a redeemed or expired
    /// invitation, a used or withdrawn password reset). `code`: `invitation_used`,
    /// `invitation_expired` or `reset_code_unusable`.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// Throttled (too many login attempts); the client may retry after that long.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: std::time::Duration,
    },
    /// This process should not be sent traffic now (`/ready`): its database
    /// is unreachable, migrations are pending, or it is shutting down.
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

/// The JSON body of every answer that is not a success.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid", "field": "limit", "message": "must be between 1 and 5000 (got 0)"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, and where.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, as a stable machine code the apps translate (the
    /// message is English): `invalid` (400), `unauthenticated`,
    /// `wrong_password`, `unknown_invitation`, `unknown_reset_code` (401), `forbidden` (403),
    /// `not_found`, `no_route` (404), `method_not_allowed` (405), `conflict`
    /// (409), `invitation_used`, `invitation_expired`, `reset_code_unusable` (410), `too_large`
    /// (413), `unsupported_media_type` (415), `unprocessable` (422),
    /// `too_many_requests` (429), `internal` (500), `server_busy` (503, every
    /// connection taken), `not_ready` (503, from `/ready`).
    #[schema(example = "invalid")]
    pub code: &'static str,
    /// The field at fault, as the client names it: a JSON field (`role`,
    /// `boundary.coordinates`), a query parameter (`limit`), a header
    /// (`Content-Range`), `body`, `id`; null when no one field is at fault.
    #[schema(required = true)]
    pub field: Option<String>,
    /// What is wrong and what to do, for the person at the other end.
    pub message: String,
}

/// An [`ApiError`] is documented as the body it becomes, [`ErrorBody`], under
/// the name `ApiError`.
impl PartialSchema for ApiError {
    fn schema() -> RefOr<Schema> {
        ErrorBody::schema()
    }
}

impl ToSchema for ApiError {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        ErrorBody::schemas(schemas);
    }
}

impl ApiError {
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn forbidden(why: impl Into<String>) -> Self {
        ApiError::Forbidden(why.into())
    }

    /// The stable code of the answer (see [`ErrorDetail::code`]).
    pub fn code(&self) -> &'static str {
        match *self {
            ApiError::BadRequest { .. } => "invalid",
            ApiError::Unauthorized => "unauthenticated",
            ApiError::BadSecret { code, .. } | ApiError::Gone { code, .. } => code,
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::NoRoute { .. } => "no_route",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::Unprocessable { .. } => "unprocessable",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Database(_) | ApiError::Internal(_) => "internal",
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid { field, message } => ApiError::bad_request(field, message),
            AuthError::NotFound(what) => ApiError::NotFound(what),
            AuthError::Conflict { field, message } => ApiError::Conflict {
                field: field.to_string(),
                message,
            },
            error @ AuthError::UnknownInvitation => ApiError::BadSecret {
                code: "unknown_invitation",
                message: error.to_string(),
            },
            error @ AuthError::InvitationUsed => ApiError::Gone {
                code: "invitation_used",
                message: error.to_string(),
            },
            error @ AuthError::InvitationExpired => ApiError::Gone {
                code: "invitation_expired",
                message: error.to_string(),
            },
            error @ AuthError::UnknownReset => ApiError::BadSecret {
                code: "unknown_reset_code",
                message: error.to_string(),
            },
            error @ AuthError::ResetUnusable => ApiError::Gone {
                code: "reset_code_unusable",
                message: error.to_string(),
            },
            error @ AuthError::InvitationRevoked => ApiError::Gone {
                code: "invitation_revoked",
                message: error.to_string(),
            },
            error @ AuthError::TooManyAttempts { retry_after } => ApiError::TooManyRequests {
                message: error.to_string(),
                retry_after: retry_after.to_std().unwrap_or_default(),
            },
            AuthError::Database(error) => ApiError::Database(error),
            AuthError::Hashing(error) => ApiError::Internal(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, field, message) = match &self {
            ApiError::BadRequest { field, message } => (
                StatusCode::BAD_REQUEST,
                Some(field.clone()),
                message.clone(),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                None,
                "authentication required: send `Authorization: Bearer <token>` with a session \
                 token (POST /api/auth/login) or a device credential (POST /api/enrol); this one \
                 is missing, unknown, expired or revoked"
                    .to_string(),
            ),
            ApiError::BadSecret { message, .. } => {
                (StatusCode::UNAUTHORIZED, None, message.clone())
            }
            ApiError::Forbidden(why) => (StatusCode::FORBIDDEN, None, why.clone()),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, None, format!("{what} not found")),
            ApiError::NoRoute { .. } => (
                StatusCode::NOT_FOUND,
                None,
                format!("{self}: the routes are listed in the README (HTTP API)"),
            ),
            ApiError::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                format!("{self}: the Allow header lists the methods it serves"),
            ),
            ApiError::Conflict { field, message } => {
                (StatusCode::CONFLICT, Some(field.clone()), message.clone())
            }
            ApiError::TooLarge { field, message } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Some(field.clone()),
                message.clone(),
            ),
            ApiError::UnsupportedMediaType { field, message } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some(field.clone()),
                message.clone(),
            ),
            ApiError::Unprocessable { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(field.clone()),
                message.clone(),
            ),
            ApiError::Gone { message, .. } => (StatusCode::GONE, None, message.clone()),
            ApiError::TooManyRequests { message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, None, message.clone())
            }
            ApiError::NotReady(why) => (StatusCode::SERVICE_UNAVAILABLE, None, why.clone()),
            ApiError::Database(error) => {
                tracing::error!(%error, "database error while serving a request");
                internal()
            }
            ApiError::Internal(error) => {
                tracing::error!(%error, "internal error while serving a request");
                internal()
            }
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code(),
                    field,
                    message,
                },
            }),
        )
            .into_response();
        if let ApiError::TooManyRequests { retry_after, .. } = &self {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn internal() -> (StatusCode, Option<String>, String) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        "internal error; it has been logged".to_string(),
    )
}
