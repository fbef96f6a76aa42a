//! The régie's audit routes: the territory's audit trail (paged, and its
//! verification), one record's attributed history and its state at a past
//! date. Régie auditors and coordinators of the territory (and admins) read
//! them; nobody writes the trail through HTTP. `crate::audit` does the work.

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::Method,
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::UNAUTHENTICATED,
    extractor::{is_sha256_hex, query, AuthUser},
    territories::require_territory,
    ApiError, AppState, Routes,
};
use crate::{
    audit::{
        record::{self, StateError},
        verify::{verify, ChainPoint, Verification},
    },
    auth::Role,
};

const AUDITORS: &[Role] = &[Role::RegieAuditor, Role::Coordinator];
/// Entries one page of the trail holds at most.
const MAX_PAGE: i64 = 500;

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/api/territories/{id}/audit/entries", entries)
        .route(
            Method::GET,
            "/api/territories/{id}/audit/verification",
            verification,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/records/{record_id}/audit",
            record_audit,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/records/{record_id}/state",
            record_state,
        )
}

async fn check(state: &AppState, user: &AuthUser, territory: Uuid) -> Result<(), ApiError> {
    user.require_role(territory, AUDITORS, "read the audit trail")?;
    require_territory(&state.pool, territory).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EntriesQuery {
    /// Entries after this seq (the previous page's `nextAfter`); from the first when absent.
    after: Option<i64>,
    /// Entries per page, 1 to 500 (100 when absent).
    limit: Option<i64>,
}

/// A page of the audit trail (documentation only: built in SQL).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct EntriesPage {
    /// Oldest first: `seq`, `recordedAt`, `action` (`change` or a review
    /// action), `actorId`, `actorName`, `deviceId`, `sessionId`, `docId`,
    /// `recordId`, `recordKind`, `changeHash`, `before`, `after`, `detail`,
    /// `prevHash`, `hash` (hex).
    #[schema(value_type = Vec<Object>)]
    entries: Vec<Value>,
    /// `after=` for the next page; null on the last.
    next_after: Option<i64>,
}

/// `GET …/audit/entries`: the territory's audit trail, oldest first, by seq.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/audit/entries",
    operation_id = "auditEntries",
    tag = "audit",
    params(("id" = Uuid, Path, description = "The territory"), EntriesQuery),
    responses(
        (status = 200, description = "One page of entries", body = EntriesPage),
        (status = 400, description = "`after` or `limit` is malformed or out of range (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's régie auditors and coordinators read its audit trail", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn entries(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    page: Result<Query<EntriesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    check(&state, &user, territory).await?;
    let page = query(page)?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "limit",
            format!("must be between 1 and {MAX_PAGE} (got {limit})"),
        ));
    }
    let after = page.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::bad_request("after", "must be a seq, 0 or more"));
    }
    // The trail as accepted until now: pending entries take their places first.
    crate::audit::chain::catch_up_before_reading(&state.pool).await;
    let page: Value = sqlx::query_scalar(
        "WITH page AS (\
           SELECT a.*, ac.display_name FROM audit_log a \
           LEFT JOIN accounts ac ON ac.id = a.actor_id \
           WHERE a.territory_id = $1 AND a.seq > $2 ORDER BY a.seq LIMIT $3) \
         SELECT jsonb_build_object(\
           'entries', COALESCE((SELECT jsonb_agg(jsonb_build_object(\
             'seq', seq, 'recordedAt', recorded_at, 'action', action, 'actorId', actor_id, \
             'actorName', display_name, 'deviceId', device_id, 'sessionId', session_id, \
             'docId', doc_id, 'recordId', record_id, 'recordKind', record_kind, \
             'changeHash', change_hash, 'before', before, 'after', after, 'detail', detail, \
             'prevHash', encode(prev_hash, 'hex'), 'hash', encode(hash, 'hex')) ORDER BY seq) \
             FROM page), '[]'), \
           'nextAfter', CASE WHEN (SELECT count(*) FROM page) = $3 \
             THEN (SELECT max(seq) FROM page) END)",
    )
    .bind(territory)
    .bind(after)
    .bind(limit)
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(page))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct VerificationQuery {
    /// With `hash`: an entry whose hash the auditor noted earlier, to check
    /// that the chain still holds it.
    seq: Option<i64>,
    /// The hash (hex) noted for entry `seq`.
    hash: Option<String>,
}

/// `GET …/audit/verification`: walks the territory's hash chain and names
/// the first entry that was edited, deleted or moved.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/audit/verification",
    operation_id = "auditVerification",
    tag = "audit",
    params(("id" = Uuid, Path, description = "The territory"), VerificationQuery),
    responses(
        (status = 200, description = "What the verification found (`intact`, `firstBroken`)", body = Verification),
        (status = 400, description = "`seq` and `hash` are not given together, or `hash` is not hex (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's régie auditors and coordinators read its audit trail", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn verification(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    anchor: Result<Query<VerificationQuery>, QueryRejection>,
) -> Result<Json<Verification>, ApiError> {
    check(&state, &user, territory).await?;
    let anchor = match query(anchor)? {
        VerificationQuery {
            seq: Some(seq),
            hash: Some(hash),
        } => {
            if !is_sha256_hex(&hash) {
                return Err(ApiError::bad_request(
                    "hash",
                    "must be a SHA-256 in hex (64 characters)",
                ));
            }
            Some(ChainPoint { seq, hash })
        }
        VerificationQuery {
            seq: None,
            hash: None,
        } => None,
        VerificationQuery { seq: None, .. } => {
            return Err(ApiError::bad_request("seq", "is needed with `hash`"))
        }
        VerificationQuery { hash: None, .. } => {
            return Err(ApiError::bad_request("hash", "is needed with `seq`"))
        }
    };
    Ok(Json(verify(&state.pool, territory, anchor.as_ref()).await?))
}

/// A record's audit (documentation only: built in SQL).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct RecordAudit {
    record_id: Uuid,
    territory_id: Uuid,
    /// Oldest first, each attributed: `seq`, `recordedAt`, `action`,
    /// `actorId`, `actorName`, `deviceId`, `deviceName`, `sessionId`,
    /// `changeHash`, `before` and `after` (the fields the step touched), `detail`.
    #[schema(value_type = Vec<Object>)]
    steps: Vec<Value>,
}

/// `GET …/records/{record_id}/audit`: who changed what of the record, and
/// every decision on it, when and with which device.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/records/{record_id}/audit",
    operation_id = "recordAudit",
    tag = "audit",
    params(
        ("id" = Uuid, Path, description = "The territory"),
        ("record_id" = Uuid, Path, description = "The record (sighting, report or entry)"),
    ),
    responses(
        (status = 200, description = "The record's attributed history", body = RecordAudit),
        (status = 400, description = "An id is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's régie auditors and coordinators read its audit trail", body = ApiError),
        (status = 404, description = "No such territory, or the trail has nothing about this record in it", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn record_audit(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, record_id)): Path<(Uuid, Uuid)>,
) -> Result<Json<Value>, ApiError> {
    check(&state, &user, territory).await?;
    // Each step with its place in the chain, whenever it can have one now.
    crate::audit::chain::catch_up_before_reading(&state.pool).await;
    record::history(&state.pool, territory, record_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("record {record_id} in territory {territory}")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StateQuery {
    /// The moment (RFC 3339, e.g. `2026-06-01T00:00:00Z`).
    at: String,
}

/// A record at a past moment (documentation only: built from the history).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct RecordState {
    record_id: Uuid,
    at: DateTime<Utc>,
    /// False before its first change reached the server, or once deleted.
    exists: bool,
    doc_id: String,
    record_kind: String,
    /// The notebook's heads at that moment.
    heads: Option<Vec<String>>,
    /// The record's fields then, each at its winning value.
    #[schema(value_type = Option<Object>)]
    fields: Option<Value>,
    /// Fields with concurrent values then: `field`, `winner`, `values`.
    #[schema(value_type = Option<Vec<Object>>)]
    conflicts: Option<Vec<Value>>,
    valid: Option<bool>,
    /// What was wrong with it then: `field`, `reason`.
    #[schema(value_type = Option<Vec<Object>>)]
    problems: Option<Vec<Value>>,
}

/// `GET …/records/{record_id}/state?at=`: the record exactly as the server
/// held it at `at`, read from the notebook's automerge history.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/records/{record_id}/state",
    operation_id = "recordState",
    tag = "audit",
    params(
        ("id" = Uuid, Path, description = "The territory"),
        ("record_id" = Uuid, Path, description = "The record (sighting, report or entry)"),
        StateQuery,
    ),
    responses(
        (status = 200, description = "The record at that moment", body = RecordState),
        (status = 400, description = "`at` is missing or not an RFC 3339 time (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's régie auditors and coordinators read its audit trail", body = ApiError),
        (status = 404, description = "No such territory, or no change to this record in it", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn record_state(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, record_id)): Path<(Uuid, Uuid)>,
    at: Result<Query<StateQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    check(&state, &user, territory).await?;
    let at = query(at)?.at;
    let at = DateTime::parse_from_rfc3339(&at)
        .map_err(|error| {
            ApiError::bad_request("at", format!("must be an RFC 3339 time ({error}): {at:?}"))
        })?
        .with_timezone(&Utc);
    // The record is located by its entries: every accepted change has them first.
    crate::audit::trail::write_out(&state.pool, &|| false).await?;
    match record::state_at(&state.pool, territory, record_id, at).await {
        Ok(found) => Ok(Json(found)),
        Err(StateError::UnknownRecord) => Err(ApiError::NotFound(format!(
            "record {record_id} in territory {territory}"
        ))),
        Err(StateError::Database(error)) => Err(error.into()),
    }
}
