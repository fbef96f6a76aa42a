//! Enrolled phones: listing them, and revoking one — a lost or stolen phone's
//! credential is refused from that moment, and its open sync connections are
//! closed (the sync channel listens for the revocation).

use axum::{
    extract::{rejection::QueryRejection, Query, State},
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
    extractor::{query, AuthUser, IdPath},
    ApiError, AppState, Routes,
};
use crate::auth::{admin, Role};

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/api/devices", list)
        .route(Method::POST, "/api/devices/{id}/revoke", revoke)
}

/// An enrolled phone.
// Documentation only: the query of `list` builds this JSON.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Device {
    id: Uuid,
    /// Its owner.
    account_id: Uuid,
    account_name: String,
    name: String,
    created_at: DateTime<Utc>,
    /// When it last authenticated; null if never.
    #[schema(required = true)]
    last_seen_at: Option<DateTime<Utc>>,
    /// Null while it may sync.
    #[schema(required = true)]
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DevicesQuery {
    /// Only the phones of the people who volunteer in this territory (the
    /// web app's page of one territory).
    territory: Option<Uuid>,
}

/// Lists the phones the caller may see
///
/// Your own devices; a coordinator also sees the devices of the volunteers of
/// their territories (to revoke a lost one); an admin sees all.
#[utoipa::path(
    get,
    path = "/api/devices",
    operation_id = "listDevices",
    params(DevicesQuery),
    responses(
        (status = 200, description = "The devices, oldest first", body = [Device]),
        (status = 400, description = "`territory` is not a UUID (`field`: `query`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    filter: Result<Query<DevicesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let territory = query(filter)?.territory;
    let devices: Value = sqlx::query_scalar(
        "SELECT COALESCE(jsonb_agg(jsonb_build_object( \
           'id', d.id, 'accountId', d.account_id, 'accountName', a.display_name, \
           'name', d.name, 'createdAt', d.created_at, 'lastSeenAt', d.last_seen_at, \
           'revokedAt', d.revoked_at) ORDER BY d.created_at, d.id), '[]') \
         FROM devices d JOIN accounts a ON a.id = d.account_id \
         WHERE ($1 OR d.account_id = $2 OR EXISTS ( \
           SELECT 1 FROM memberships m WHERE m.account_id = d.account_id \
             AND m.role = 'volunteer' AND m.territory_id = ANY($3))) \
           AND ($4::uuid IS NULL OR EXISTS ( \
           SELECT 1 FROM memberships m WHERE m.account_id = d.account_id \
             AND m.role = 'volunteer' AND m.territory_id = $4))",
    )
    .bind(principal.is_admin)
    .bind(principal.account_id)
    .bind(principal.territories_with(&[Role::Coordinator]))
    .bind(territory)
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(devices))
}

/// A device revoked.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Revoked {
    device_id: Uuid,
    /// Always true (revoking a revoked device changes nothing).
    revoked: bool,
}

/// Revokes a phone
///
/// Its credential is refused from now on and its open sync connections are
/// closed. For the device's owner, a coordinator of a territory where the
/// owner volunteers, or an admin.
#[utoipa::path(
    post,
    path = "/api/devices/{id}/revoke",
    operation_id = "revokeDevice",
    params(("id" = Uuid, Path, description = "The device's id")),
    responses(
        (status = 200, description = "The device is revoked", body = Revoked),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Neither the device's owner, nor a coordinator where its owner volunteers, nor an admin", body = ApiError),
        (status = 404, description = "No such device", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn revoke(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    IdPath(device): IdPath,
) -> Result<Json<Revoked>, ApiError> {
    let found: Option<(Uuid, bool)> = sqlx::query_as(
        "SELECT d.account_id, EXISTS ( \
           SELECT 1 FROM memberships m WHERE m.account_id = d.account_id \
             AND m.role = 'volunteer' AND m.territory_id = ANY($2)) \
         FROM devices d WHERE d.id = $1",
    )
    .bind(device)
    .bind(principal.territories_with(&[Role::Coordinator]))
    .fetch_optional(&state.pool)
    .await?;
    let Some((owner, volunteers_for_caller)) = found else {
        return Err(ApiError::NotFound(format!("device {device}")));
    };
    if !(owner == principal.account_id || volunteers_for_caller || principal.is_admin) {
        return Err(ApiError::forbidden(
            "only the device's owner, a coordinator of a territory where they volunteer, or an \
             admin may revoke it",
        ));
    }
    let newly = admin::revoke_device(&state.pool, device, principal.account_id).await?;
    if newly {
        tracing::info!(%device, by = %principal.account_id, "device revoked");
    }
    Ok(Json(Revoked {
        device_id: device,
        revoked: true,
    }))
}
