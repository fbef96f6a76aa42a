//! Account operations shared by the HTTP handlers, the `create-admin` command
//! and the tests: territories, accounts, roles, invitations and the phones
//! that redeem them, sessions. Each validates its input (errors name the field)
//! and does not check who asks: the callers authorise.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{secret, AuthError, Role};

/// How long a password login lasts: a working day, after which a coordinator
/// logs in again. Phones do not use sessions.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);
/// Longest an invitation may stay redeemable.
pub const MAX_INVITATION_TTL: chrono::Duration = chrono::Duration::days(30);
/// The PostgreSQL channel notified with a device id when this device's
/// credential stopped being accepted: revoked ([`revoke_device`]), or its
/// account disabled ([`disable_account`]). Every process hears it
/// (`crate::notifications`) and closes that device's open sync connections
/// and live streams at once. [`close_account_connections`] sends it too when
/// an account lost a role, so that the phone reconnects with the roles it
/// holds now.
pub const DEVICE_REVOKED_CHANNEL: &str = "fieldnotes_device_revoked";
/// The PostgreSQL channel [`logout`] notifies with the session id, so that the
/// session's open sync connections and live streams close too; likewise
/// [`close_account_connections`].
pub const SESSION_ENDED_CHANNEL: &str = "fieldnotes_session_ended";

const MAX_NAME_CHARS: usize = 200;
/// Longest territory description: a paragraph or two about the ecosystem and
/// who looks after it.
const MAX_DESCRIPTION_CHARS: usize = 4000;

/// A new invitation. `code` is shown once to the coordinator and never stored.
pub struct Invitation {
    pub id: Uuid,
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("id", &self.id)
            .field("code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A phone enrolled by redeeming an invitation. `credential` is returned to
/// the phone once and never stored.
pub struct EnrolledDevice {
    pub account_id: Uuid,
    pub device_id: Uuid,
    pub credential: String,
    pub territory_id: Uuid,
}

impl std::fmt::Debug for EnrolledDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolledDevice")
            .field("account_id", &self.account_id)
            .field("device_id", &self.device_id)
            .field("credential", &"<redacted>")
            .field("territory_id", &self.territory_id)
            .finish()
    }
}

/// A new web session. `token` is returned to the client once and never stored.
pub struct SessionToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Creates a territory; `boundary` is a GeoJSON Polygon or MultiPolygon in
/// WGS 84 longitude/latitude.
pub async fn create_territory(
    pool: &PgPool,
    name: &str,
    boundary: Option<&Value>,
) -> Result<Uuid, AuthError> {
    create_described_territory(pool, name, None, boundary).await
}

/// [`create_territory`] with a description (what the ecosystem is, who looks after it).
pub async fn create_described_territory(
    pool: &PgPool,
    name: &str,
    description: Option<&str>,
    boundary: Option<&Value>,
) -> Result<Uuid, AuthError> {
    let name = required_text("name", name)?;
    let description = description.map(checked_description).transpose()?.flatten();
    let boundary = match boundary {
        Some(Value::Null) | None => None,
        Some(boundary) => Some(checked_boundary(pool, boundary).await?),
    };
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO territories (id, name, description, boundary) \
         VALUES ($1, $2, $3, ST_Multi(ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON($4)), 4326)))",
    )
    .bind(id)
    .bind(name)
    .bind(description)
    .bind(boundary)
    .execute(pool)
    .await?;
    Ok(id)
}

/// What [`update_territory`] changes; None leaves a field as it is.
#[derive(Debug, Default)]
pub struct TerritoryChanges<'a> {
    pub name: Option<&'a str>,
    /// `Some(None)`, or blank text, clears the description.
    pub description: Option<Option<&'a str>>,
    /// `Some(None)` removes the boundary; else as [`create_territory`] takes it.
    pub boundary: Option<Option<&'a Value>>,
}

/// Renames, redescribes or redraws a territory, checking each field as
/// [`create_described_territory`] does. Sites already named stay where they
/// are, even outside a new boundary: moving them is the coordinator's call.
pub async fn update_territory(
    pool: &PgPool,
    territory: Uuid,
    changes: &TerritoryChanges<'_>,
) -> Result<(), AuthError> {
    let name = changes
        .name
        .map(|name| required_text("name", name))
        .transpose()?;
    let description = changes
        .description
        .map(|description| description.map(checked_description).transpose())
        .transpose()?
        .map(Option::flatten);
    let boundary = match changes.boundary {
        None => None,
        Some(None | Some(Value::Null)) => Some(None),
        Some(Some(boundary)) => Some(Some(checked_boundary(pool, boundary).await?)),
    };
    let updated = sqlx::query(
        "UPDATE territories SET name = COALESCE($2, name), \
           description = CASE WHEN $3 THEN $4 ELSE description END, \
           boundary = CASE WHEN $5 \
             THEN ST_Multi(ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON($6::text)), 4326)) \
             ELSE boundary END \
         WHERE id = $1",
    )
    .bind(territory)
    .bind(name)
    .bind(description.is_some())
    .bind(description.flatten())
    .bind(boundary.is_some())
    .bind(boundary.flatten())
    .execute(pool)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(AuthError::NotFound(format!("territory {territory}")));
    }
    Ok(())
}

/// A description trimmed, None when blank, or an error if too long.
fn checked_description(description: &str) -> Result<Option<&str>, AuthError> {
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AuthError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok((!description.is_empty()).then_some(description))
}

/// The boundary as GeoJSON text once PostGIS has read it as a valid
/// (multi)polygon in longitude/latitude, or why not.
async fn checked_boundary(pool: &PgPool, boundary: &Value) -> Result<String, AuthError> {
    match boundary.get("type").and_then(Value::as_str) {
        Some("Polygon" | "MultiPolygon") => {}
        Some(other) => {
            return Err(AuthError::invalid(
                "boundary",
                format!("must be a GeoJSON Polygon or MultiPolygon (got a {other})"),
            ))
        }
        None => {
            return Err(AuthError::invalid(
                "boundary",
                "must be a GeoJSON geometry object: {\"type\": \"Polygon\", \"coordinates\": …}",
            ))
        }
    }
    let text = boundary.to_string();
    // An empty geometry is valid to PostGIS and has no extent (its bounds
    // are NULL): it is refused first. Altitudes (a third or fourth
    // coordinate, as GIS software often writes) are dropped, here and when
    // stored: the boundary is a 2D shape.
    let checked: Result<(bool, String, Option<bool>), sqlx::Error> = sqlx::query_as(
        "SELECT ST_IsEmpty(g), ST_IsValidReason(g), \
                ST_XMin(g) >= -180 AND ST_XMax(g) <= 180 AND ST_YMin(g) >= -90 AND ST_YMax(g) <= 90 \
         FROM (SELECT ST_Force2D(ST_GeomFromGeoJSON($1)) AS g) AS boundary",
    )
    .bind(&text)
    .fetch_one(pool)
    .await;
    match checked {
        Ok((true, _, _)) => Err(AuthError::invalid(
            "boundary",
            "is empty: it must hold at least one polygon with its coordinates",
        )),
        Ok((_, validity, _)) if validity != "Valid Geometry" => Err(AuthError::invalid(
            "boundary",
            format!("is not a valid polygon: {validity}"),
        )),
        Ok((_, _, Some(false) | None)) => Err(AuthError::invalid(
            "boundary",
            "coordinates must be WGS 84 longitude, latitude (EPSG:4326); these look projected \
             (Lambert 93?)",
        )),
        Ok(_) => Ok(text),
        // PostGIS refuses what it cannot read at all (missing or malformed coordinates).
        Err(sqlx::Error::Database(error)) => Err(AuthError::invalid(
            "boundary",
            format!("is not readable GeoJSON: {}", error.message()),
        )),
        Err(error) => Err(error.into()),
    }
}

/// Creates a site (a named place) in `territory`. When the territory has a
/// boundary the site must lie inside it, which also catches swapped
/// latitude and longitude.
pub async fn create_site(
    pool: &PgPool,
    territory: Uuid,
    name: &str,
    latitude: f64,
    longitude: f64,
) -> Result<Uuid, AuthError> {
    let name = required_text("name", name)?;
    check_site_point(pool, territory, latitude, longitude).await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sites (id, territory_id, name, geom) \
         VALUES ($1, $2, $3, ST_SetSRID(ST_MakePoint($4, $5), 4326))",
    )
    .bind(id)
    .bind(territory)
    .bind(name)
    .bind(longitude)
    .bind(latitude)
    .execute(pool)
    .await?;
    Ok(id)
}

/// Checks that a site at (`latitude`, `longitude`) may be in `territory`:
/// WGS 84 ranges, and inside the boundary when it has one, which also
/// catches swapped latitude and longitude. NotFound for an unknown territory.
async fn check_site_point(
    pool: &PgPool,
    territory: Uuid,
    latitude: f64,
    longitude: f64,
) -> Result<(), AuthError> {
    if !(-90.0..=90.0).contains(&latitude) {
        return Err(AuthError::invalid(
            "decimalLatitude",
            format!("must be between -90 and 90 (got {latitude})"),
        ));
    }
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(AuthError::invalid(
            "decimalLongitude",
            format!("must be between -180 and 180 (got {longitude})"),
        ));
    }
    let inside: Option<Option<bool>> = sqlx::query_scalar(
        "SELECT ST_Covers(boundary, ST_SetSRID(ST_MakePoint($2, $3), 4326)) \
         FROM territories WHERE id = $1",
    )
    .bind(territory)
    .bind(longitude)
    .bind(latitude)
    .fetch_optional(pool)
    .await?;
    match inside {
        None => Err(AuthError::NotFound(format!("territory {territory}"))),
        Some(Some(false)) => Err(AuthError::invalid(
            "decimalLatitude",
            format!(
                "the point ({latitude}, {longitude}) is outside the territory's boundary \
                 (latitude and longitude swapped?)"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// What [`update_site`] changes; None leaves a field as it is.
#[derive(Debug, Default)]
pub struct SiteChanges<'a> {
    pub name: Option<&'a str>,
    /// The new (latitude, longitude), WGS 84.
    pub position: Option<(f64, f64)>,
    /// False retires the site: phones stop offering it for new records.
    pub active: Option<bool>,
}

/// Renames, moves, deactivates or reactivates a site of `territory`
/// (NotFound for a site of another territory); a moved site is checked as
/// [`create_site`] checks a new one. Records that name the site are not
/// touched: phones offline for days may still send some.
pub async fn update_site(
    pool: &PgPool,
    territory: Uuid,
    site: Uuid,
    changes: &SiteChanges<'_>,
    by: Uuid,
) -> Result<(), AuthError> {
    let name = changes
        .name
        .map(|name| required_text("name", name))
        .transpose()?;
    if let Some((latitude, longitude)) = changes.position {
        check_site_point(pool, territory, latitude, longitude).await?;
    }
    let (latitude, longitude) = changes.position.unzip();
    let updated = sqlx::query(
        "UPDATE sites SET name = COALESCE($3, name), \
           geom = CASE WHEN $4::float8 IS NULL THEN geom \
                  ELSE ST_SetSRID(ST_MakePoint($5, $4), 4326) END, \
           deactivated_at = CASE WHEN $6 IS NULL THEN deactivated_at \
                            WHEN $6 THEN NULL ELSE COALESCE(deactivated_at, now()) END, \
           deactivated_by = CASE WHEN $6 IS NULL THEN deactivated_by \
                            WHEN $6 THEN NULL ELSE COALESCE(deactivated_by, $7) END \
         WHERE id = $2 AND territory_id = $1",
    )
    .bind(territory)
    .bind(site)
    .bind(name)
    .bind(latitude)
    .bind(longitude)
    .bind(changes.active)
    .bind(by)
    .execute(pool)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(AuthError::NotFound(format!(
            "site {site} in territory {territory}"
        )));
    }
    Ok(())
}

/// Creates an account. Without email and password it can only be used through
/// device credentials; a password needs an email to log in with.
pub async fn create_account(
    pool: &PgPool,
    display_name: &str,
    email: Option<&str>,
    password: Option<&str>,
    is_admin: bool,
) -> Result<Uuid, AuthError> {
    let display_name = required_text("displayName", display_name)?;
    let email = email.map(checked_email).transpose()?;
    if password.is_some() && email.is_none() {
        return Err(AuthError::invalid(
            "email",
            "an account with a password needs an email to log in with",
        ));
    }
    let password_hash = match password {
        Some(password) => Some(secret::hash_password(checked_password(password)?).await?),
        None => None,
    };
    let id = Uuid::new_v4();
    let inserted = sqlx::query(
        "INSERT INTO accounts (id, display_name, email, password_hash, is_admin) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(display_name)
    .bind(email)
    .bind(password_hash)
    .bind(is_admin)
    .execute(pool)
    .await;
    match inserted {
        Ok(_) => Ok(id),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            Err(AuthError::Conflict {
                field: "email",
                message: "an account with this email already exists".to_string(),
            })
        }
        Err(error) => Err(error.into()),
    }
}

/// Gives `account` `role` in `territory` (nothing happens if it already has it).
pub async fn add_membership(
    pool: &PgPool,
    account: Uuid,
    territory: Uuid,
    role: Role,
    granted_by: Option<Uuid>,
) -> Result<(), AuthError> {
    sqlx::query(
        "INSERT INTO memberships (account_id, territory_id, role, granted_by) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(account)
    .bind(territory)
    .bind(role.as_str())
    .bind(granted_by)
    .execute(pool)
    .await
    .map_err(|error| {
        missing_reference(
            error,
            &[
                ("account_id", format!("account {account}")),
                ("territory_id", format!("territory {territory}")),
                (
                    "granted_by",
                    format!("account {}", granted_by.unwrap_or_default()),
                ),
            ],
        )
    })?;
    Ok(())
}

/// Creates a single-use invitation to `territory` with `role`, redeemable
/// until `ttl` from now. With `account`, redeeming it enrols another phone of
/// that person; without, it creates their account named `display_name`.
pub async fn create_invitation(
    pool: &PgPool,
    territory: Uuid,
    role: Role,
    display_name: &str,
    account: Option<Uuid>,
    created_by: Uuid,
    ttl: chrono::Duration,
) -> Result<Invitation, AuthError> {
    let display_name = required_text("displayName", display_name)?;
    let expires_at = expiry(ttl)?;
    let mut connection = pool.acquire().await?;
    insert_invitation(
        &mut connection,
        territory,
        role,
        display_name,
        account,
        created_by,
        expires_at,
    )
    .await
}

/// Most invitations one batch request creates: a class or an event, not a
/// whole town (a larger event makes several sheets).
pub const MAX_BATCH_INVITATIONS: usize = 100;

/// Creates one volunteer invitation per name in `display_names`, all or none
/// (one transaction), in the order given.
pub async fn create_invitation_batch(
    pool: &PgPool,
    territory: Uuid,
    display_names: &[String],
    created_by: Uuid,
    ttl: chrono::Duration,
) -> Result<Vec<Invitation>, AuthError> {
    if display_names.is_empty() || display_names.len() > MAX_BATCH_INVITATIONS {
        return Err(AuthError::invalid(
            "names",
            format!(
                "a batch has from 1 to {MAX_BATCH_INVITATIONS} invitations (got {})",
                display_names.len()
            ),
        ));
    }
    let names = display_names
        .iter()
        .map(|name| required_text("names", name))
        .collect::<Result<Vec<_>, _>>()?;
    let expires_at = expiry(ttl)?;
    let mut tx = pool.begin().await?;
    let mut invitations = Vec::with_capacity(names.len());
    for name in names {
        invitations.push(
            insert_invitation(
                &mut tx,
                territory,
                Role::Volunteer,
                name,
                None,
                created_by,
                expires_at,
            )
            .await?,
        );
    }
    tx.commit().await?;
    Ok(invitations)
}

fn expiry(ttl: chrono::Duration) -> Result<DateTime<Utc>, AuthError> {
    if ttl <= chrono::Duration::zero() || ttl > MAX_INVITATION_TTL {
        return Err(AuthError::invalid(
            "ttlHours",
            format!(
                "an invitation lasts between 1 hour and {} days",
                MAX_INVITATION_TTL.num_days()
            ),
        ));
    }
    Ok(Utc::now() + ttl)
}

async fn insert_invitation(
    connection: &mut PgConnection,
    territory: Uuid,
    role: Role,
    display_name: &str,
    account: Option<Uuid>,
    created_by: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<Invitation, AuthError> {
    let id = Uuid::new_v4();
    let code = secret::new_invitation_code();
    sqlx::query(
        "INSERT INTO invitations (id, code_hash, territory_id, role, display_name, account_id, \
           created_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(secret::fingerprint(&code))
    .bind(territory)
    .bind(role.as_str())
    .bind(display_name)
    .bind(account)
    .bind(created_by)
    .bind(expires_at)
    .execute(connection)
    .await
    .map_err(|error| {
        missing_reference(
            error,
            &[
                ("territory_id", format!("territory {territory}")),
                (
                    "account_id",
                    format!("account {}", account.unwrap_or_default()),
                ),
                ("created_by", format!("account {created_by}")),
            ],
        )
    })?;
    Ok(Invitation {
        id,
        code,
        expires_at,
    })
}

/// What became of an invitation that [`revoke_invitation`] could not revoke.
#[derive(Debug, PartialEq, Eq)]
pub enum RevokeInvitation {
    Revoked,
    NotFound,
    AlreadyRedeemed,
    AlreadyRevoked,
}

/// Withdraws an invitation not yet redeemed, so that its code is refused from
/// now on. An expired one may be revoked too (it changes nothing but its
/// state in the list).
pub async fn revoke_invitation(
    pool: &PgPool,
    invitation: Uuid,
    revoked_by: Uuid,
) -> Result<RevokeInvitation, AuthError> {
    let revoked = sqlx::query(
        "UPDATE invitations SET revoked_at = now(), revoked_by = $2 \
         WHERE id = $1 AND redeemed_at IS NULL AND revoked_at IS NULL",
    )
    .bind(invitation)
    .bind(revoked_by)
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    if revoked {
        return Ok(RevokeInvitation::Revoked);
    }
    let state: Option<(bool, bool)> = sqlx::query_as(
        "SELECT redeemed_at IS NOT NULL, revoked_at IS NOT NULL FROM invitations WHERE id = $1",
    )
    .bind(invitation)
    .fetch_optional(pool)
    .await?;
    Ok(match state {
        None => RevokeInvitation::NotFound,
        Some((true, _)) => RevokeInvitation::AlreadyRedeemed,
        Some((false, _)) => RevokeInvitation::AlreadyRevoked,
    })
}

/// Redeems an invitation for a new device credential, once: of concurrent
/// redemptions of one code exactly one succeeds (the conditional UPDATE takes
/// the row lock; the others find it redeemed).
pub async fn redeem_invitation(
    pool: &PgPool,
    code: &str,
    device_name: &str,
) -> Result<EnrolledDevice, AuthError> {
    let code = secret::normalise_invitation_code(code)
        .map_err(|message| AuthError::invalid("code", message))?;
    let device_name = required_text("deviceName", device_name)?;
    let code_hash = secret::fingerprint(&code);

    let mut tx = pool.begin().await?;
    let claimed: Option<(Uuid, Uuid, String, String, Option<Uuid>, Uuid)> = sqlx::query_as(
        "UPDATE invitations SET redeemed_at = now() \
         WHERE code_hash = $1 AND redeemed_at IS NULL AND revoked_at IS NULL \
           AND expires_at > now() \
         RETURNING id, territory_id, role, display_name, account_id, created_by",
    )
    .bind(&code_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((invitation, territory_id, role, display_name, account, created_by)) = claimed else {
        drop(tx);
        let state: Option<(bool, bool)> = sqlx::query_as(
            "SELECT redeemed_at IS NOT NULL, revoked_at IS NOT NULL \
             FROM invitations WHERE code_hash = $1",
        )
        .bind(&code_hash)
        .fetch_optional(pool)
        .await?;
        return Err(match state {
            None => AuthError::UnknownInvitation,
            Some((true, _)) => AuthError::InvitationUsed,
            Some((false, true)) => AuthError::InvitationRevoked,
            Some((false, false)) => AuthError::InvitationExpired,
        });
    };

    let account_id = match account {
        Some(account) => account,
        None => {
            let account = Uuid::new_v4();
            sqlx::query("INSERT INTO accounts (id, display_name) VALUES ($1, $2)")
                .bind(account)
                .bind(&display_name)
                .execute(&mut *tx)
                .await?;
            account
        }
    };
    sqlx::query(
        "INSERT INTO memberships (account_id, territory_id, role, granted_by) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(account_id)
    .bind(territory_id)
    .bind(role)
    .bind(created_by)
    .execute(&mut *tx)
    .await?;
    let device_id = Uuid::new_v4();
    let credential = secret::new_credential(secret::DEVICE_PREFIX);
    sqlx::query(
        "INSERT INTO devices (id, account_id, name, credential_hash) VALUES ($1, $2, $3, $4)",
    )
    .bind(device_id)
    .bind(account_id)
    .bind(device_name)
    .bind(secret::fingerprint(&credential))
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE invitations SET redeemed_device_id = $2 WHERE id = $1")
        .bind(invitation)
        .bind(device_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(EnrolledDevice {
        account_id,
        device_id,
        credential,
        territory_id,
    })
}

/// Revokes a device's credential: true if it was active until now, false if
/// unknown or already revoked. The notification is sent in the same
/// transaction, so the sync channel hears of it exactly when it takes effect.
pub async fn revoke_device(
    pool: &PgPool,
    device_id: Uuid,
    revoked_by: Uuid,
) -> Result<bool, AuthError> {
    let mut tx = pool.begin().await?;
    let revoked = sqlx::query(
        "UPDATE devices SET revoked_at = now(), revoked_by = $2 \
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(device_id)
    .bind(revoked_by)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if revoked {
        notify(&mut tx, DEVICE_REVOKED_CHANNEL, device_id).await?;
    }
    tx.commit().await?;
    Ok(revoked)
}

/// Removes `role` in `territory` from `account`: true if it held it. Its
/// open sync connections and live streams close when this commits
/// ([`close_account_connections`]), so that they reconnect with the roles it
/// holds now: a sync connection holds the roles it was opened with.
pub async fn remove_membership(
    pool: &PgPool,
    account: Uuid,
    territory: Uuid,
    role: Role,
) -> Result<bool, AuthError> {
    let mut tx = pool.begin().await?;
    let removed = sqlx::query(
        "DELETE FROM memberships WHERE account_id = $1 AND territory_id = $2 AND role = $3",
    )
    .bind(account)
    .bind(territory)
    .bind(role.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if removed {
        close_account_connections(&mut tx, account).await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// Disables an account: its password no longer logs in, its sessions are
/// ended, its phones' credentials are refused (the devices stay unrevoked,
/// so enabling the account brings them back), and every open connection and
/// live stream of it closes when this commits. Disabling a disabled account
/// keeps its first date and author. NotFound for an unknown account.
pub async fn disable_account(pool: &PgPool, account: Uuid, by: Uuid) -> Result<(), AuthError> {
    let mut tx = pool.begin().await?;
    let found = sqlx::query(
        "UPDATE accounts SET disabled_at = COALESCE(disabled_at, now()), \
           disabled_by = CASE WHEN disabled_at IS NULL THEN $2 ELSE disabled_by END \
         WHERE id = $1",
    )
    .bind(account)
    .bind(by)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !found {
        return Err(AuthError::NotFound(format!("account {account}")));
    }
    // Announced first, while the sessions are still open; heard at commit.
    close_account_connections(&mut tx, account).await?;
    sqlx::query(
        "UPDATE sessions SET revoked_at = now() \
         WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(account)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Enables a disabled account again (an enabled one stays as it is): its
/// phones sync again; its people log in again with their password.
/// NotFound for an unknown account; Conflict for an erased one, which stays
/// disabled for good.
pub async fn enable_account(pool: &PgPool, account: Uuid) -> Result<(), AuthError> {
    let erased: Option<bool> = sqlx::query_scalar(
        "UPDATE accounts SET disabled_at = CASE WHEN erased_at IS NULL THEN NULL ELSE disabled_at END, \
           disabled_by = CASE WHEN erased_at IS NULL THEN NULL ELSE disabled_by END \
         WHERE id = $1 RETURNING erased_at IS NOT NULL",
    )
    .bind(account)
    .fetch_optional(pool)
    .await?;
    match erased {
        None => Err(AuthError::NotFound(format!("account {account}"))),
        Some(true) => Err(AuthError::Conflict {
            field: "id",
            message: format!("account {account} was erased: it cannot be enabled again"),
        }),
        Some(false) => Ok(()),
    }
}

/// Announces every open session of `account` on [`SESSION_ENDED_CHANNEL`]
/// and every active device on [`DEVICE_REVOKED_CHANNEL`] when `tx` commits,
/// without ending or revoking any: every server process closes their sync
/// connections and live streams at once. For a change a connection would
/// not otherwise see (a role removed, the account disabled): a reconnecting
/// client is authenticated and authorised as the account is now. Returns
/// how many (sessions, devices) were announced.
pub async fn close_account_connections(
    tx: &mut PgConnection,
    account: Uuid,
) -> Result<(usize, usize), sqlx::Error> {
    let sessions: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM sessions \
         WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(account)
    .fetch_all(&mut *tx)
    .await?;
    let devices: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM devices WHERE account_id = $1 AND revoked_at IS NULL")
            .bind(account)
            .fetch_all(&mut *tx)
            .await?;
    for session in &sessions {
        notify(tx, SESSION_ENDED_CHANNEL, *session).await?;
    }
    for device in &devices {
        notify(tx, DEVICE_REVOKED_CHANNEL, *device).await?;
    }
    Ok((sessions.len(), devices.len()))
}

/// Password login attempts allowed per email in one [`LOGIN_WINDOW`].
pub const MAX_LOGIN_ATTEMPTS: i32 = 10;
/// The window over which login attempts are counted.
pub const LOGIN_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

/// Checks an email and password; a new session if they match an active
/// account, None otherwise — without saying which of the two was wrong.
/// At most [`MAX_LOGIN_ATTEMPTS`] per email in a [`LOGIN_WINDOW`] (counted in
/// the database, so across server processes, and before the costly password
/// check): online guessing of one account's password stays slow.
pub async fn login(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> Result<Option<SessionToken>, AuthError> {
    let email_key = email.trim().to_lowercase();
    count_attempt(pool, &email_key).await?;
    let account: Option<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT id, password_hash FROM accounts \
         WHERE lower(email) = lower($1) AND disabled_at IS NULL",
    )
    .bind(email.trim())
    .fetch_optional(pool)
    .await?;
    let (account, stored) = account.unzip();
    let matches = secret::verify_password(password.to_string(), stored.flatten()).await?;
    let (Some(account), true) = (account, matches) else {
        return Ok(None);
    };
    forget_attempts(pool, &email_key).await?;
    let token = secret::new_credential(secret::SESSION_PREFIX);
    let expires_at = Utc::now() + SESSION_TTL;
    sqlx::query(
        "INSERT INTO sessions (id, account_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(Uuid::new_v4())
    .bind(account)
    .bind(secret::fingerprint(&token))
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(Some(SessionToken { token, expires_at }))
}

/// Counts one password attempt against `key` (an email, or an account's
/// password change), before the costly check: beyond [`MAX_LOGIN_ATTEMPTS`]
/// in a [`LOGIN_WINDOW`] it is refused. Counted in the database, so across
/// server processes, and atomically: parallel guesses count each.
pub(super) async fn count_attempt(pool: &PgPool, key: &str) -> Result<(), AuthError> {
    let window_seconds = LOGIN_WINDOW.num_seconds() as f64;
    sqlx::query(
        "DELETE FROM login_attempts WHERE window_started < now() - make_interval(secs => $1)",
    )
    .bind(window_seconds)
    .execute(pool)
    .await?;
    let (attempts, window_started): (i32, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO login_attempts AS a (email_key, attempts, window_started) \
         VALUES ($1, 1, now()) \
         ON CONFLICT (email_key) DO UPDATE SET \
           attempts = CASE WHEN a.window_started < now() - make_interval(secs => $2) \
                      THEN 1 ELSE a.attempts + 1 END, \
           window_started = CASE WHEN a.window_started < now() - make_interval(secs => $2) \
                            THEN now() ELSE a.window_started END \
         RETURNING attempts, window_started",
    )
    .bind(key)
    .bind(window_seconds)
    .fetch_one(pool)
    .await?;
    if attempts > MAX_LOGIN_ATTEMPTS {
        let retry_after =
            (window_started + LOGIN_WINDOW - Utc::now()).max(chrono::Duration::seconds(1));
        return Err(AuthError::TooManyAttempts { retry_after });
    }
    Ok(())
}

/// Forgets `key`'s attempts once one succeeded.
pub(super) async fn forget_attempts(pool: &PgPool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_attempts WHERE email_key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends a session; its token is refused from now on.
pub async fn logout(pool: &PgPool, session_id: Uuid) -> Result<(), AuthError> {
    let mut tx = pool.begin().await?;
    let ended =
        sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind(session_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    if ended {
        notify(&mut tx, SESSION_ENDED_CHANNEL, session_id).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Sends `id` on `channel` when `tx` commits (a listener hears of a revocation
/// exactly when it takes effect).
async fn notify(tx: &mut PgConnection, channel: &str, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2::text)")
        .bind(channel)
        .bind(id)
        .execute(tx)
        .await?;
    Ok(())
}

/// `value` trimmed, or an error naming `field` if that leaves nothing or too much.
fn required_text<'a>(field: &'static str, value: &'a str) -> Result<&'a str, AuthError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AuthError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(AuthError::invalid(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(value)
}

/// A plausible email, trimmed: deliverability is not checked, only that it
/// can identify someone at login.
fn checked_email(email: &str) -> Result<&str, AuthError> {
    let email = email.trim();
    let plausible = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if plausible {
        Ok(email)
    } else {
        Err(AuthError::invalid(
            "email",
            "must be an email address like name@example.org",
        ))
    }
}

pub(super) fn checked_password(password: &str) -> Result<String, AuthError> {
    let chars = password.chars().count();
    if chars < secret::MIN_PASSWORD_CHARS {
        return Err(AuthError::invalid(
            "password",
            format!(
                "must be at least {} characters (got {chars}); a few words make a good one",
                secret::MIN_PASSWORD_CHARS
            ),
        ));
    }
    if chars > secret::MAX_PASSWORD_CHARS {
        return Err(AuthError::invalid(
            "password",
            format!("must be at most {} characters", secret::MAX_PASSWORD_CHARS),
        ));
    }
    Ok(password.to_string())
}

/// A foreign-key violation, as the missing row it means: `references` pairs
/// a column (as it appears in the constraint's name) with what it points to.
fn missing_reference(error: sqlx::Error, references: &[(&str, String)]) -> AuthError {
    if let sqlx::Error::Database(db) = &error {
        if db.is_foreign_key_violation() {
            let constraint = db.constraint().unwrap_or_default();
            if let Some((_, what)) = references
                .iter()
                .find(|(column, _)| constraint.contains(column))
            {
                return AuthError::NotFound(what.clone());
            }
        }
    }
    error.into()
}
