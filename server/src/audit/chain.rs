//! Chaining: pending entries (appended by the transactions that accepted
//! them, with no lock) are moved into `audit_log` by the database function
//! `audit_chain_pending` (migration 0009), whose trigger gives each the next
//! seq and hash of its territory. Done in the background, so that no commit
//! waits for another territory's or its own territory's chain head, and
//! before every read of the chain, so that a verification covers everything
//! accepted until then.

use std::time::Duration;

use sqlx::PgPool;

/// Entries one chaining transaction moves at most.
const BATCH: i32 = 5000;
/// How often each process chains what is pending.
pub const CHAIN_EVERY: Duration = Duration::from_millis(500);

/// Chains every entry pending now (batch after batch); returns how many.
/// Another process chaining at the same moment makes this one return
/// early: that one chains them.
pub async fn chain_pending(pool: &PgPool) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let moved: i32 = sqlx::query_scalar("SELECT audit_chain_pending($1)")
            .bind(BATCH)
            .fetch_one(pool)
            .await?;
        total += moved as u64;
        if moved < BATCH {
            return Ok(total);
        }
    }
}
