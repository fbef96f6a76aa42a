//! A forgotten password: an admin issues a one-time reset code for a
//! person's account (by email), passes it on, and the person sets a new
//! password with it. Redeeming ends every session of the account, since
//! whoever knew the old password may hold one.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    own_account::{checked_new_password, end_sessions},
    secret, AuthError,
};

/// How long a reset code works: long enough to reach the person, short
/// enough that a code lying in a mailbox goes stale.
pub const RESET_TTL: Duration = Duration::hours(24);
/// Reset codes start with it, so they are told apart from other secrets.
pub const RESET_PREFIX: &str = "fnr_";

/// A reset, issued: the code is shown this once.
pub struct IssuedReset {
    pub account_id: Uuid,
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedReset")
            .field("account_id", &self.account_id)
            .field("code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Issues a reset code for the account whose email is `email` (any case),
/// withdrawing the ones it had still unused.
pub async fn issue(pool: &PgPool, issued_by: Uuid, email: &str) -> Result<IssuedReset, AuthError> {
    let mut tx = pool.begin().await?;
    let account: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM accounts WHERE lower(email) = lower($1) AND disabled_at IS NULL",
    )
    .bind(email.trim())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(account_id) = account else {
        return Err(AuthError::NotFound(format!(
            "active account with the email {:?}",
            email.trim()
        )));
    };
    sqlx::query(
        "UPDATE password_resets SET withdrawn_at = now() \
         WHERE account_id = $1 AND used_at IS NULL AND withdrawn_at IS NULL",
    )
    .bind(account_id)
    .execute(&mut *tx)
    .await?;
    let code = secret::new_credential(RESET_PREFIX);
    let expires_at = Utc::now() + RESET_TTL;
    sqlx::query(
        "INSERT INTO password_resets (id, account_id, code_hash, issued_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(account_id)
    .bind(secret::fingerprint(&code))
    .bind(issued_by)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(IssuedReset {
        account_id,
        code,
        expires_at,
    })
}

/// Sets a new password with a reset code, once; every session of the
/// account ends.
pub async fn redeem(pool: &PgPool, code: &str, new_password: &str) -> Result<(), AuthError> {
    let new_password = checked_new_password(new_password)?;
    let hash = secret::hash_password(new_password).await?;
    let mut tx = pool.begin().await?;
    let found: Option<(Uuid, bool)> = sqlx::query_as(
        "UPDATE password_resets SET used_at = now() \
         WHERE code_hash = $1 AND used_at IS NULL AND withdrawn_at IS NULL \
         RETURNING account_id, expires_at > now()",
    )
    .bind(secret::fingerprint(code.trim()))
    .fetch_optional(&mut *tx)
    .await?;
    let account = match found {
        Some((account, true)) => account,
        Some((_, false)) => return Err(AuthError::ResetUnusable),
        None => {
            let known: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM password_resets WHERE code_hash = $1)",
            )
            .bind(secret::fingerprint(code.trim()))
            .fetch_one(&mut *tx)
            .await?;
            return Err(if known {
                AuthError::ResetUnusable
            } else {
                AuthError::UnknownReset
            });
        }
    };
    sqlx::query("UPDATE accounts SET password_hash = $2 WHERE id = $1")
        .bind(account)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    end_sessions(&mut tx, account, None).await?;
    tx.commit().await?;
    Ok(())
}
