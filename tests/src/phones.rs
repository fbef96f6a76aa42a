//! Enrolled phones for end-to-end tests: a volunteer account in a territory,
//! enrolled through a real invitation, holding a real device credential.

use mobile_bridge::DeviceCredential;
use server::auth::{admin, Role};
use sqlx::PgPool;
use sync::documents::NotebookHeader;
use uuid::Uuid;

/// A volunteer with one enrolled device.
#[derive(Debug, Clone)]
pub struct Volunteer {
    pub account_id: Uuid,
    pub territory_id: Uuid,
    pub device: DeviceCredential,
}

impl Volunteer {
    /// The header of this volunteer's notebook in their territory.
    pub fn notebook(&self) -> NotebookHeader {
        NotebookHeader {
            territory_id: self.territory_id,
            owner_id: self.account_id,
        }
    }
}

/// A new territory with a coordinator who can invite volunteers.
pub struct Territory {
    pub id: Uuid,
    pub coordinator: Uuid,
}

pub async fn territory(pool: &PgPool, name: &str) -> anyhow::Result<Territory> {
    territory_within(pool, name, None).await
}

/// A territory with a GeoJSON (Multi)Polygon boundary, and its coordinator.
pub async fn territory_within(
    pool: &PgPool,
    name: &str,
    boundary: Option<&serde_json::Value>,
) -> anyhow::Result<Territory> {
    let id = admin::create_territory(pool, name, boundary).await?;
    let coordinator =
        admin::create_account(pool, &format!("Coordinator of {name}"), None, None, false).await?;
    admin::add_membership(pool, coordinator, id, Role::Coordinator, None).await?;
    Ok(Territory { id, coordinator })
}

/// A fresh invitation code for a new volunteer of `territory`, for a phone
/// (such as `fieldkit`) to redeem over HTTP.
pub async fn invitation_code(
    pool: &PgPool,
    territory: &Territory,
    name: &str,
) -> anyhow::Result<String> {
    invite(pool, territory, name, None).await
}

/// A volunteer invitation from the territory's coordinator; `account` invites
/// an existing volunteer (for another device).
async fn invite(
    pool: &PgPool,
    territory: &Territory,
    name: &str,
    account: Option<Uuid>,
) -> anyhow::Result<String> {
    let invitation = admin::create_invitation(
        pool,
        territory.id,
        Role::Volunteer,
        name,
        account,
        territory.coordinator,
        chrono::Duration::hours(1),
    )
    .await?;
    Ok(invitation.code)
}

/// Invites a new volunteer into `territory` and redeems the invitation as a phone would.
pub async fn enrol_volunteer(
    pool: &PgPool,
    territory: &Territory,
    name: &str,
) -> anyhow::Result<Volunteer> {
    let code = invite(pool, territory, name, None).await?;
    let enrolled = admin::redeem_invitation(pool, &code, &format!("{name}'s phone")).await?;
    Ok(Volunteer {
        account_id: enrolled.account_id,
        territory_id: enrolled.territory_id,
        device: DeviceCredential {
            device_id: enrolled.device_id,
            secret: enrolled.credential,
        },
    })
}

/// Another device for an existing volunteer (their second phone).
pub async fn enrol_second_device(
    pool: &PgPool,
    territory: &Territory,
    volunteer: &Volunteer,
) -> anyhow::Result<DeviceCredential> {
    let code = invite(pool, territory, "second phone", Some(volunteer.account_id)).await?;
    let enrolled = admin::redeem_invitation(pool, &code, "second phone").await?;
    Ok(DeviceCredential {
        device_id: enrolled.device_id,
        secret: enrolled.credential,
    })
}
