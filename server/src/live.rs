//! Live updates (issue 10): when phones sync or a coordinator decides, an
//! open review page learns within a second or so which kind of record of
//! which territory changed, and refetches what it shows — no polling, no
//! reload.
//!
//! Why it is built this way:
//!
//! - **The database announces changes**, not the code that makes them:
//!   triggers on the inventory tables (`migrations/0007_live.sql`) send
//!   `NOTIFY` [`crate::notifications::INVENTORY_CHANGED_CHANNEL`] with `<territory> <kind>` when
//!   their transaction commits. Every writer is covered (materialisation,
//!   decisions, conflict resolutions, duplicates, a hand-made SQL fix), only
//!   committed changes are announced, and PostgreSQL folds identical
//!   payloads of one transaction into one: a notebook of 500 records is one
//!   announcement per territory and kind.
//! - **Heard through the process's one notification listener**
//!   ([`crate::notifications`]): every process hears every announcement —
//!   a page whose stream is served by one process learns of a phone that
//!   synced through another — as [`LiveEvent`]s fanned out to the streams
//!   through one broadcast channel; each page's stream (`http::events`)
//!   keeps what concerns its territory, and ends as soon as its credential
//!   is logged out or revoked, in whichever process that happened.
//! - **Nothing is lost silently.** Announcements missed while the listener
//!   reconnected, or skipped by a stream too slow to keep up, become
//!   [`LiveEvent::Missed`] / a lagged receiver, which a stream turns into
//!   "everything may have changed" (kind `*`): the page refetches all.
//! - **Streams are bounded** ([`Live::open_stream`]): each holds a
//!   connection and a receiver, so one credential holds at most
//!   [`MAX_STREAMS_PER_CREDENTIAL`] and the process serves at most
//!   `--max-event-streams`; beyond, a new one is refused (429) rather than
//!   let one session take every file descriptor.

use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::Credential,
    notifications::{LiveEvent, Notifications},
};

/// Live-event streams one credential holds open at once: one per open
/// review page, a coordinator has a few tabs; more is a script holding
/// connections.
pub const MAX_STREAMS_PER_CREDENTIAL: usize = 8;

/// The process's live updates: subscribe to hear every [`LiveEvent`].
/// Cheap to clone.
#[derive(Clone)]
pub struct Live {
    notifications: Notifications,
    stop: CancellationToken,
    streams: Arc<Streams>,
}

/// The streams open now, by credential.
struct Streams {
    /// Streams the process serves at once (`--max-event-streams`).
    max: usize,
    /// One entry per open stream; a std mutex, never held across an await.
    open: Mutex<Vec<Credential>>,
}

/// Why a new stream is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamLimit {
    #[error(
        "this credential already holds {limit} live-event streams open, the limit per \
         credential; close another page's stream first"
    )]
    PerCredential { limit: usize },
    #[error("the server serves {limit} live-event streams, its limit; retry in a moment")]
    PerProcess { limit: usize },
}

/// One open stream, counted until it is dropped.
pub struct StreamPermit {
    streams: Arc<Streams>,
    credential: Credential,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().expect("live streams poisoned");
        if let Some(at) = open.iter().position(|c| *c == self.credential) {
            open.swap_remove(at);
        }
    }
}

impl Live {
    /// Live updates from `notifications`; open streams end when `stop`
    /// is cancelled.
    pub fn new(notifications: Notifications, max_streams: usize, stop: CancellationToken) -> Live {
        let streams = Arc::new(Streams {
            max: max_streams,
            open: Mutex::new(Vec::new()),
        });
        Live {
            notifications,
            stop,
            streams,
        }
    }

    /// Counts a new stream of `credential` in, within the limits per
    /// credential and per process (checked and taken under one lock, so
    /// parallel requests cannot all pass).
    pub fn open_stream(&self, credential: &Credential) -> Result<StreamPermit, StreamLimit> {
        let mut open = self.streams.open.lock().expect("live streams poisoned");
        let held = open.iter().filter(|c| *c == credential).count();
        if held >= MAX_STREAMS_PER_CREDENTIAL {
            return Err(StreamLimit::PerCredential {
                limit: MAX_STREAMS_PER_CREDENTIAL,
            });
        }
        if open.len() >= self.streams.max {
            return Err(StreamLimit::PerProcess {
                limit: self.streams.max,
            });
        }
        open.push(credential.clone());
        Ok(StreamPermit {
            streams: self.streams.clone(),
            credential: credential.clone(),
        })
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.notifications.live_events()
    }

    /// Cancelled when the server stops: open streams end.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }
}
