//! Territories (a régie's ecosystem, a commune, a park): the unit of access
//! control. Admins create them; members see theirs; coordinators add
//! volunteers and name the sites within them.

use axum::{extract::State, http::Method, http::StatusCode, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    extractor::{AuthUser, IdPath, JsonBody},
    ApiError, AppState, Routes,
};
use crate::auth::{admin, Role};

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/api/territories", list)
        .route(Method::POST, "/api/territories", create)
        .route(Method::GET, "/api/territories/{id}", show)
        .route(Method::POST, "/api/territories/{id}/members", add_member)
        .route(Method::GET, "/api/territories/{id}/sites", sites)
        .route(Method::POST, "/api/territories/{id}/sites", create_site)
}

/// One territory as JSON, with the roles `viewer` holds in it; the boundary
/// as GeoJSON.
const TERRITORY_JSON: &str = "jsonb_build_object('id', t.id, 'name', t.name, \
     'description', t.description, 'boundary', ST_AsGeoJSON(t.boundary)::jsonb, \
     'createdAt', t.created_at, 'yourRoles', (SELECT COALESCE(jsonb_agg(m.role ORDER BY m.role), '[]') \
       FROM memberships m WHERE m.territory_id = t.id AND m.account_id = $1))";

/// The territories you hold a role in; an admin sees all.
async fn list(State(state): State<AppState>, user: AuthUser) -> Result<Json<Value>, ApiError> {
    let territories: Value = sqlx::query_scalar(&format!(
        "SELECT COALESCE(jsonb_agg({TERRITORY_JSON} ORDER BY t.name, t.id), '[]') \
         FROM territories t WHERE $2::uuid[] IS NULL OR t.id = ANY($2)"
    ))
    .bind(user.0.account_id)
    .bind(user.readable_territories())
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(territories))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTerritory {
    name: String,
    description: Option<String>,
    /// GeoJSON Polygon or MultiPolygon, WGS 84.
    boundary: Option<Value>,
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(territory): JsonBody<NewTerritory>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    user.require_admin("create territories")?;
    let id = admin::create_described_territory(
        &state.pool,
        &territory.name,
        territory.description.as_deref(),
        territory.boundary.as_ref(),
    )
    .await?;
    let created = territory_json(&state.pool, id, user.0.account_id).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn show(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
) -> Result<Json<Value>, ApiError> {
    user.require_member(territory)?;
    Ok(Json(
        territory_json(&state.pool, territory, user.0.account_id).await?,
    ))
}

async fn territory_json(pool: &PgPool, territory: Uuid, viewer: Uuid) -> Result<Value, ApiError> {
    let found: Option<Value> = sqlx::query_scalar(&format!(
        "SELECT {TERRITORY_JSON} FROM territories t WHERE t.id = $2"
    ))
    .bind(viewer)
    .bind(territory)
    .fetch_optional(pool)
    .await?;
    found.ok_or_else(|| ApiError::NotFound(format!("territory {territory}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewMember {
    account_id: Uuid,
    role: Role,
}

/// An admin grants any role; a coordinator adds volunteers to their territory.
async fn add_member(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
    JsonBody(member): JsonBody<NewMember>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    user.require_role(territory, &[Role::Coordinator], "add members to it")?;
    if !user.0.is_admin && member.role != Role::Volunteer {
        return Err(ApiError::forbidden(
            "coordinators add volunteers; an admin grants the coordinator and régie auditor roles",
        ));
    }
    admin::add_membership(
        &state.pool,
        member.account_id,
        territory,
        member.role,
        Some(user.0.account_id),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "accountId": member.account_id,
            "territoryId": territory,
            "role": member.role,
        })),
    ))
}

async fn sites(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
) -> Result<Json<Value>, ApiError> {
    user.require_member(territory)?;
    let sites: Value = sqlx::query_scalar(
        "SELECT COALESCE(jsonb_agg(jsonb_build_object('id', id, 'territoryId', territory_id, \
           'name', name, 'decimalLatitude', ST_Y(geom), 'decimalLongitude', ST_X(geom), \
           'createdAt', created_at) ORDER BY name, id), '[]') \
         FROM sites WHERE territory_id = $1",
    )
    .bind(territory)
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(sites))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewSite {
    name: String,
    decimal_latitude: f64,
    decimal_longitude: f64,
}

async fn create_site(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
    JsonBody(site): JsonBody<NewSite>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    user.require_role(territory, &[Role::Coordinator], "add sites to it")?;
    let id = admin::create_site(
        &state.pool,
        territory,
        &site.name,
        site.decimal_latitude,
        site.decimal_longitude,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "territoryId": territory,
            "name": site.name.trim(),
            "decimalLatitude": site.decimal_latitude,
            "decimalLongitude": site.decimal_longitude,
        })),
    ))
}
