//! The sync client: the automerge-repo protocol over WebSocket, with the
//! device credential, built on samod; and the progress an app shows.
//!
//! Decisions:
//! - **samod loads the notebook from the store** (the store is its `Storage`), so
//!   the phone and the server talk about the same document id, and every change
//!   the server sends lands in the store before anything counts it as held.
//! - **Acknowledged** means: the server's shared heads on the live connection.
//!   The server announces heads only once PostgreSQL holds them (it generates
//!   its replies from the committed document), so they are a promise of
//!   durability, and they are persisted in the
//!   store (`sync.v1.json`). They are recorded only when every change they name is
//!   in the store, and only when they cover the previous acknowledgement, so the
//!   record never goes backwards on a fresh connection.
//! - **Resuming** needs nothing special: automerge's sync protocol exchanges heads
//!   and Bloom filters first, so after a cut only what the server lacks is sent,
//!   and the server stores a chunk it has seen twice once.
//! - **Backoff**: samod's dialer retries with exponential backoff and jitter
//!   (200 ms doubling to 30 s by default), forever: a phone in a cellar waits
//!   for signal, it does not give up.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use automerge::{Automerge, ChangeHash, ReadDoc};
use chrono::{DateTime, Utc};
use futures::{stream::BoxStream, FutureExt, StreamExt};
use samod::{
    BackoffConfig, ConnectionId, DialerEvent, DialerHandle, DocHandle, PeerDocState, Repo, Stopped,
};
use serde::Serialize;
use tokio::{
    sync::{watch, Notify},
    task::JoinHandle,
};
use url::Url;

use crate::{
    credential::DeviceCredential,
    pending::{known_heads, pending_records},
    repo_runtime::RepoRuntime,
    store::{Store, StoreError, SyncState},
    ws_dialer::{InvalidCredential, WireCounters, WsDialer},
};

/// How often an unchanged "last sync" time is rewritten while everything stays
/// acknowledged: often enough to be honest, rare enough to spare the flash.
const LAST_SYNC_PERSIST_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// Bursts of events (a sync round, a run of captures) make one status update.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_millis(50);

/// The default reconnection policy: start fast (a brief cut is common), back off
/// to 30 s (a dead zone can last hours), never stop.
pub const DEFAULT_BACKOFF: BackoffConfig = BackoffConfig {
    initial_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(30),
    max_retries: None,
};

/// What an app shows about syncing. Poll [`crate::Device::sync_status`] or
/// watch [`crate::Device::subscribe_status`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// A WebSocket to the server is open now.
    pub connected: bool,
    /// Records whose latest changes the server has not acknowledged.
    pub pending_records: usize,
    /// Changes of the notebook the server has not acknowledged (a record may
    /// take several; the notebook's creation is one too).
    pub unacknowledged_changes: usize,
    /// Photos waiting for upload, as told by the [`PendingPhotos`] source.
    pub pending_photos: u64,
    /// When the server last acknowledged everything this phone held.
    pub last_sync: Option<DateTime<Utc>>,
    /// Why the last connection attempt failed, while it does.
    pub last_error: Option<String>,
}

/// The extension point for photo uploads: whatever queues photos tells the
/// sync status how many wait. Without one, no photo can be waiting.
pub trait PendingPhotos: Send + Sync {
    fn pending_photos(&self) -> u64;
}

/// The `/sync` WebSocket URL of a server given by its base URL
/// (`https://host` → `wss://host/sync`).
pub fn sync_url(server: &Url) -> Url {
    let mut url = server.clone();
    let scheme = if server.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    url.set_scheme(scheme)
        .expect("http(s) and ws(s) URLs convert");
    let path = format!("{}/sync", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url
}

/// Starts a dialer with `credential` on `repo` (whose tasks run on `runtime`);
/// the connection is established in the background, with `backoff` between
/// attempts. The dialer is registered with the repo's tasks held off (see
/// [`RepoRuntime`]), so its first attempt cannot fail for want of it.
pub(crate) fn dial(
    repo: &Repo,
    runtime: &RepoRuntime,
    url: &Url,
    credential: Option<&DeviceCredential>,
    counters: Arc<WireCounters>,
    backoff: BackoffConfig,
) -> Result<DialerHandle<InvalidCredential>, Stopped> {
    let dialer = Arc::new(WsDialer::new(
        url.clone(),
        credential.map(|c| c.secret.clone()),
        counters,
    ));
    runtime.exclusively(|| repo.dial(backoff, dialer))
}

/// The sync side of a device: a status task always, a connection when online.
pub(crate) struct SyncClient {
    shared: Arc<Shared>,
    dialer: Option<DialerHandle<InvalidCredential>>,
    monitor: JoinHandle<()>,
}

struct Shared {
    store: Store,
    notebook: DocHandle,
    /// The persisted sync state, and when `last_sync` was last written.
    state: Mutex<(SyncState, Option<DateTime<Utc>>)>,
    status: watch::Sender<SyncStatus>,
    photos: Mutex<Option<Arc<dyn PendingPhotos>>>,
    counters: Arc<WireCounters>,
    /// Asks the status task for a fresh status (e.g. a photo source was set).
    kick: Notify,
}

impl SyncClient {
    pub(crate) fn new(store: Store, notebook: DocHandle) -> Result<SyncClient, StoreError> {
        let state = store.sync_state(notebook.document_id())?;
        let persisted_last_sync = state.last_sync;
        let shared = Arc::new(Shared {
            store,
            notebook,
            state: Mutex::new((state, persisted_last_sync)),
            status: watch::channel(SyncStatus::default()).0,
            photos: Mutex::new(None),
            counters: Arc::default(),
            kick: Notify::new(),
        });
        shared.refresh(false, None);
        let monitor = tokio::spawn(monitor(shared.clone(), None));
        Ok(SyncClient {
            shared,
            dialer: None,
            monitor,
        })
    }

    pub(crate) fn status(&self) -> SyncStatus {
        self.shared.status.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<SyncStatus> {
        self.shared.status.subscribe()
    }

    pub(crate) fn counters(&self) -> &WireCounters {
        &self.shared.counters
    }

    pub(crate) fn set_pending_photos(&self, source: Arc<dyn PendingPhotos>) {
        *self.shared.photos.lock().unwrap_or_else(|p| p.into_inner()) = Some(source);
        self.shared.kick.notify_one();
    }

    pub(crate) fn is_online(&self) -> bool {
        self.dialer.is_some()
    }

    pub(crate) fn go_online(
        &mut self,
        repo: &Repo,
        runtime: &RepoRuntime,
        url: &Url,
        credential: &DeviceCredential,
        backoff: BackoffConfig,
    ) -> Result<(), Stopped> {
        if self.dialer.is_some() {
            return Ok(());
        }
        let dialer = dial(
            repo,
            runtime,
            url,
            Some(credential),
            self.shared.counters.clone(),
            backoff,
        )?;
        self.restart_monitor(Some(dialer.clone()));
        self.dialer = Some(dialer);
        Ok(())
    }

    pub(crate) fn go_offline(&mut self) {
        if let Some(dialer) = self.dialer.take() {
            dialer.close();
            self.restart_monitor(None);
        }
    }

    fn restart_monitor(&mut self, dialer: Option<DialerHandle<InvalidCredential>>) {
        self.monitor.abort();
        self.monitor = tokio::spawn(monitor(self.shared.clone(), dialer));
    }

    /// Waits until the server acknowledged everything held when this was called
    /// (and whatever was added meanwhile), then persists the sync state. The
    /// future does not borrow the client, so captures go on while it waits.
    pub(crate) fn synced(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<SyncStatus, SyncTimeout>> + Send + 'static {
        let shared = self.shared.clone();
        let started = Utc::now();
        async move {
            let mut status = shared.status.subscribe();
            let waited = tokio::time::timeout(
                timeout,
                status.wait_for(|s| {
                    s.connected
                        && s.unacknowledged_changes == 0
                        && s.last_sync.is_some_and(|t| t >= started)
                }),
            )
            .await;
            let result = match waited {
                Ok(Ok(status)) => Ok(status.clone()),
                _ => Err(SyncTimeout {
                    timeout,
                    status: shared.status.borrow().clone(),
                }),
            };
            shared.persist();
            result
        }
    }
}

impl Drop for SyncClient {
    fn drop(&mut self) {
        self.monitor.abort();
        if let Some(dialer) = self.dialer.take() {
            dialer.close();
        }
    }
}

/// The server did not acknowledge everything in time.
#[derive(Debug, thiserror::Error)]
#[error("the server did not acknowledge every change within {timeout:?} ({} records pending{})",
    status.pending_records,
    status.last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
pub struct SyncTimeout {
    pub timeout: Duration,
    pub status: SyncStatus,
}

/// Keeps the status current: after local edits, appends, and (online) the
/// connection's events and the server's acknowledgements. Recomputing costs a
/// diff of what is unacknowledged, so bursts of events are coalesced.
async fn monitor(shared: Arc<Shared>, dialer: Option<DialerHandle<InvalidCredential>>) {
    let (current, mut peer_updates) = shared.notebook.peers();
    let connection = || dialer.as_ref().and_then(DialerHandle::connection_id);
    let heads_of = |conn: Option<ConnectionId>, states: &HashMap<ConnectionId, PeerDocState>| {
        conn.and_then(|c| states.get(&c))
            .and_then(|s| s.shared_heads.clone())
    };
    let mut server_heads = heads_of(connection(), &current);
    let mut events: BoxStream<'_, DialerEvent> = match &dialer {
        Some(dialer) => dialer.events().boxed(),
        None => futures::stream::pending().boxed(),
    };
    let mut appends = shared.store.subscribe_appends();
    let mut doc_changes = shared.notebook.changes();
    loop {
        let connected = dialer.as_ref().is_some_and(DialerHandle::is_connected);
        shared.refresh(connected, server_heads.as_deref());
        let quiet_until = tokio::time::Instant::now() + REFRESH_AT_MOST_EVERY;
        tokio::select! {
            Some(update) = peer_updates.next() => {
                if let Some(heads) = heads_of(connection(), &update) {
                    server_heads = Some(heads);
                }
            }
            Some(event) = events.next() => {
                let error = match event {
                    DialerEvent::Connected { .. } => None,
                    DialerEvent::Disconnected { reason } => Some(reason),
                    DialerEvent::Reconnecting { attempt } => {
                        Some(format!("reconnecting (attempt {attempt})"))
                    }
                    DialerEvent::MaxRetriesReached => Some("gave up reconnecting".to_string()),
                    DialerEvent::PermanentFailure => {
                        Some("the server refused this device's credential format".to_string())
                    }
                };
                // Heads from an earlier connection stay true (the server keeps
                // what it acknowledged) but the next ones must come from the new one.
                server_heads = None;
                shared.status.send_modify(|s| s.last_error = error);
            }
            Ok(()) = appends.changed() => {}
            Some(_) = doc_changes.next() => {}
            () = shared.kick.notified() => {}
            else => return,
        }
        tokio::time::sleep_until(quiet_until).await;
        while let Some(Some(update)) = peer_updates.next().now_or_never() {
            if let Some(heads) = heads_of(connection(), &update) {
                server_heads = Some(heads);
            }
        }
    }
}

impl Shared {
    /// Records what the server acknowledged (if `server_heads` covers more than
    /// before) and publishes a fresh status.
    fn refresh(&self, connected: bool, server_heads: Option<&[ChangeHash]>) {
        let id = self.notebook.document_id().clone();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (pending, unacknowledged, newly_acknowledged, in_sync) =
            self.notebook.with_document(|doc| {
                let mut newly = false;
                if let Some(heads) = server_heads {
                    if heads != state.0.acknowledged_heads.as_slice()
                        && heads.iter().all(|h| doc.get_change_by_hash(h).is_some())
                        && self.store.holds(&id, heads)
                        && covers(doc, heads, &state.0.acknowledged_heads)
                    {
                        state.0.acknowledged_heads = heads.to_vec();
                        newly = true;
                    }
                }
                let acknowledged = known_heads(doc, &state.0.acknowledged_heads);
                let unacknowledged = doc.get_changes_meta(&acknowledged).len();
                let in_sync =
                    connected && server_heads.is_some_and(|h| h == doc.get_heads().as_slice());
                (
                    pending_records(doc, &acknowledged),
                    unacknowledged,
                    newly,
                    in_sync,
                )
            });
        let now = Utc::now();
        if in_sync && unacknowledged == 0 {
            state.0.last_sync = Some(now);
        }
        let stale = match (state.0.last_sync, state.1) {
            (Some(last), Some(written)) => last - written > LAST_SYNC_PERSIST_EVERY,
            (Some(_), None) => true,
            _ => false,
        };
        if newly_acknowledged || stale {
            self.write_state(&id, &mut state);
        }
        let pending_photos = self
            .photos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, |source| source.pending_photos());
        let last_sync = state.0.last_sync;
        drop(state);
        self.status.send_modify(|status| {
            status.connected = connected;
            status.pending_records = pending.len();
            status.unacknowledged_changes = unacknowledged;
            status.pending_photos = pending_photos;
            status.last_sync = last_sync;
            if connected {
                status.last_error = None;
            }
        });
    }

    /// Writes the sync state now (e.g. before the process exits).
    fn persist(&self) {
        let id = self.notebook.document_id().clone();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0.last_sync != state.1 {
            self.write_state(&id, &mut state);
        }
    }

    fn write_state(&self, id: &samod::DocumentId, state: &mut (SyncState, Option<DateTime<Utc>>)) {
        match self.store.save_sync_state(id, &state.0) {
            Ok(()) => state.1 = state.0.last_sync,
            // Only progress reporting suffers: the changes themselves are safe,
            // and an unrecorded acknowledgement is re-learnt at the next sync.
            Err(error) => tracing::warn!(%error, "recording the server's acknowledgement"),
        }
    }
}

/// Whether the history up to `newer` includes every change in `older`.
fn covers(doc: &Automerge, newer: &[ChangeHash], older: &[ChangeHash]) -> bool {
    let beyond: Vec<ChangeHash> = doc.get_changes_meta(newer).iter().map(|c| c.hash).collect();
    older.iter().all(|h| !beyond.contains(h))
}
