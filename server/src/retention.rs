//! Personal data kept no longer than it serves (docs/PRIVACY.md lists each
//! kind and why it is kept that long): ended sessions, invitations that
//! can no longer be redeemed, password resets, login attempts and
//! abandoned photo uploads are deleted on a schedule. Every process runs the
//! purge every [`PURGE_EVERY`]; an advisory lock lets one at a time do it.

use std::time::Duration;

use sqlx::PgPool;

/// How often each process tries to purge.
pub const PURGE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Days an ended session (expired or logged out) is kept: long enough to
/// answer "who was logged in" after an incident, no longer.
pub const SESSION_DAYS: i32 = 30;
/// Days an invitation is kept once redeemed, revoked or expired: the
/// invitations page shows a class's recent cards; the account and phone it
/// made keep their own dates.
pub const INVITATION_DAYS: i32 = 90;
/// Days a password reset is kept once used, withdrawn or expired.
pub const PASSWORD_RESET_DAYS: i32 = 30;

/// Deletes what has been kept long enough, in one transaction; skipped when
/// another process is purging. The rows deleted.
pub async fn purge(pool: &PgPool) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let ours: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('fieldnotes retention'))")
            .fetch_one(&mut *tx)
            .await?;
    if !ours {
        return Ok(0);
    }
    let login_window = crate::auth::admin::LOGIN_WINDOW.num_seconds() as f64;
    let abandoned_upload = crate::photos::upload::ABANDONED_AFTER.as_secs_f64();
    let purges = [
        (
            "sessions",
            sqlx::query(
                "DELETE FROM sessions \
                 WHERE least(expires_at, coalesce(revoked_at, expires_at)) \
                       < now() - make_interval(days => $1)",
            )
            .bind(SESSION_DAYS),
        ),
        (
            "invitations",
            sqlx::query(
                "DELETE FROM invitations \
                 WHERE least(expires_at, coalesce(redeemed_at, expires_at), \
                             coalesce(revoked_at, expires_at)) \
                       < now() - make_interval(days => $1)",
            )
            .bind(INVITATION_DAYS),
        ),
        (
            "password_resets",
            sqlx::query(
                "DELETE FROM password_resets \
                 WHERE least(expires_at, coalesce(used_at, expires_at), \
                             coalesce(withdrawn_at, expires_at)) \
                       < now() - make_interval(days => $1)",
            )
            .bind(PASSWORD_RESET_DAYS),
        ),
        // Keyed by email: gone once their throttling window is over.
        (
            "login_attempts",
            sqlx::query(
                "DELETE FROM login_attempts WHERE window_started < now() - make_interval(secs => $1)",
            )
            .bind(login_window),
        ),
        // Their chunks go with them (ON DELETE CASCADE).
        (
            "photo_uploads",
            sqlx::query(
                "DELETE FROM photo_uploads WHERE updated_at < now() - make_interval(secs => $1)",
            )
            .bind(abandoned_upload),
        ),
    ];
    let mut deleted = 0;
    for (table, statement) in purges {
        let rows = statement.execute(&mut *tx).await?.rows_affected();
        if rows > 0 {
            tracing::info!(table, rows, "purged personal data kept long enough");
        }
        deleted += rows;
    }
    tx.commit().await?;
    Ok(deleted)
}
