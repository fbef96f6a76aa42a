//! Who is asking: accounts, their roles per territory, and the credentials that
//! stand for them (a web session after a password login, or a phone's device
//! credential obtained by redeeming an invitation).
//!
//! [`authenticate`] turns a bearer token into a [`Principal`]; the HTTP
//! extractor (`http::extractor`) and the sync handshake both call it, so there
//! is one definition of "a valid credential". What each role may do is decided
//! where it is done: per route in `http`, per document and change in
//! `sync_auth`.

pub mod admin;
pub mod own_account;
pub mod password_reset;
pub mod secret;

use std::str::FromStr;

use sqlx::PgPool;
use uuid::Uuid;

/// A role someone holds in one territory. Admin is not one of them: it is
/// global, on the account (`accounts.is_admin`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Records sightings, reports and hours from a phone.
    Volunteer,
    /// Reviews the territory's inventory, enrols volunteers, manages sites.
    Coordinator,
    /// A régie's auditor: reads everything in the territory, writes nothing.
    RegieAuditor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Volunteer, Role::Coordinator, Role::RegieAuditor];

    /// The name stored in `memberships.role` and used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Volunteer => "volunteer",
            Role::Coordinator => "coordinator",
            Role::RegieAuditor => "regie_auditor",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(name: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| {
                format!("must be volunteer, coordinator or regie_auditor (got {name:?})")
            })
    }
}

/// For rows read with `#[sqlx(try_from = "String")]`: `memberships.role` as stored.
impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(name: String) -> Result<Role, String> {
        name.parse()
    }
}

/// One role in one territory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub territory_id: Uuid,
    pub role: Role,
}

/// What the request presented, by id (never the secret itself): a session can
/// be logged out, a device revoked, and the sync channel closes a revoked
/// device's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session { session_id: Uuid },
    Device { device_id: Uuid },
}

/// The authenticated account behind a request, with its roles as they were
/// when the credential was checked.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account_id: Uuid,
    pub display_name: String,
    pub is_admin: bool,
    pub memberships: Vec<Membership>,
    pub credential: Credential,
}

impl Principal {
    /// Holds `role` in `territory` (admin rights are not counted here).
    pub fn has_role(&self, territory: Uuid, role: Role) -> bool {
        self.memberships
            .iter()
            .any(|m| m.territory_id == territory && m.role == role)
    }

    /// Holds any role in `territory` (admin rights are not counted here).
    pub fn is_member(&self, territory: Uuid) -> bool {
        self.memberships.iter().any(|m| m.territory_id == territory)
    }

    /// Territories where one of `roles` is held, each once.
    pub fn territories_with(&self, roles: &[Role]) -> Vec<Uuid> {
        let mut territories: Vec<Uuid> = self
            .memberships
            .iter()
            .filter(|m| roles.contains(&m.role))
            .map(|m| m.territory_id)
            .collect();
        territories.sort_unstable();
        territories.dedup();
        territories
    }
}

/// Why an account operation failed. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input that cannot be used, naming its field.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(String),
    /// Would duplicate something unique (an email).
    #[error("{field}: {message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("this invitation code is not known; check it with the coordinator who gave it")]
    UnknownInvitation,
    #[error("this invitation has already been used; ask the coordinator for a new one")]
    InvitationUsed,
    #[error("this invitation has expired; ask the coordinator for a new one")]
    InvitationExpired,
    #[error("this password reset code is not known; check it, or ask an admin for a new one")]
    UnknownReset,
    #[error(
        "this password reset code was used, replaced or has expired; ask an admin for a new one"
    )]
    ResetUnusable,
    #[error("this invitation was withdrawn by the coordinator; ask them for a new one")]
    InvitationRevoked,
    /// Too many password logins for one email in a short time.
    #[error("too many login attempts for this email; try again in {} minutes", (retry_after.num_seconds() + 59) / 60)]
    TooManyAttempts { retry_after: chrono::Duration },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("password hashing: {0}")]
    Hashing(String),
}

impl AuthError {
    fn invalid(field: &'static str, message: impl Into<String>) -> AuthError {
        AuthError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Resolves a bearer token (session or device credential) to its principal;
/// None if unknown, expired, revoked, or the account is disabled. Updates
/// `devices.last_seen_at`, at most once a minute per device so that a storm of
/// reconnecting phones does not turn into a storm of writes.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<Principal>, sqlx::Error> {
    // The prefix says which table to look in; anything else is no credential
    // of ours, refused without a query.
    let found: Option<(Uuid, Uuid, String, bool)> = if token.starts_with(secret::SESSION_PREFIX) {
        sqlx::query_as(
            "SELECT s.id, a.id, a.display_name, a.is_admin \
             FROM sessions s JOIN accounts a ON a.id = s.account_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() \
               AND a.disabled_at IS NULL",
        )
        .bind(secret::fingerprint(token))
        .fetch_optional(pool)
        .await?
    } else if token.starts_with(secret::DEVICE_PREFIX) {
        sqlx::query_as(
            "WITH device AS ( \
               SELECT d.id, d.account_id, d.last_seen_at \
               FROM devices d JOIN accounts a ON a.id = d.account_id \
               WHERE d.credential_hash = $1 AND d.revoked_at IS NULL AND a.disabled_at IS NULL), \
             touched AS ( \
               UPDATE devices SET last_seen_at = now() FROM device \
               WHERE devices.id = device.id \
                 AND (device.last_seen_at IS NULL \
                      OR device.last_seen_at < now() - interval '1 minute')) \
             SELECT device.id, a.id, a.display_name, a.is_admin \
             FROM device JOIN accounts a ON a.id = device.account_id",
        )
        .bind(secret::fingerprint(token))
        .fetch_optional(pool)
        .await?
    } else {
        None
    };
    let Some((credential_id, account_id, display_name, is_admin)) = found else {
        return Ok(None);
    };
    let credential = if token.starts_with(secret::SESSION_PREFIX) {
        Credential::Session {
            session_id: credential_id,
        }
    } else {
        Credential::Device {
            device_id: credential_id,
        }
    };
    Ok(Some(Principal {
        account_id,
        display_name,
        is_admin,
        memberships: memberships(pool, account_id).await?,
        credential,
    }))
}

/// A credential checked again, by its id.
#[derive(Debug, Clone)]
pub struct Reauthenticated {
    /// Its account and roles as they are now.
    pub principal: Principal,
    /// When it stops being valid by itself: a session's expiry; None for a
    /// device credential, valid until revoked.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Checks again a credential [`authenticate`] accepted earlier, from its id
/// (so a long-lived answer, such as the live updates stream, need not keep
/// the secret): None once it expired, was logged out or revoked, or its
/// account was disabled — the same conditions as [`authenticate`]'s.
pub async fn reauthenticate(
    pool: &PgPool,
    credential: &Credential,
) -> Result<Option<Reauthenticated>, sqlx::Error> {
    type Row = (Uuid, String, bool, Option<chrono::DateTime<chrono::Utc>>);
    let found: Option<Row> = match credential {
        Credential::Session { session_id } => {
            sqlx::query_as(
                "SELECT a.id, a.display_name, a.is_admin, s.expires_at \
                 FROM sessions s JOIN accounts a ON a.id = s.account_id \
                 WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now() \
                   AND a.disabled_at IS NULL",
            )
            .bind(session_id)
            .fetch_optional(pool)
            .await?
        }
        Credential::Device { device_id } => {
            sqlx::query_as(
                "SELECT a.id, a.display_name, a.is_admin, NULL::timestamptz \
                 FROM devices d JOIN accounts a ON a.id = d.account_id \
                 WHERE d.id = $1 AND d.revoked_at IS NULL AND a.disabled_at IS NULL",
            )
            .bind(device_id)
            .fetch_optional(pool)
            .await?
        }
    };
    let Some((account_id, display_name, is_admin, expires_at)) = found else {
        return Ok(None);
    };
    Ok(Some(Reauthenticated {
        principal: Principal {
            account_id,
            display_name,
            is_admin,
            memberships: memberships(pool, account_id).await?,
            credential: credential.clone(),
        },
        expires_at,
    }))
}

/// Every role `account` holds.
pub async fn memberships(pool: &PgPool, account: Uuid) -> Result<Vec<Membership>, sqlx::Error> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT territory_id, role FROM memberships WHERE account_id = $1 \
         ORDER BY territory_id, role",
    )
    .bind(account)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(territory_id, role)| {
            let role = role
                .parse()
                .map_err(|message: String| sqlx::Error::Decode(message.into()))?;
            Ok(Membership { territory_id, role })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(memberships: &[(Uuid, Role)]) -> Principal {
        Principal {
            account_id: Uuid::new_v4(),
            display_name: "Camille".to_string(),
            is_admin: false,
            memberships: memberships
                .iter()
                .map(|&(territory_id, role)| Membership { territory_id, role })
                .collect(),
            credential: Credential::Session {
                session_id: Uuid::new_v4(),
            },
        }
    }

    #[test]
    fn roles_are_held_per_territory() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let someone = principal(&[(a, Role::Coordinator), (b, Role::Volunteer)]);
        assert!(someone.has_role(a, Role::Coordinator));
        assert!(!someone.has_role(b, Role::Coordinator));
        assert!(someone.is_member(b));
        assert!(!someone.is_member(Uuid::new_v4()));
        assert_eq!(someone.territories_with(&[Role::Volunteer]), vec![b]);
        let mut both = vec![a, b];
        both.sort_unstable();
        assert_eq!(
            someone.territories_with(&[Role::Volunteer, Role::Coordinator]),
            both
        );
    }

    #[test]
    fn role_names_round_trip_and_unknown_ones_are_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::json!(role.as_str())
            );
        }
        assert!("admin".parse::<Role>().unwrap_err().contains("\"admin\""));
    }
}
