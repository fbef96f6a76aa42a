//! Territories (a régie's ecosystem, a commune, a park): the unit of access
//! control. Admins create them; members see theirs; coordinators add
//! volunteers and name the sites within them.

use axum::{extract::State, http::Method, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
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

/// A territory, with the roles the caller holds in it.
// Documentation only: `TERRITORY_JSON` builds this JSON.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Territory {
    id: Uuid,
    name: String,
    #[schema(required = true)]
    description: Option<String>,
    /// A GeoJSON `MultiPolygon` in WGS 84 longitude, latitude; null when the
    /// territory has no boundary.
    #[schema(required = true, value_type = Option<Object>)]
    boundary: Option<Value>,
    created_at: DateTime<Utc>,
    /// The roles the caller holds in it (none for an admin who holds none).
    your_roles: Vec<Role>,
}

/// Lists territories
///
/// The territories you hold a role in; an admin sees all.
#[utoipa::path(
    get,
    path = "/api/territories",
    operation_id = "listTerritories",
    responses(
        (status = 200, description = "The territories, by name", body = [Territory]),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
    ),
    security(("bearer" = [])),
)]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTerritory {
    /// Trimmed, 1 to 200 characters.
    #[schema(example = "Berges du Rhône")]
    name: String,
    description: Option<String>,
    /// GeoJSON Polygon or MultiPolygon, WGS 84 (longitude, latitude), valid
    /// (no self-intersection).
    #[schema(value_type = Option<Object>, example = json!({"type": "Polygon", "coordinates": [[[4.83, 45.74], [4.86, 45.74], [4.86, 45.78], [4.83, 45.78], [4.83, 45.74]]]}))]
    boundary: Option<Value>,
}

/// Creates a territory (admins)
#[utoipa::path(
    post,
    path = "/api/territories",
    operation_id = "createTerritory",
    request_body = NewTerritory,
    responses(
        (status = 201, description = "The territory is created", body = Territory),
        (status = 400, description = "A field is missing or invalid, such as a boundary that is not a valid polygon (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only an admin creates territories", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
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

/// One territory
#[utoipa::path(
    get,
    path = "/api/territories/{id}",
    operation_id = "showTerritory",
    params(("id" = Uuid, Path, description = "The territory's id")),
    responses(
        (status = 200, description = "The territory", body = Territory),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in the territory", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
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

/// 404 unless `territory` exists: for routes whose role check lets an admin
/// (member of none) through, so a typo'd id is not answered as if it existed.
pub(super) async fn require_territory(pool: &PgPool, territory: Uuid) -> Result<(), ApiError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM territories WHERE id = $1)")
            .bind(territory)
            .fetch_one(pool)
            .await?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("territory {territory}")))
    }
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

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewMember {
    account_id: Uuid,
    role: Role,
}

/// A role held in a territory.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Member {
    account_id: Uuid,
    territory_id: Uuid,
    role: Role,
}

/// Grants a role in a territory
///
/// An admin grants any role; a coordinator adds volunteers to their
/// territory. Granting a role held already changes nothing.
#[utoipa::path(
    post,
    path = "/api/territories/{id}/members",
    operation_id = "addMember",
    params(("id" = Uuid, Path, description = "The territory's id")),
    request_body = NewMember,
    responses(
        (status = 201, description = "The account holds the role", body = Member),
        (status = 400, description = "`id` is not a UUID, or a field is missing or invalid (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Not a coordinator of the territory (or an admin), or a role only an admin grants", body = ApiError),
        (status = 404, description = "No such territory or account", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn add_member(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
    JsonBody(member): JsonBody<NewMember>,
) -> Result<(StatusCode, Json<Member>), ApiError> {
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
        Json(Member {
            account_id: member.account_id,
            territory_id: territory,
            role: member.role,
        }),
    ))
}

/// A named place of a territory.
// Documentation only: the query of `sites` builds this JSON.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Site {
    id: Uuid,
    territory_id: Uuid,
    name: String,
    /// WGS 84.
    decimal_latitude: f64,
    decimal_longitude: f64,
    created_at: DateTime<Utc>,
}

/// Lists the sites of a territory
#[utoipa::path(
    get,
    path = "/api/territories/{id}/sites",
    operation_id = "listSites",
    params(("id" = Uuid, Path, description = "The territory's id")),
    responses(
        (status = 200, description = "The sites, by name", body = [Site]),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in the territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
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

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewSite {
    /// Trimmed, 1 to 200 characters.
    #[schema(example = "Pond by the gate")]
    name: String,
    /// WGS 84, inside the territory's boundary when it has one.
    #[schema(example = 45.775, minimum = -90, maximum = 90)]
    decimal_latitude: f64,
    #[schema(example = 4.835, minimum = -180, maximum = 180)]
    decimal_longitude: f64,
}

/// A site just created (a listed `Site` also has `createdAt`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedSite {
    id: Uuid,
    territory_id: Uuid,
    name: String,
    decimal_latitude: f64,
    decimal_longitude: f64,
}

/// Names a site in a territory
///
/// For coordinators of the territory and admins.
#[utoipa::path(
    post,
    path = "/api/territories/{id}/sites",
    operation_id = "createSite",
    params(("id" = Uuid, Path, description = "The territory's id")),
    request_body = NewSite,
    responses(
        (status = 201, description = "The site is created", body = CreatedSite),
        (status = 400, description = "`id` is not a UUID, or a field is missing or invalid, such as a point outside the territory (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Not a coordinator of the territory, nor an admin", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn create_site(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
    JsonBody(site): JsonBody<NewSite>,
) -> Result<(StatusCode, Json<CreatedSite>), ApiError> {
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
        Json(CreatedSite {
            id,
            territory_id: territory,
            name: site.name.trim().to_string(),
            decimal_latitude: site.decimal_latitude,
            decimal_longitude: site.decimal_longitude,
        }),
    ))
}
