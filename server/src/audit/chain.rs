//! Chaining: pending entries (appended by the transactions that accepted
//! them, with no lock) are moved into `audit_log` by the database function
//! `audit_chain_pending` (migrations 0009, 0013), which gives each the next
//! seq and hash of its territory. Done in the background, so that no commit
//! waits for another territory's or its own territory's chain head, and
//! before every read of the chain, so that a verification covers everything
//! accepted until then.
//!
//! The background work ([`catch_up`]: accepted commits written out as
//! entries, then chained) stands aside while the sync core is storing
//! phones' changes ([`Pacer`]): it competes with the commits for the CPU and
//! the database, and a change is safe the moment its accepting transaction
//! commits; only its entries and their places in the chain wait.

use std::time::Duration;

use sqlx::PgPool;

/// Entries one chaining transaction moves at most.
const BATCH: i32 = 5000;
/// How often each process considers chaining what is pending.
pub const CHAIN_EVERY: Duration = Duration::from_millis(500);
/// The longest the background chaining stands aside for a busy sync core:
/// under sustained load the chain lags the log by this much at most (plus
/// one tick).
pub const MAX_DEFERRAL: Duration = Duration::from_secs(10);

/// Brings the chain up to everything accepted until now: queued commits
/// written out as entries (`super::trail::write_out`), then every pending
/// entry chained; returns how many entries were chained.
pub async fn catch_up(pool: &PgPool) -> sqlx::Result<u64> {
    super::trail::write_out(pool).await?;
    chain_pending(pool).await
}

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

/// Decides, tick after tick, whether the background catch-up runs: not
/// while commits are being handed to storage, unless it has already stood
/// aside for [`MAX_DEFERRAL`].
#[derive(Debug, Default)]
pub struct Pacer {
    commits_seen: u64,
    deferred: Duration,
}

impl Pacer {
    /// `commits_handed` is the sync core's count now; `tick` the time since
    /// the last call.
    pub fn ready(&mut self, commits_handed: u64, tick: Duration) -> bool {
        let busy = commits_handed != self.commits_seen;
        self.commits_seen = commits_handed;
        if busy && self.deferred + tick < MAX_DEFERRAL {
            self.deferred += tick;
            return false;
        }
        self.deferred = Duration::ZERO;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_core_is_chained_at_every_tick() {
        let mut pacer = Pacer::default();
        assert!((0..5).all(|_| pacer.ready(0, CHAIN_EVERY)));
    }

    #[test]
    fn commits_flowing_defer_the_chaining_until_they_stop() {
        let mut pacer = Pacer::default();
        assert!(!pacer.ready(10, CHAIN_EVERY));
        assert!(!pacer.ready(25, CHAIN_EVERY));
        assert!(
            pacer.ready(25, CHAIN_EVERY),
            "no commit since the last tick"
        );
        assert!(!pacer.ready(26, CHAIN_EVERY), "busy again");
    }

    #[test]
    fn sustained_commits_defer_the_chaining_no_longer_than_the_bound() {
        let mut pacer = Pacer::default();
        let ticks = (MAX_DEFERRAL.as_millis() / CHAIN_EVERY.as_millis()) as u64;
        let ready: Vec<bool> = (1..=2 * ticks)
            .map(|n| pacer.ready(n, CHAIN_EVERY))
            .collect();
        let chained_at: Vec<u64> = (1..=2 * ticks).filter(|n| ready[*n as usize - 1]).collect();
        assert_eq!(chained_at, vec![ticks, 2 * ticks]);
    }
}
