//! What a person does with their own account: change their password, see
//! their open web sessions and end them. Ending a session, here as at logout,
//! is announced on [`SESSION_ENDED_CHANNEL`] when it commits, so the live
//! streams it holds close in every process.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    admin::{checked_password, count_attempt, forget_attempts, SESSION_ENDED_CHANNEL},
    secret, AuthError,
};

/// One of the caller's web sessions still open.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenSession {
    pub id: Uuid,
    /// When the password login made it.
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The session this request came with.
    pub current: bool,
}

/// Replaces `account`'s password after checking the old one (at most
/// [`MAX_LOGIN_ATTEMPTS`](super::admin::MAX_LOGIN_ATTEMPTS) tries in a
/// [`LOGIN_WINDOW`](super::admin::LOGIN_WINDOW)), and ends every
/// other session of the account (someone who knew the old password may hold
/// one); `keep` is the session the change was made from. Returns how many
/// sessions were ended.
pub async fn change_password(
    pool: &PgPool,
    account: Uuid,
    keep: Uuid,
    old_password: &str,
    new_password: &str,
) -> Result<u64, AuthError> {
    let new_password = checked_password(new_password).map_err(|error| match error {
        AuthError::Invalid { message, .. } => AuthError::Invalid {
            field: "newPassword",
            message,
        },
        other => other,
    })?;
    let stored: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM accounts WHERE id = $1")
            .bind(account)
            .fetch_optional(pool)
            .await?
            .flatten();
    if stored.is_none() {
        return Err(AuthError::invalid(
            "oldPassword",
            "this account has no password: it logs in with its phones only",
        ));
    }
    // Throttled as logins are: a stolen session must not become a way to
    // guess the password it did not need.
    let attempts_key = format!("password-change:{account}");
    count_attempt(pool, &attempts_key).await?;
    if !secret::verify_password(old_password.to_string(), stored).await? {
        return Err(AuthError::invalid(
            "oldPassword",
            "is not this account's current password",
        ));
    }
    forget_attempts(pool, &attempts_key).await?;
    let hash = secret::hash_password(new_password).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE accounts SET password_hash = $2 WHERE id = $1")
        .bind(account)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    let ended: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now() \
         WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > now() \
           AND id <> $2 \
         RETURNING id",
    )
    .bind(account)
    .bind(keep)
    .fetch_all(&mut *tx)
    .await?;
    announce_ended(&mut tx, &ended).await?;
    tx.commit().await?;
    Ok(ended.len() as u64)
}

/// The account's open sessions, newest first.
pub async fn open_sessions(
    pool: &PgPool,
    account: Uuid,
    current: Uuid,
) -> Result<Vec<OpenSession>, AuthError> {
    let rows: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, created_at, expires_at FROM sessions \
         WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > now() \
         ORDER BY created_at DESC, id",
    )
    .bind(account)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, created_at, expires_at)| OpenSession {
            id,
            created_at,
            expires_at,
            current: id == current,
        })
        .collect())
}

/// Ends one of the account's own open sessions.
pub async fn end_session(pool: &PgPool, account: Uuid, session: Uuid) -> Result<(), AuthError> {
    let mut tx = pool.begin().await?;
    let ended: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now() \
         WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL AND expires_at > now() \
         RETURNING id",
    )
    .bind(session)
    .bind(account)
    .fetch_all(&mut *tx)
    .await?;
    if ended.is_empty() {
        return Err(AuthError::NotFound(format!("open session {session}")));
    }
    announce_ended(&mut tx, &ended).await?;
    tx.commit().await?;
    Ok(())
}

/// Announces each ended session when `tx` commits.
async fn announce_ended(tx: &mut PgConnection, sessions: &[Uuid]) -> Result<(), sqlx::Error> {
    for session in sessions {
        sqlx::query("SELECT pg_notify($1, $2::text)")
            .bind(SESSION_ENDED_CHANNEL)
            .bind(session)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
