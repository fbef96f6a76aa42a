//! Chaining: pending entries (appended by the transactions that accepted
//! them, with no lock) are moved into `audit_log` by the database function
//! `audit_chain_pending` (migrations 0009, 0013), which gives each the next
//! seq and hash of its territory. Done in the background, so that no commit
//! waits for another territory's or its own territory's chain head, and
//! before every read of the chain, so that a verification covers everything
//! accepted until then.
//!
//! The background work (accepted commits written out as entries, then
//! chained) stands aside while phones are syncing ([`Pacer`]), and returns
//! between two small batches once they start again ([`catch_up_unless`]):
//! it competes with the sync core for the CPU and the database, and a
//! change is safe the moment its accepting transaction commits; only its
//! entries and their places in the chain wait.

use std::time::Duration;

use sqlx::PgPool;

use crate::sync::Activity;

/// Entries one chaining transaction moves at most: small enough that
/// background chaining returns soon once phones sync again.
const BATCH: i32 = 1000;
/// How often each process considers chaining what is pending.
pub const CHAIN_EVERY: Duration = Duration::from_millis(500);
/// The longest the background chaining stands aside for a busy sync core:
/// under sustained load the chain lags the log by this much at most (plus
/// one catch-up).
pub const MAX_DEFERRAL: Duration = Duration::from_secs(10);

/// Brings the chain up to everything accepted until now: queued commits
/// written out as entries (`super::trail::write_out`), then every pending
/// entry chained; returns how many entries were chained.
pub async fn catch_up(pool: &PgPool) -> sqlx::Result<u64> {
    catch_up_unless(pool, &|| false).await
}

/// [`catch_up`] before a read of the trail: a failure (the database failing
/// meanwhile; a commit that cannot be written out is set aside, not a
/// failure) is logged and the read goes on over what is chained.
pub async fn catch_up_before_reading(pool: &PgPool) {
    if let Err(error) = catch_up(pool).await {
        tracing::error!(%error, "audit: the trail could not be brought up to date before a read");
    }
}

/// [`catch_up`], returning early between two batches once `interrupted`
/// says so: the background's turn ends when phones sync again. Entries are
/// chained only once every queued commit is written out, so that they are
/// chained in the order their commits began.
pub async fn catch_up_unless(
    pool: &PgPool,
    interrupted: &(dyn Fn() -> bool + Sync),
) -> sqlx::Result<u64> {
    if !super::trail::write_out(pool, interrupted).await? {
        return Ok(0);
    }
    chain_batches(pool, interrupted).await
}

/// Chains every entry pending now (batch after batch); returns how many.
/// Another process chaining at the same moment makes this one return
/// early: that one chains them.
pub async fn chain_pending(pool: &PgPool) -> sqlx::Result<u64> {
    chain_batches(pool, &|| false).await
}

async fn chain_batches(
    pool: &PgPool,
    interrupted: &(dyn Fn() -> bool + Sync),
) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let moved: i32 = sqlx::query_scalar("SELECT audit_chain_pending($1)")
            .bind(BATCH)
            .fetch_one(pool)
            .await?;
        total += moved as u64;
        if moved < BATCH || interrupted() {
            return Ok(total);
        }
    }
}

/// What the background catch-up does at a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Phones synced since the last tick or are syncing: nothing now.
    StandAside,
    /// A quiet tick: catch up, until phones sync again.
    UntilActivity,
    /// Stood aside for [`MAX_DEFERRAL`]: catch up whatever the activity, so
    /// that sustained load cannot grow the queue without bound.
    ToTheEnd,
}

/// Decides, tick after tick, what the background catch-up does, from the
/// sync core's activity: it stands aside while messages arrive or are being
/// handled, [`MAX_DEFERRAL`] at most.
#[derive(Debug, Default)]
pub struct Pacer {
    seen: Activity,
    deferred: Duration,
}

impl Pacer {
    /// `activity` is the sync core's now; `tick` the time since the last
    /// call.
    pub fn turn(&mut self, activity: Activity, tick: Duration) -> Turn {
        let busy = activity.busy_since(self.seen);
        self.seen = activity;
        if !busy {
            self.deferred = Duration::ZERO;
            return Turn::UntilActivity;
        }
        self.deferred += tick;
        if self.deferred < MAX_DEFERRAL {
            return Turn::StandAside;
        }
        self.deferred = Duration::ZERO;
        Turn::ToTheEnd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(received: u64) -> Activity {
        Activity {
            received,
            handling: 0,
        }
    }

    #[test]
    fn an_idle_core_is_chained_at_every_tick() {
        let mut pacer = Pacer::default();
        assert!((0..5).all(|_| pacer.turn(received(0), CHAIN_EVERY) == Turn::UntilActivity));
    }

    #[test]
    fn messages_arriving_defer_the_chaining_until_they_stop() {
        let mut pacer = Pacer::default();
        assert_eq!(pacer.turn(received(10), CHAIN_EVERY), Turn::StandAside);
        assert_eq!(pacer.turn(received(25), CHAIN_EVERY), Turn::StandAside);
        assert_eq!(
            pacer.turn(received(25), CHAIN_EVERY),
            Turn::UntilActivity,
            "no message since the last tick"
        );
        assert_eq!(
            pacer.turn(received(26), CHAIN_EVERY),
            Turn::StandAside,
            "busy again"
        );
    }

    #[test]
    fn messages_being_handled_defer_the_chaining_though_none_arrives() {
        let mut pacer = Pacer::default();
        assert_eq!(pacer.turn(received(200), CHAIN_EVERY), Turn::StandAside);
        let working_through_them = Activity {
            received: 200,
            handling: 3,
        };
        assert_eq!(
            pacer.turn(working_through_them, CHAIN_EVERY),
            Turn::StandAside
        );
        assert_eq!(pacer.turn(received(200), CHAIN_EVERY), Turn::UntilActivity);
    }

    #[test]
    fn sustained_activity_defers_the_chaining_no_longer_than_the_bound() {
        let mut pacer = Pacer::default();
        let ticks = (MAX_DEFERRAL.as_millis() / CHAIN_EVERY.as_millis()) as u64;
        let turns: Vec<Turn> = (1..=2 * ticks)
            .map(|n| pacer.turn(received(n), CHAIN_EVERY))
            .collect();
        let chained_at: Vec<u64> = (1..=2 * ticks)
            .filter(|n| turns[*n as usize - 1] != Turn::StandAside)
            .collect();
        assert_eq!(chained_at, vec![ticks, 2 * ticks]);
        assert!(
            chained_at
                .iter()
                .all(|n| turns[*n as usize - 1] == Turn::ToTheEnd),
            "an overdue catch-up does not give way to the phones: {turns:?}"
        );
    }
}
