//! What the server processes sharing one database tell each other, heard
//! once per process and handed out typed.
//!
//! The processes share nothing but PostgreSQL; what one of them (or a
//! trigger, or a hand-made SQL fix) changes, the others learn through
//! `NOTIFY`, sent in the transaction that made the change, so only
//! committed changes are announced:
//!
//! | channel | sent by | payload | heard as |
//! |---|---|---|---|
//! | [`DOCUMENT_COMMITTED_CHANNEL`] | `sync::store`'s committers | `<doc id> <revision> <process id>` | [`DocumentCommitted`], for the sync core: a live document loads what another process committed |
//! | `auth::admin::DEVICE_REVOKED_CHANNEL` | `auth::admin::revoke_device`, `auth::admin::close_account_connections` (an account disabled, a role removed) | the device id | an ended [`Credential`], for the sync channel's access (its connections close) and the live streams (they end) |
//! | `auth::admin::SESSION_ENDED_CHANNEL` | `auth::admin::logout`, `auth::own_account`, `auth::admin::close_account_connections` | the session id | likewise |
//! | [`INVENTORY_CHANGED_CHANNEL`] | the triggers of `migrations/0007_live.sql` | `<territory> <kind>` | [`LiveEvent::Changed`], for the live streams of review pages |
//!
//! **One listener per process.** A `PgListener` takes one of the pool's
//! connections and holds it for the life of the process, and each needs its
//! reconnect loop kept right. The sync core, the revocation watch and the
//! live updates used to listen each on their own: three connections taken
//! from the pool for good, three loops. One listener hears every channel
//! and hands each announcement to the subscribers of its kind:
//! - document commits and ended credentials go to one unbounded queue per
//!   subscriber ([`Notifications::documents_committed`],
//!   [`Notifications::credentials_ended`]): none is dropped, and a
//!   subscriber that falls behind (the sync core waiting for a busy
//!   document's queue) delays itself only — its announcements wait in its
//!   queue, as they waited unread on its own connection before;
//! - live events go to one bounded [`broadcast`] channel
//!   ([`Notifications::live_events`]) that every open review page's stream
//!   subscribes to: a stream too slow to keep up lags, and refetches
//!   everything.
//!
//! **Nothing is lost silently.** When the connection is lost, sqlx
//! reconnects and listens again (or the listener is connected anew after a
//! pause), and whatever was announced meanwhile is gone. Each kind makes up
//! for it in its own way: the live streams are sent [`LiveEvent::Missed`]
//! and their pages refetch all; a missed commit is found by the document's
//! next commit, whose revision check finds the other process's revision;
//! a missed revocation is found by the sync access's periodic sweep.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{postgres::PgListener, PgPool};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::{
    admin::{DEVICE_REVOKED_CHANNEL, SESSION_ENDED_CHANNEL},
    Credential,
};

/// The channel on which a commit is announced to every server process; the
/// payload is `<doc id> <revision> <process id>` ([`DocumentCommitted::payload`]).
pub const DOCUMENT_COMMITTED_CHANNEL: &str = "fieldnotes_document_committed";

/// The channel the triggers of `migrations/0007_live.sql` notify on.
pub const INVENTORY_CHANGED_CHANNEL: &str = "inventory_changed";

/// Every channel the listener hears.
const CHANNELS: [&str; 4] = [
    DOCUMENT_COMMITTED_CHANNEL,
    DEVICE_REVOKED_CHANNEL,
    SESSION_ENDED_CHANNEL,
    INVENTORY_CHANGED_CHANNEL,
];

/// Live events a slow stream may fall behind by before it lags (and is told
/// to refetch everything). An event is a few dozen bytes.
const LIVE_BUFFER: usize = 1024;

/// Pause between attempts to (re)connect the listener.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// A commit of some server process, as announced on
/// [`DOCUMENT_COMMITTED_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentCommitted {
    pub doc_id: String,
    /// `documents.revision` after the commit.
    pub revision: i64,
    /// The process that committed: its own document owners know the commit.
    pub process: Uuid,
}

impl DocumentCommitted {
    /// The payload a committer sends.
    pub fn payload(doc_id: &str, revision: i64, process: Uuid) -> String {
        format!("{doc_id} {revision} {process}")
    }

    fn parse(payload: &str) -> Option<DocumentCommitted> {
        let mut parts = payload.split(' ');
        let doc_id = parts.next()?.to_string();
        let revision = parts.next()?.parse().ok()?;
        let process = parts.next()?.parse().ok()?;
        Some(DocumentCommitted {
            doc_id,
            revision,
            process,
        })
    }
}

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

/// What every live stream of the process receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// Records of `kind` changed in `territory` (a committed transaction).
    Changed { territory: Uuid, kind: ChangeKind },
    /// Announcements may have been missed (the listener reconnected): every
    /// territory may have changed.
    Missed,
    /// A device was revoked or a session ended, or their account was
    /// disabled or lost a role: what was opened with it closes.
    CredentialEnded(Credential),
}

/// One notification, read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Announcement {
    DocumentCommitted(DocumentCommitted),
    CredentialEnded(Credential),
    InventoryChanged { territory: Uuid, kind: ChangeKind },
}

/// The announcement a notification stands for; None (logged) if malformed.
fn parse(channel: &str, payload: &str) -> Option<Announcement> {
    let announcement = match channel {
        DOCUMENT_COMMITTED_CHANNEL => {
            DocumentCommitted::parse(payload).map(Announcement::DocumentCommitted)
        }
        DEVICE_REVOKED_CHANNEL => Uuid::parse_str(payload)
            .ok()
            .map(|device_id| Announcement::CredentialEnded(Credential::Device { device_id })),
        SESSION_ENDED_CHANNEL => Uuid::parse_str(payload)
            .ok()
            .map(|session_id| Announcement::CredentialEnded(Credential::Session { session_id })),
        INVENTORY_CHANGED_CHANNEL => payload.split_once(' ').and_then(|(territory, kind)| {
            Some(Announcement::InventoryChanged {
                territory: Uuid::parse_str(territory).ok()?,
                kind: ChangeKind::parse(kind)?,
            })
        }),
        _ => None,
    };
    if announcement.is_none() {
        tracing::warn!(channel, "ignoring a malformed notification");
    }
    announcement
}

/// The process's notifications: subscribe to the kind you need. Cheap to clone.
#[derive(Clone)]
pub struct Notifications {
    subscribers: Arc<Subscribers>,
}

struct Subscribers {
    /// std mutexes: held only to push or send, never across an await.
    documents_committed: Mutex<Vec<mpsc::UnboundedSender<DocumentCommitted>>>,
    credentials_ended: Mutex<Vec<mpsc::UnboundedSender<Credential>>>,
    live: broadcast::Sender<LiveEvent>,
}

impl Subscribers {
    fn announce(&self, announcement: Announcement) {
        match announcement {
            Announcement::DocumentCommitted(commit) => {
                fan_out(&self.documents_committed, &commit);
            }
            Announcement::CredentialEnded(credential) => {
                fan_out(&self.credentials_ended, &credential);
                // No receivers is no error: nobody is watching.
                let _ = self.live.send(LiveEvent::CredentialEnded(credential));
            }
            Announcement::InventoryChanged { territory, kind } => {
                let _ = self.live.send(LiveEvent::Changed { territory, kind });
            }
        }
    }

    /// Announcements may have been lost; see the module's doc for what each
    /// kind does about it.
    fn missed(&self) {
        let _ = self.live.send(LiveEvent::Missed);
    }
}

/// Sends `item` to every subscriber still listening, forgetting the others.
fn fan_out<T: Clone>(subscribers: &Mutex<Vec<mpsc::UnboundedSender<T>>>, item: &T) {
    subscribers
        .lock()
        .expect("notification subscribers poisoned")
        .retain(|subscriber| subscriber.send(item.clone()).is_ok());
}

impl Notifications {
    /// Starts the process's listener, until `stop` is cancelled. It is
    /// listening when this returns, unless the database refused; it then
    /// keeps trying in the background, and says [`LiveEvent::Missed`] once
    /// it listens.
    pub async fn start(pool: &PgPool, stop: CancellationToken) -> Notifications {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let subscribers = Arc::new(Subscribers {
            documents_committed: Mutex::default(),
            credentials_ended: Mutex::default(),
            live,
        });
        let listener = match listen(pool).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "connecting the notification listener; retrying");
                None
            }
        };
        tokio::spawn(run(listener, pool.clone(), subscribers.clone(), stop));
        Notifications { subscribers }
    }

    /// Every commit announced from now on, this process's own included.
    pub fn documents_committed(&self) -> mpsc::UnboundedReceiver<DocumentCommitted> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers
            .documents_committed
            .lock()
            .expect("notification subscribers poisoned")
            .push(sender);
        receiver
    }

    /// Every device revoked and session ended from now on.
    pub fn credentials_ended(&self) -> mpsc::UnboundedReceiver<Credential> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers
            .credentials_ended
            .lock()
            .expect("notification subscribers poisoned")
            .push(sender);
        receiver
    }

    /// Every live event from now on.
    pub fn live_events(&self) -> broadcast::Receiver<LiveEvent> {
        self.subscribers.live.subscribe()
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all(CHANNELS).await?;
    Ok(listener)
}

/// Receives notifications and hands them out; reconnects (pausing between
/// attempts) when the connection is lost, and then says that some may have
/// been missed.
async fn run(
    mut listener: Option<PgListener>,
    pool: PgPool,
    subscribers: Arc<Subscribers>,
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
                        tracing::info!("the notification listener listens again");
                        subscribers.missed();
                        break current;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "reconnecting the notification listener");
                    }
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
                    if let Some(announcement) =
                        parse(notification.channel(), notification.payload())
                    {
                        subscribers.announce(announcement);
                    }
                }
                // The connection was lost and sqlx reconnected (and listens
                // again): what was announced meanwhile is lost.
                Ok(None) => {
                    tracing::warn!(
                        "the notification listener reconnected; announcements may have been missed"
                    );
                    subscribers.missed();
                }
                Err(error) => {
                    tracing::warn!(%error, "the notification listener failed; reconnecting");
                    subscribers.missed();
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_read_as_the_committers_announce_them() {
        let process = Uuid::new_v4();
        let payload = DocumentCommitted::payload("2bVDTG9nTK5vpG3cw1n7FkEBgWqW", 7, process);
        assert_eq!(
            parse(DOCUMENT_COMMITTED_CHANNEL, &payload),
            Some(Announcement::DocumentCommitted(DocumentCommitted {
                doc_id: "2bVDTG9nTK5vpG3cw1n7FkEBgWqW".into(),
                revision: 7,
                process,
            }))
        );
        for payload in [
            "",
            "doc",
            "doc 7",
            "doc seven 00000000-0000-0000-0000-000000000000",
            "doc 7 not-a-uuid",
        ] {
            assert_eq!(
                parse(DOCUMENT_COMMITTED_CHANNEL, payload),
                None,
                "{payload:?}"
            );
        }
    }

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
                Some(Announcement::InventoryChanged { territory, kind })
            );
        }
        let id = Uuid::new_v4();
        assert_eq!(
            parse(SESSION_ENDED_CHANNEL, &id.to_string()),
            Some(Announcement::CredentialEnded(Credential::Session {
                session_id: id
            }))
        );
        assert_eq!(
            parse(DEVICE_REVOKED_CHANNEL, &id.to_string()),
            Some(Announcement::CredentialEnded(Credential::Device {
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
        assert_eq!(parse(DEVICE_REVOKED_CHANNEL, "not-a-uuid"), None);
        assert_eq!(parse("another_channel", &id.to_string()), None);
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

    #[test]
    fn each_kind_reaches_its_subscribers() {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let notifications = Notifications {
            subscribers: Arc::new(Subscribers {
                documents_committed: Mutex::default(),
                credentials_ended: Mutex::default(),
                live,
            }),
        };
        let mut commits = notifications.documents_committed();
        let mut ended = notifications.credentials_ended();
        let mut live = notifications.live_events();
        let subscribers = &notifications.subscribers;
        let commit = DocumentCommitted {
            doc_id: "doc".into(),
            revision: 2,
            process: Uuid::new_v4(),
        };
        subscribers.announce(Announcement::DocumentCommitted(commit.clone()));
        let credential = Credential::Device {
            device_id: Uuid::new_v4(),
        };
        subscribers.announce(Announcement::CredentialEnded(credential.clone()));
        let territory = Uuid::new_v4();
        subscribers.announce(Announcement::InventoryChanged {
            territory,
            kind: ChangeKind::Sighting,
        });
        subscribers.missed();
        assert_eq!(commits.try_recv().ok(), Some(commit));
        assert!(commits.try_recv().is_err());
        assert_eq!(ended.try_recv().ok(), Some(credential.clone()));
        assert!(ended.try_recv().is_err());
        for expected in [
            LiveEvent::CredentialEnded(credential),
            LiveEvent::Changed {
                territory,
                kind: ChangeKind::Sighting,
            },
            LiveEvent::Missed,
        ] {
            assert_eq!(live.try_recv().ok(), Some(expected));
        }
        // A subscriber gone is forgotten.
        drop(commits);
        subscribers.announce(Announcement::DocumentCommitted(DocumentCommitted {
            doc_id: "doc".into(),
            revision: 3,
            process: Uuid::new_v4(),
        }));
        assert!(subscribers.documents_committed.lock().unwrap().is_empty());
    }
}
