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
    /// Only the entries about this record (its UUID).
    record: Option<String>,
    /// Only the entries of this person: their account's UUID, or part of
    /// their name (any case).
    person: Option<String>,
    /// Only the entries delivered by this device: its UUID, or part of its
    /// name (any case).
    device: Option<String>,
    /// Only the entries recorded at or after this moment (RFC 3339).
    from: Option<String>,
    /// Only the entries recorded at or before this moment (RFC 3339).
    to: Option<String>,
    /// Only the entries of this kind: `change`, a review action
    /// (`verification`, `follow_up`, `approval`, `conflict_resolution`,
    /// `duplicate_merge`, `duplicate_dismissal`), `report_issued` or `erasure`.
    action: Option<String>,
}

/// One entry of the audit trail, as chained.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
struct AuditEntry {
    seq: i64,
    recorded_at: DateTime<Utc>,
    /// `change` (a change accepted into a notebook) or a review action.
    action: String,
    actor_id: Uuid,
    actor_name: Option<String>,
    /// The phone that delivered a change (null for a web session's).
    device_id: Option<Uuid>,
    device_name: Option<String>,
    session_id: Option<Uuid>,
    doc_id: Option<String>,
    record_id: Option<Uuid>,
    record_kind: Option<String>,
    /// The automerge change (hex) a `change` entry records.
    change_hash: Option<String>,
    /// The fields the entry touched, as they were before it.
    #[schema(value_type = Object)]
    before: Value,
    /// The same fields after it.
    #[schema(value_type = Object)]
    after: Value,
    /// A decision's status, previous status, reason and detail.
    #[schema(value_type = Object)]
    detail: Value,
    /// The previous entry's hash (hex; empty for the first).
    prev_hash: String,
    /// This entry's hash (hex): what an auditor notes down with `seq`.
    hash: String,
}

/// A page of the audit trail.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EntriesPage {
    /// Oldest first.
    entries: Vec<AuditEntry>,
    /// `after=` for the next page; null on the last.
    next_after: Option<i64>,
}

/// `value` as a UUID, or a bad request naming `field`.
fn uuid_param(field: &str, value: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            Uuid::parse_str(v.trim())
                .map_err(|_| ApiError::bad_request(field, format!("must be a UUID (got {v:?})")))
        })
        .transpose()
}

/// `value` as a moment, or a bad request naming `field`.
fn moment_param(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request(
                        field,
                        format!("must be an RFC 3339 time, e.g. 2026-06-01T00:00:00Z (got {v:?})"),
                    )
                })
        })
        .transpose()
}

/// A person or device filter: a UUID, or a `LIKE` pattern matching part of
/// a name (its wildcards escaped).
fn id_or_name(value: Option<&str>) -> (Option<Uuid>, Option<String>) {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => (None, None),
        Some(v) => match Uuid::parse_str(v) {
            Ok(id) => (Some(id), None),
            Err(_) => {
                let escaped = v
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                (None, Some(format!("%{escaped}%")))
            }
        },
    }
}

/// `GET …/audit/entries`: the territory's audit trail, oldest first, by
/// seq, filtered by record, person, device, period and kind.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/audit/entries",
    operation_id = "auditEntries",
    tag = "audit",
    params(("id" = Uuid, Path, description = "The territory"), EntriesQuery),
    responses(
        (status = 200, description = "One page of entries", body = EntriesPage),
        (status = 400, description = "A parameter is malformed or out of range (named in `field`)", body = ApiError),
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
) -> Result<Json<EntriesPage>, ApiError> {
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
    let record = uuid_param("record", page.record.as_deref())?;
    let from = moment_param("from", page.from.as_deref())?;
    let to = moment_param("to", page.to.as_deref())?;
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            return Err(ApiError::bad_request("to", "must not be before `from`"));
        }
    }
    let action = page.action.filter(|a| !a.trim().is_empty());
    if let Some(action) = &action {
        if action.len() > 40 || !action.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(ApiError::bad_request(
                "action",
                format!("must be a kind of entry, e.g. change or verification (got {action:?})"),
            ));
        }
    }
    let (person_id, person_name) = id_or_name(page.person.as_deref());
    let (device_id, device_name) = id_or_name(page.device.as_deref());
    // The trail as accepted until now: pending entries take their places first.
    crate::audit::chain::catch_up_before_reading(&state.pool).await;
    let entries: Vec<AuditEntry> = sqlx::query_as(
        "SELECT a.seq, a.recorded_at, a.action, a.actor_id, ac.display_name AS actor_name, \
                a.device_id, d.name AS device_name, a.session_id, a.doc_id, a.record_id, \
                a.record_kind, a.change_hash, a.before, a.after, a.detail, \
                encode(a.prev_hash, 'hex') AS prev_hash, encode(a.hash, 'hex') AS hash \
         FROM audit_log a \
         LEFT JOIN accounts ac ON ac.id = a.actor_id \
         LEFT JOIN devices d ON d.id = a.device_id \
         WHERE a.territory_id = $1 AND a.seq > $2 \
           AND ($4::uuid IS NULL OR a.record_id = $4) \
           AND ($5::uuid IS NULL OR a.actor_id = $5) \
           AND ($6::text IS NULL OR ac.display_name ILIKE $6) \
           AND ($7::uuid IS NULL OR a.device_id = $7) \
           AND ($8::text IS NULL OR d.name ILIKE $8) \
           AND ($9::timestamptz IS NULL OR a.recorded_at >= $9) \
           AND ($10::timestamptz IS NULL OR a.recorded_at <= $10) \
           AND ($11::text IS NULL OR a.action = $11) \
         ORDER BY a.seq LIMIT $3",
    )
    .bind(territory)
    .bind(after)
    .bind(limit)
    .bind(record)
    .bind(person_id)
    .bind(person_name)
    .bind(device_id)
    .bind(device_name)
    .bind(from)
    .bind(to)
    .bind(action)
    .fetch_all(&state.pool)
    .await?;
    // A full page may have more after it; a short one is the last.
    let next_after = if entries.len() as i64 == limit {
        entries.last().map(|entry| entry.seq)
    } else {
        None
    };
    Ok(Json(EntriesPage {
        entries,
        next_after,
    }))
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
