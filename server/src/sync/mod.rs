//! The sync core: automerge-repo over WebSocket on the `sync::protocol`
//! engine, documents in PostgreSQL.
//!
//! - [`connection`]: one WebSocket — the handshake, the checks every message
//!   passes, the limit of documents open at once;
//! - [`peer`]: a connected peer as documents reach it — the bounded queue its
//!   messages leave by, and closing it with a reason;
//! - [`document`]: one document's owner — judging incoming changes before
//!   they are applied, committing them, and replying to every peer from the
//!   committed state; it leaves memory once idle. Its decisions (judging a
//!   batch, a change waiting for its dependency, judging again on another
//!   process's revision) are a pure part, `document::judging`, that its
//!   task drives;
//! - [`store`]: loading documents, and the committers that store accepted
//!   changes with the inventory in shared transactions (group commit);
//! - [`access`]: who may read or write a document, per-credential limits, and
//!   closing the connections of revoked credentials;
//! - [`compaction`]: a document's chunks merged into one snapshot once they
//!   are many, so storage and load time stay bounded.
//!
//! [`SyncCore`] holds the map from document id to its owner (the only place
//! where all documents meet, touched once per message), and follows the
//! commits of other server processes on the same database, as the process's
//! notification listener hears them (`crate::notifications`), so that their
//! changes reach this process's connected peers.

pub mod access;
pub mod compaction;
mod connection;
mod document;
mod peer;
pub mod store;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use sqlx::PgPool;
use sync::protocol::{DocumentId, PeerId, PeerMetadata};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    auth::Principal,
    notifications::{DocumentCommitted, Notifications},
};
use access::{ConnectionRegistration, SyncAccess};
use document::{DocMessage, DocumentOwner};
pub use document::{EditError, ServerWrite, WriteFailure, WriteOutcome};
use store::{FatalStorageError, Store};

/// Messages waiting for one document's owner; past it, the connections
/// sending more wait (and stop reading their sockets): back-pressure.
const DOCUMENT_QUEUE: usize = 256;

/// How the sync core is tuned.
#[derive(Debug, Clone, Copy)]
pub struct SyncSettings {
    /// How long a document no connection holds stays in memory after its
    /// last message.
    pub document_idle: Duration,
    /// Bytes the changes of one sync message may inflate to (`sync::documents::wire`):
    /// with judgements running one per worker thread at most, this bounds
    /// what a message can make the process hold, whatever a peer sends.
    pub max_inflated_bytes: usize,
    /// How long a connection's peer may stay silent before it is pinged, and
    /// then before it is closed if it still sends nothing (`--sync-ping-secs`).
    pub ping_interval: Duration,
}

/// How busy the sync core is, as background work sees it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// Messages received from peers and writes asked for since the start.
    pub received: u64,
    /// Document owners handling messages now: judging, committing, replying.
    /// A storm's messages are all received long before they are handled.
    pub handling: usize,
}

impl Activity {
    /// Whether messages arrived since `earlier` or are being handled now.
    pub fn busy_since(self, earlier: Activity) -> bool {
        self.received != earlier.received || self.handling > 0
    }
}

/// Counts a document owner as handling messages until dropped.
struct Handling<'a>(&'a AtomicUsize);

impl<'a> Handling<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Handling(count)
    }
}

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every part of the core shares.
pub(crate) struct Hub {
    documents: Mutex<HashMap<DocumentId, OwnerEntry>>,
    next_generation: AtomicU64,
    /// Messages received from peers and writes asked for since the start.
    received: AtomicU64,
    /// Document owners handling messages now.
    handling: AtomicUsize,
    store: Store,
    access: SyncAccess,
    settings: SyncSettings,
    local_peer_id: PeerId,
    metadata: PeerMetadata,
    stopping: CancellationToken,
}

struct OwnerEntry {
    generation: u64,
    messages: mpsc::Sender<DocMessage>,
}

impl Hub {
    /// The sending side of `id`'s owner, started if it is not live.
    fn owner(self: &Arc<Self>, id: DocumentId) -> mpsc::Sender<DocMessage> {
        let mut documents = self.documents.lock().expect("document map poisoned");
        if let Some(entry) = documents.get(&id) {
            if !entry.messages.is_closed() {
                return entry.messages.clone();
            }
        }
        let (messages, receiver) = mpsc::channel(DOCUMENT_QUEUE);
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        documents.insert(
            id,
            OwnerEntry {
                generation,
                messages: messages.clone(),
            },
        );
        drop(documents);
        DocumentOwner::spawn(self.clone(), id, generation, receiver);
        messages
    }

    /// Hands `message` to `id`'s owner, waiting while its queue is full.
    async fn dispatch(self: &Arc<Self>, id: DocumentId, mut message: DocMessage) {
        loop {
            match self.owner(id).send(message).await {
                Ok(()) => return,
                // That owner was leaving memory: the next one takes it.
                Err(mpsc::error::SendError(back)) => message = back,
            }
        }
    }

    /// Hands `message` to `id`'s owner only if the document is live.
    async fn dispatch_if_live(&self, id: DocumentId, message: DocMessage) {
        let sender = {
            let documents = self.documents.lock().expect("document map poisoned");
            documents.get(&id).map(|entry| entry.messages.clone())
        };
        if let Some(sender) = sender {
            let _ = sender.send(message).await;
        }
    }

    /// Takes the owner of `id` out of the map if nothing waits in its queue;
    /// a message sent meanwhile is handed over by the owner.
    fn evict(&self, id: &DocumentId, generation: u64, queue: &mpsc::Receiver<DocMessage>) -> bool {
        let mut documents = self.documents.lock().expect("document map poisoned");
        if !queue.is_empty() {
            return false;
        }
        if documents
            .get(id)
            .is_some_and(|e| e.generation == generation)
        {
            documents.remove(id);
        }
        true
    }
}

/// The server's sync core. Cheap to clone.
#[derive(Clone)]
pub struct SyncCore {
    hub: Arc<Hub>,
}

impl SyncCore {
    /// Starts the core on `pool`: its committers, and the follower of other
    /// processes' commits as `notifications` announce them (until [`SyncCore::stop`]).
    pub async fn start(
        pool: PgPool,
        settings: SyncSettings,
        fatal: FatalStorageError,
        notifications: &Notifications,
    ) -> anyhow::Result<SyncCore> {
        // Each process its own peer id and commit announcements: several
        // servers may share one database.
        let process_id = Uuid::new_v4();
        let store = Store::start(pool.clone(), process_id, fatal);
        let storage_id = store.storage_id().await?;
        let hub = Arc::new(Hub {
            documents: Mutex::default(),
            next_generation: AtomicU64::new(0),
            received: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
            store,
            access: SyncAccess::new(pool.clone()),
            settings,
            local_peer_id: format!("fieldnotes-server-{process_id}"),
            metadata: PeerMetadata {
                storage_id: Some(storage_id),
                is_ephemeral: Some(false),
            },
            stopping: CancellationToken::new(),
        });
        let core = SyncCore { hub };
        tokio::spawn(
            core.clone()
                .follow_other_processes(notifications.documents_committed(), process_id),
        );
        Ok(core)
    }

    /// Serves an authenticated WebSocket until it closes.
    pub fn accept(
        &self,
        socket: axum::extract::ws::WebSocket,
        principal: Principal,
        registration: ConnectionRegistration,
    ) {
        let hub = self.hub.clone();
        tokio::spawn(connection::serve(hub, socket, principal, registration));
    }

    /// Commits a change the server makes to document `id` (see
    /// [`ServerWrite`]), once stored sent to every peer holding it.
    pub async fn write(
        &self,
        id: DocumentId,
        write: ServerWrite,
    ) -> Result<WriteOutcome, WriteFailure> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.hub.received.fetch_add(1, Ordering::Relaxed);
        self.hub
            .dispatch(id, DocMessage::Write { write, done })
            .await;
        outcome
            .await
            .unwrap_or_else(|_| Err(WriteFailure::Storage("the server is stopping".into())))
    }

    /// Who is connected and what they may do.
    pub fn access(&self) -> &SyncAccess {
        &self.hub.access
    }

    /// How busy the core is now: background work reads it to stand aside
    /// while phones sync.
    pub fn activity(&self) -> Activity {
        Activity {
            received: self.hub.received.load(Ordering::Relaxed),
            handling: self.hub.handling.load(Ordering::Relaxed),
        }
    }

    /// Documents whose owner is in memory now.
    pub fn live_documents(&self) -> usize {
        self.hub
            .documents
            .lock()
            .expect("document map poisoned")
            .len()
    }

    /// Closes every connection; the document owners end once their queues
    /// are drained. Nothing acknowledged is lost: replies leave only after
    /// their commit.
    pub fn stop(&self) {
        self.hub.stopping.cancel();
        self.hub
            .documents
            .lock()
            .expect("document map poisoned")
            .clear();
    }

    /// Tells the owners of live documents that another process committed
    /// them, so they load the new changes and push them to their peers.
    /// Commits announced while the listener reconnected are not heard: the
    /// document's next commit here finds their revision, and judges again.
    async fn follow_other_processes(
        self,
        mut committed: mpsc::UnboundedReceiver<DocumentCommitted>,
        process_id: Uuid,
    ) {
        let stop = self.hub.stopping.clone();
        loop {
            let announced = tokio::select! {
                () = stop.cancelled() => return,
                announced = committed.recv() => announced,
            };
            let Some(announced) = announced else { return };
            // This process's own document owners know its commits.
            if announced.process == process_id {
                continue;
            }
            let Ok(id) = DocumentId::parse(&announced.doc_id) else {
                continue;
            };
            self.hub
                .dispatch_if_live(
                    id,
                    DocMessage::Announced {
                        revision: announced.revision,
                    },
                )
                .await;
        }
    }
}
