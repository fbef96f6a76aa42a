//! Territories (a régie's ecosystem, a commune, a park): the unit of access
//! control. Admins create them; members see theirs; coordinators (and
//! admins) set them up: rename and redraw them, add and remove volunteers,
//! name, move and retire the sites within them.

use axum::{
    extract::{Path, State},
    http::Method,
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
    extractor::{AuthUser, IdPath, JsonBody},
    ApiError, AppState, Routes,
};
use crate::auth::{
    admin::{self, SiteChanges, TerritoryChanges},
    Role,
};

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/api/territories", list)
        .route(Method::POST, "/api/territories", create)
        .route(Method::GET, "/api/territories/{id}", show)
        .route(Method::PATCH, "/api/territories/{id}", update)
        .route(Method::GET, "/api/territories/{id}/members", members)
        .route(Method::POST, "/api/territories/{id}/members", add_member)
        .route(
            Method::DELETE,
            "/api/territories/{id}/members/{account_id}/{role}",
            remove_member,
        )
        .route(Method::GET, "/api/territories/{id}/sites", sites)
        .route(Method::POST, "/api/territories/{id}/sites", create_site)
        .route(
            Method::PATCH,
            "/api/territories/{id}/sites/{site_id}",
            update_site,
        )
}

/// For a field whose `null` means something (clear it) while its absence
/// means "unchanged": with `#[serde(default)]`, absent is None and null is
/// `Some(None)` (serde alone reads both as None).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// The columns of a [`Territory`] as `viewer` ($1) sees it, from `territories t`.
const TERRITORY_COLUMNS: &str = "t.id, t.name, t.description, \
     ST_AsGeoJSON(t.boundary)::jsonb AS boundary, t.created_at, \
     ARRAY(SELECT m.role FROM memberships m \
           WHERE m.territory_id = t.id AND m.account_id = $1 ORDER BY m.role) AS your_roles";

/// A territory, with the roles the caller holds in it.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
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
    #[schema(value_type = Vec<Role>)]
    your_roles: Vec<String>,
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
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<Territory>>, ApiError> {
    let territories = sqlx::query_as(&format!(
        "SELECT {TERRITORY_COLUMNS} FROM territories t \
         WHERE $2::uuid[] IS NULL OR t.id = ANY($2) ORDER BY t.name, t.id"
    ))
    .bind(user.0.account_id)
    .bind(user.readable_territories())
    .fetch_all(&state.pool)
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
) -> Result<(StatusCode, Json<Territory>), ApiError> {
    user.require_admin("create territories")?;
    let id = admin::create_described_territory(
        &state.pool,
        &territory.name,
        territory.description.as_deref(),
        territory.boundary.as_ref(),
    )
    .await?;
    let created = territory_row(&state.pool, id, user.0.account_id).await?;
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
) -> Result<Json<Territory>, ApiError> {
    user.require_member(territory)?;
    Ok(Json(
        territory_row(&state.pool, territory, user.0.account_id).await?,
    ))
}

/// Changes to a territory; an absent field is left as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TerritoryPatch {
    /// Trimmed, 1 to 200 characters.
    #[schema(example = "Berges du Rhône")]
    name: Option<String>,
    /// Null or blank clears it; at most 4000 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// A GeoJSON Polygon or MultiPolygon, WGS 84 (longitude, latitude), valid
    /// (no self-intersection); null removes the boundary.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    boundary: Option<Option<Value>>,
}

/// Changes a territory
///
/// Renames it, changes its description, redraws or removes its boundary
/// (sites already named stay where they are). For coordinators of the
/// territory and admins.
#[utoipa::path(
    patch,
    path = "/api/territories/{id}",
    operation_id = "updateTerritory",
    params(("id" = Uuid, Path, description = "The territory's id")),
    request_body = TerritoryPatch,
    responses(
        (status = 200, description = "The territory as it is now", body = Territory),
        (status = 400, description = "`id` is not a UUID, or a field is invalid, such as a boundary that is not a valid polygon (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Not a coordinator of the territory, nor an admin", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
    JsonBody(patch): JsonBody<TerritoryPatch>,
) -> Result<Json<Territory>, ApiError> {
    user.require_role(territory, &[Role::Coordinator], "change it")?;
    admin::update_territory(
        &state.pool,
        territory,
        &TerritoryChanges {
            name: patch.name.as_deref(),
            description: patch.description.as_ref().map(Option::as_deref),
            boundary: patch.boundary.as_ref().map(Option::as_ref),
        },
    )
    .await?;
    tracing::info!(
        %territory,
        by = %user.0.account_id,
        renamed = patch.name.is_some(),
        boundary_changed = patch.boundary.is_some(),
        "territory updated"
    );
    Ok(Json(
        territory_row(&state.pool, territory, user.0.account_id).await?,
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

async fn territory_row(
    pool: &PgPool,
    territory: Uuid,
    viewer: Uuid,
) -> Result<Territory, ApiError> {
    let found: Option<Territory> = sqlx::query_as(&format!(
        "SELECT {TERRITORY_COLUMNS} FROM territories t WHERE t.id = $2"
    ))
    .bind(viewer)
    .bind(territory)
    .fetch_optional(pool)
    .await?;
    found.ok_or_else(|| ApiError::NotFound(format!("territory {territory}")))
}

/// One role one person holds in the territory.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
struct TerritoryMember {
    account_id: Uuid,
    display_name: String,
    /// Null for volunteers who only use their phones.
    #[schema(required = true)]
    email: Option<String>,
    #[sqlx(try_from = "String")]
    role: Role,
    granted_at: DateTime<Utc>,
    /// The account is disabled: it can neither log in nor sync.
    disabled: bool,
    /// Its phones not revoked.
    active_devices: i64,
}

/// Lists the members of a territory
///
/// One row per role held, by display name then role. For coordinators and
/// régie auditors of the territory, and admins.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/members",
    operation_id = "listMembers",
    params(("id" = Uuid, Path, description = "The territory's id")),
    responses(
        (status = 200, description = "The territory's members, by display name then role", body = [TerritoryMember]),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Not a coordinator or régie auditor of the territory, nor an admin", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn members(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
) -> Result<Json<Vec<TerritoryMember>>, ApiError> {
    user.require_role(
        territory,
        &[Role::Coordinator, Role::RegieAuditor],
        "list its members",
    )?;
    require_territory(&state.pool, territory).await?;
    let members: Vec<TerritoryMember> = sqlx::query_as(
        "SELECT m.account_id, a.display_name, a.email, m.role, m.granted_at, \
           a.disabled_at IS NOT NULL AS disabled, \
           (SELECT count(*) FROM devices d \
            WHERE d.account_id = a.id AND d.revoked_at IS NULL) AS active_devices \
         FROM memberships m JOIN accounts a ON a.id = m.account_id \
         WHERE m.territory_id = $1 \
         ORDER BY a.display_name, m.role, m.account_id",
    )
    .bind(territory)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(members))
}

/// Removes a role held in a territory
///
/// An admin removes any role; a coordinator removes the volunteer role. The
/// account's open sync connections and live streams close at once, in
/// every server process, so that they reconnect with the roles it holds now.
#[utoipa::path(
    delete,
    path = "/api/territories/{id}/members/{account_id}/{role}",
    operation_id = "removeMember",
    params(
        ("id" = Uuid, Path, description = "The territory's id"),
        ("account_id" = Uuid, Path, description = "The member's account"),
        ("role" = Role, Path, description = "The role to remove"),
    ),
    responses(
        (status = 204, description = "The account no longer holds the role"),
        (status = 400, description = "`id` or `accountId` is not a UUID, or `role` is not a role (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Not a coordinator of the territory (or an admin), or a role only an admin removes", body = ApiError),
        (status = 404, description = "The account does not hold this role in this territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn remove_member(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, account, role)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let territory = path_uuid("id", &territory)?;
    let account = path_uuid("accountId", &account)?;
    let role: Role = role
        .parse()
        .map_err(|message: String| ApiError::bad_request("role", message))?;
    user.require_role(territory, &[Role::Coordinator], "remove its members")?;
    if !user.0.is_admin && role != Role::Volunteer {
        return Err(ApiError::forbidden(
            "coordinators remove the volunteer role; only an admin removes the coordinator and \
             régie auditor roles",
        ));
    }
    if !admin::remove_membership(&state.pool, account, territory, role).await? {
        return Err(ApiError::NotFound(format!(
            "the {} role of account {account} in territory {territory}",
            role.as_str()
        )));
    }
    tracing::info!(%account, %territory, role = role.as_str(), by = %user.0.account_id, "role removed");
    Ok(StatusCode::NO_CONTENT)
}

/// A UUID of the path, or a 400 naming `field`.
fn path_uuid(field: &str, text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|error| ApiError::bad_request(field, format!("must be a UUID ({error})")))
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
#[derive(Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
struct Site {
    id: Uuid,
    territory_id: Uuid,
    name: String,
    /// WGS 84.
    decimal_latitude: f64,
    decimal_longitude: f64,
    created_at: DateTime<Utc>,
    /// False once deactivated: phones no longer offer it for new records
    /// (records that name it stay as they are).
    active: bool,
}

/// The columns of a [`Site`], from `sites`.
const SITE_COLUMNS: &str = "id, territory_id, name, ST_Y(geom) AS decimal_latitude, \
     ST_X(geom) AS decimal_longitude, created_at, deactivated_at IS NULL AS active";

/// Lists the sites of a territory
#[utoipa::path(
    get,
    path = "/api/territories/{id}/sites",
    operation_id = "listSites",
    params(("id" = Uuid, Path, description = "The territory's id")),
    responses(
        (status = 200, description = "The sites, active and deactivated, by name", body = [Site]),
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
) -> Result<Json<Vec<Site>>, ApiError> {
    user.require_member(territory)?;
    let sites: Vec<Site> = sqlx::query_as(&format!(
        "SELECT {SITE_COLUMNS} FROM sites WHERE territory_id = $1 ORDER BY name, id"
    ))
    .bind(territory)
    .fetch_all(&state.pool)
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

/// Changes to a site; an absent field is left as it is.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SitePatch {
    /// Trimmed, 1 to 200 characters.
    #[schema(example = "Pond by the gate")]
    name: Option<String>,
    /// WGS 84, given with `decimalLongitude`; inside the territory's
    /// boundary when it has one.
    #[schema(example = 45.775, minimum = -90, maximum = 90)]
    decimal_latitude: Option<f64>,
    /// Given with `decimalLatitude`.
    #[schema(example = 4.835, minimum = -180, maximum = 180)]
    decimal_longitude: Option<f64>,
    /// False deactivates the site (phones stop offering it for new records),
    /// true reactivates it.
    active: Option<bool>,
}

/// Changes a site
///
/// Renames, moves, deactivates or reactivates it. Records that name it are
/// not changed. For coordinators of the territory and admins.
#[utoipa::path(
    patch,
    path = "/api/territories/{id}/sites/{site_id}",
    operation_id = "updateSite",
    params(
        ("id" = Uuid, Path, description = "The territory's id"),
        ("site_id" = Uuid, Path, description = "The site's id"),
    ),
    request_body = SitePatch,
    responses(
        (status = 200, description = "The site as it is now", body = Site),
        (status = 400, description = "An id is not a UUID, or a field is invalid, such as a point outside the territory or a latitude without its longitude (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Not a coordinator of the territory, nor an admin", body = ApiError),
        (status = 404, description = "No such site in this territory", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn update_site(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, site)): Path<(String, String)>,
    JsonBody(patch): JsonBody<SitePatch>,
) -> Result<Json<Site>, ApiError> {
    let territory = path_uuid("id", &territory)?;
    let site = path_uuid("siteId", &site)?;
    user.require_role(territory, &[Role::Coordinator], "change its sites")?;
    let position = match (patch.decimal_latitude, patch.decimal_longitude) {
        (Some(latitude), Some(longitude)) => Some((latitude, longitude)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ApiError::bad_request(
                "decimalLongitude",
                "a site is moved with both its latitude and its longitude",
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "decimalLatitude",
                "a site is moved with both its latitude and its longitude",
            ))
        }
    };
    admin::update_site(
        &state.pool,
        territory,
        site,
        &SiteChanges {
            name: patch.name.as_deref(),
            position,
            active: patch.active,
        },
        user.0.account_id,
    )
    .await?;
    tracing::info!(
        %territory,
        %site,
        by = %user.0.account_id,
        moved = position.is_some(),
        active = ?patch.active,
        "site updated"
    );
    let updated: Site = sqlx::query_as(&format!("SELECT {SITE_COLUMNS} FROM sites WHERE id = $1"))
        .bind(site)
        .fetch_one(&state.pool)
        .await?;
    Ok(Json(updated))
}
