//! Giving freed memory back to the system once the sync core has gone
//! quiet. After a storm every document leaves memory, but glibc's allocator
//! keeps the pages it freed for reuse, so the process stayed at its peak
//! (docs/PERFORMANCE.md, "Memory after a probe": `malloc_trim(0)` gave it
//! all back). A host running several processes, or other services, wants
//! that memory back when the phones have gone home.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::sync::SyncCore;

/// How often the core is looked at.
pub const LOOK_EVERY: Duration = Duration::from_secs(30);

/// Trims the allocator once per quiet spell: when no document is live, no
/// sync connection is open and nothing was received since the last look,
/// after some activity since the last trim. Runs until `stop`.
pub async fn return_freed_memory_when_quiet(core: SyncCore, stop: CancellationToken) {
    let mut tick = tokio::time::interval(LOOK_EVERY);
    let mut last = core.activity();
    let mut trimmed_at = last;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = core.activity();
        let quiet = !now.busy_since(last)
            && core.live_documents() == 0
            && core.access().open_connections() == 0;
        if quiet && now.busy_since(trimmed_at) {
            let started = std::time::Instant::now();
            let returned = trim();
            tracing::info!(
                returned,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "gave freed memory back to the system"
            );
            trimmed_at = now;
        }
        last = now;
    }
}

/// `malloc_trim(0)`: glibc returns the free pages of every arena. True when
/// some memory was returned; a no-op elsewhere than glibc.
fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists; it
        // takes the arenas' locks and touches no memory in use.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
