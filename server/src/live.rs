//! Live updates (issue 10): when phones sync or a coordinator decides, an
//! open review page learns within a second or so which kind of record of
//! which territory changed, and refetches what it shows — no polling, no
//! reload.
//!
//! Why it is built this way:
//!
//! - **The database announces changes**, not the code that makes them:
//!   triggers on the inventory tables (`migrations/0007_live.sql`) send
//!   `NOTIFY` [`INVENTORY_CHANGED_CHANNEL`] with `<territory> <kind>` when
//!   their transaction commits. Every writer is covered (materialisation,
//!   decisions, conflict resolutions, duplicates, a hand-made SQL fix), only
//!   committed changes are announced, and PostgreSQL folds identical
//!   payloads of one transaction into one: a notebook of 500 records is one
//!   announcement per territory and kind.
//! - **Across server processes**: the processes share nothing but the
//!   database, so every process hears every announcement — a page whose
//!   stream is served by one process learns of a phone that synced through
//!   another.
//! - **One listener per process**, whatever the number of open pages: one
//!   PostgreSQL connection, fanned out through a [`tokio::sync::broadcast`]
//!   channel; each page's stream (`http::events`) keeps what concerns its
//!   territory.
//! - **Nothing is lost silently.** Announcements missed while the listener
//!   reconnected, or skipped by a stream too slow to keep up, become
//!   [`LiveEvent::Missed`] / a lagged receiver, which a stream turns into
//!   "everything may have changed" (kind `*`): the page refetches all.
//! - The same listener hears revoked devices and ended sessions (the
//!   channels of `auth::admin`), so a stream ends as soon as its credential
//!   is logged out or revoked, in whichever process that happened.
//! - **Streams are bounded** ([`Live::open_stream`]): each holds a
//!   connection and a receiver, so one credential holds at most
//!   [`MAX_STREAMS_PER_CREDENTIAL`] and the process serves at most
//!   `--max-event-streams`; beyond, a new one is refused (429) rather than
//!   let one session take every file descriptor.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{postgres::PgListener, PgPool};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::{
    admin::{DEVICE_REVOKED_CHANNEL, SESSION_ENDED_CHANNEL},
    Credential,
};

/// The channel the triggers of `migrations/0007_live.sql` notify on.
pub const INVENTORY_CHANGED_CHANNEL: &str = "inventory_changed";

/// Events a slow stream may fall behind by before it lags (and is told to
/// refetch everything). An event is a few dozen bytes.
const BUFFER: usize = 1024;

/// Live-event streams one credential holds open at once: one per open
/// review page, a coordinator has a few tabs; more is a script holding
/// connections.
pub const MAX_STREAMS_PER_CREDENTIAL: usize = 8;

/// Pause between attempts to (re)connect the listener.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// What changed, as the API names record kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Sighting,
    DegradationReport,
    TimesheetEntry,
    /// A record that failed validation (`GET /api/invalid-records`, the
    /// dashboard's `invalidRecords`).
    InvalidRecord,
    /// Anything may have changed: announcements were missed.
    Everything,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Sighting => "sighting",
            ChangeKind::DegradationReport => "degradation_report",
            ChangeKind::TimesheetEntry => "timesheet_entry",
            ChangeKind::InvalidRecord => "invalid_record",
            ChangeKind::Everything => "*",
        }
    }

    fn parse(name: &str) -> Option<ChangeKind> {
        [
            ChangeKind::Sighting,
            ChangeKind::DegradationReport,
            ChangeKind::TimesheetEntry,
            ChangeKind::InvalidRecord,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// What the listener hears, as every stream of the process receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// Records of `kind` changed in `territory` (a committed transaction).
    Changed { territory: Uuid, kind: ChangeKind },
    /// Announcements may have been missed (the listener reconnected): every
    /// territory may have changed.
    Missed,
    /// A device was revoked or a session ended.
    CredentialEnded(Credential),
}

/// The process's live updates: subscribe to hear every [`LiveEvent`].
/// Cheap to clone.
#[derive(Clone)]
pub struct Live {
    events: broadcast::Sender<LiveEvent>,
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
    /// Starts the listener, until `stop` is cancelled (streams end then too).
    /// It is listening when this returns, unless the database refused; it
    /// then keeps trying in the background, and a stream opened meanwhile is
    /// told to refetch everything once it listens.
    pub async fn start(pool: PgPool, max_streams: usize, stop: CancellationToken) -> Live {
        let (events, _) = broadcast::channel(BUFFER);
        let listener = match listen(&pool).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "live updates: connecting the listener; retrying");
                None
            }
        };
        tokio::spawn(run(listener, pool, events.clone(), stop.clone()));
        let streams = Arc::new(Streams {
            max: max_streams,
            open: Mutex::new(Vec::new()),
        });
        Live {
            events,
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
        self.events.subscribe()
    }

    /// Cancelled when the server stops: open streams end.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([
            INVENTORY_CHANGED_CHANNEL,
            DEVICE_REVOKED_CHANNEL,
            SESSION_ENDED_CHANNEL,
        ])
        .await?;
    Ok(listener)
}

/// Receives announcements and broadcasts them; reconnects (pausing between
/// attempts) when the connection is lost, and then says that some may have
/// been missed.
async fn run(
    mut listener: Option<PgListener>,
    pool: PgPool,
    events: broadcast::Sender<LiveEvent>,
    stop: CancellationToken,
) {
    loop {
        let mut current = match listener.take() {
            Some(current) => current,
            None => loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RECONNECT_PAUSE) => {}
                }
                match listen(&pool).await {
                    Ok(current) => {
                        tracing::info!("live updates: listening again");
                        // No receivers is no error: nobody is watching.
                        let _ = events.send(LiveEvent::Missed);
                        break current;
                    }
                    Err(error) => tracing::warn!(%error, "live updates: reconnecting the listener"),
                }
            },
        };
        loop {
            let received = tokio::select! {
                () = stop.cancelled() => return,
                received = current.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    if let Some(event) = parse(notification.channel(), notification.payload()) {
                        let _ = events.send(event);
                    }
                }
                // The connection was lost and sqlx reconnected (and listens
                // again): what was announced meanwhile is lost.
                Ok(None) => {
                    tracing::warn!("live updates: the listener reconnected; announcements may have been missed");
                    let _ = events.send(LiveEvent::Missed);
                }
                Err(error) => {
                    tracing::warn!(%error, "live updates: the listener failed; reconnecting");
                    let _ = events.send(LiveEvent::Missed);
                    break;
                }
            }
        }
    }
}

/// The event a notification stands for; None (logged) if malformed.
fn parse(channel: &str, payload: &str) -> Option<LiveEvent> {
    let event = match channel {
        INVENTORY_CHANGED_CHANNEL => payload.split_once(' ').and_then(|(territory, kind)| {
            Some(LiveEvent::Changed {
                territory: Uuid::parse_str(territory).ok()?,
                kind: ChangeKind::parse(kind)?,
            })
        }),
        DEVICE_REVOKED_CHANNEL => Uuid::parse_str(payload)
            .ok()
            .map(|device_id| LiveEvent::CredentialEnded(Credential::Device { device_id })),
        SESSION_ENDED_CHANNEL => Uuid::parse_str(payload)
            .ok()
            .map(|session_id| LiveEvent::CredentialEnded(Credential::Session { session_id })),
        _ => None,
    };
    if event.is_none() {
        tracing::warn!(channel, "live updates: ignoring a malformed notification");
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_read_as_the_triggers_and_auth_send_them() {
        let territory = Uuid::new_v4();
        for kind in [
            ChangeKind::Sighting,
            ChangeKind::DegradationReport,
            ChangeKind::TimesheetEntry,
            ChangeKind::InvalidRecord,
        ] {
            assert_eq!(
                parse(
                    INVENTORY_CHANGED_CHANNEL,
                    &format!("{territory} {}", kind.as_str())
                ),
                Some(LiveEvent::Changed { territory, kind })
            );
        }
        let id = Uuid::new_v4();
        assert_eq!(
            parse(SESSION_ENDED_CHANNEL, &id.to_string()),
            Some(LiveEvent::CredentialEnded(Credential::Session {
                session_id: id
            }))
        );
        assert_eq!(
            parse(DEVICE_REVOKED_CHANNEL, &id.to_string()),
            Some(LiveEvent::CredentialEnded(Credential::Device {
                device_id: id
            }))
        );
        for payload in [
            "",
            "sighting",
            &format!("{territory}"),
            &format!("{territory} *"),
            &format!("{territory} photo"),
            "not-a-uuid sighting",
        ] {
            assert_eq!(
                parse(INVENTORY_CHANGED_CHANNEL, payload),
                None,
                "{payload:?}"
            );
        }
    }

    #[test]
    fn the_migration_notifies_this_channel_with_kinds_streams_know() {
        let migration = include_str!("../migrations/0007_live.sql");
        let kinds: Vec<&str> = migration
            .split("EXECUTE FUNCTION live_inventory_changed('")
            .skip(1)
            .filter_map(|rest| rest.split('\'').next())
            .collect();
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        for kind in kinds {
            assert!(ChangeKind::parse(kind).is_some(), "{kind}");
        }
        // Decisions are announced under their record_kind, which 0006 limits
        // to these.
        for kind in ["sighting", "degradation_report", "timesheet_entry"] {
            assert!(ChangeKind::parse(kind).is_some(), "{kind}");
        }
        let notifies = migration.matches("pg_notify('").count();
        let on_this_channel = migration
            .matches(&format!("pg_notify('{INVENTORY_CHANGED_CHANNEL}',"))
            .count();
        assert!(notifies > 0 && notifies == on_this_channel);
    }
}
