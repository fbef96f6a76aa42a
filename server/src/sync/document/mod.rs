//! One document's owner in this process: a task that holds the document as
//! committed, the sync state of every connection that has it open, and the
//! changes waiting for their dependencies.
//!
//! Everything about one document happens here, one batch of messages at a
//! time: a message's changes are judged (`sync::judge`) against the
//! committed document before anything is applied, the accepted ones are
//! handed to the store and, once stored, every peer of the document gets its
//! reply generated from the committed state. So a reply never announces
//! heads that are not durable, and the work of a message is proportional to
//! the document's own peers. When no connection holds the document and none
//! has written for the idle time, the task ends and the document leaves memory.
//!
//! - [`judging`]: the owner's decisions, without I/O — judging a batch,
//!   leaving a change waiting for its dependency, judging again on another
//!   process's revision;
//! - this module: the task that drives them — loading, asking the database,
//!   committing, replying to the peers.

mod judging;

use std::{collections::HashMap, sync::Arc, time::Duration};

use automerge::Automerge;
use sync::{
    judge::MAX_CHANGES_PER_MESSAGE,
    protocol::{DocumentId, DocumentSync, IncomingSync, SyncDataLimits},
};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use uuid::Uuid;

use super::{
    access::{access_for, may_write, Access, Delivery},
    peer::Peer,
    store::{Commit, Committed},
    Handling, Hub,
};
use crate::auth::Principal;
use judging::{Deliverer, Judging, Pass, Settled, ToCommit};

/// Messages one batch takes at most: those that arrived together.
const MAX_BATCH: usize = 256;
/// How often a batch is judged again because another process committed first.
const MAX_STALE_RETRIES: usize = 5;
/// How long loading a document is retried before its peers are told to
/// come back later.
const LOAD_BUDGET: Duration = Duration::from_secs(30);

/// What a document's owner is told.
pub enum DocMessage {
    /// An automerge sync message (`request`: the peer does not have the document).
    Sync {
        peer: Arc<Peer>,
        data: Vec<u8>,
        is_request: bool,
    },
    /// An ephemeral message, relayed to the document's other peers.
    Ephemeral {
        peer: Arc<Peer>,
        count: u64,
        session_id: String,
        data: Vec<u8>,
    },
    /// The connection no longer holds the document (it left, or said it
    /// does not have it).
    Left { connection_id: Uuid },
    /// Another server process committed the document at this revision.
    Announced { revision: i64 },
    /// A change the server makes itself (see [`ServerWrite`]).
    Write {
        write: ServerWrite,
        done: oneshot::Sender<Result<WriteOutcome, WriteFailure>>,
    },
}

/// A change the server makes to a document on someone's behalf: a
/// coordinator's resolution of a conflict in a notebook, decisions published
/// to a review document. It is committed like a peer's change (stored with
/// the inventory, then sent to every peer of the document), under an actor
/// id of its own, never reused, so writes from several server processes
/// cannot collide.
pub struct ServerWrite {
    /// Makes the change on the document as committed. Run again on the
    /// reloaded document when another process committed first; an error
    /// leaves the document as it was and is handed back to the caller.
    pub edit: Edit,
    /// Who the change is made for: its receipt, when someone asked for it.
    pub on_behalf_of: Option<Delivery>,
    /// `review_history` rows stored in the change's transaction.
    pub history: Vec<serde_json::Value>,
}

/// The change a [`ServerWrite`] makes.
pub type Edit = Box<dyn FnMut(&mut Automerge) -> Result<(), EditError> + Send>;

/// Why an edit does not apply, in the caller's own terms (downcast it).
pub type EditError = Box<dyn std::error::Error + Send + Sync>;

/// What a [`ServerWrite`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Committed, and sent to the document's peers.
    Written,
    /// The edit changed nothing: nothing stored.
    Unchanged,
}

/// Why a [`ServerWrite`] was not committed.
#[derive(Debug)]
pub enum WriteFailure {
    /// The edit refused: the document was left as it was.
    Refused(EditError),
    /// It could not be stored (nothing was).
    Storage(String),
}

impl Deliverer for Arc<Peer> {
    fn principal(&self) -> &Principal {
        &self.principal
    }
}

struct PeerSync {
    peer: Arc<Peer>,
    sync: DocumentSync,
}

pub(super) struct DocumentOwner {
    id: DocumentId,
    key: String,
    hub: Arc<Hub>,
    generation: u64,
    /// The document as committed, the changes waiting, and the decisions.
    judging: Judging<Arc<Peer>>,
    peers: HashMap<Uuid, PeerSync>,
}

impl DocumentOwner {
    pub(super) fn spawn(
        hub: Arc<Hub>,
        id: DocumentId,
        generation: u64,
        messages: mpsc::Receiver<DocMessage>,
    ) {
        let owner = DocumentOwner {
            id,
            key: id.to_string(),
            hub,
            generation,
            judging: Judging::new(),
            peers: HashMap::new(),
        };
        let span = tracing::info_span!("document", doc_id = %owner.key);
        tokio::spawn(owner.run(messages).instrument(span));
    }

    async fn run(mut self, mut messages: mpsc::Receiver<DocMessage>) {
        loop {
            let first = if self.peers.is_empty() {
                match tokio::time::timeout(self.hub.settings.document_idle, messages.recv()).await {
                    Ok(Some(message)) => message,
                    Ok(None) => return,
                    Err(_idle) => {
                        if self.hub.evict(&self.id, self.generation, &messages) {
                            tracing::debug!("idle document leaves memory");
                            self.hand_over(messages);
                            return;
                        }
                        continue;
                    }
                }
            } else {
                match messages.recv().await {
                    Some(message) => message,
                    None => return,
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match messages.try_recv() {
                    Ok(message) => batch.push(message),
                    Err(_) => break,
                }
            }
            let hub = self.hub.clone();
            let _handling = Handling::start(&hub.handling);
            self.handle(batch).await;
        }
    }

    /// Messages that reached this owner after it was taken out of the map go
    /// to the next one.
    fn hand_over(self, mut messages: mpsc::Receiver<DocMessage>) {
        messages.close();
        let mut rest = Vec::new();
        while let Ok(message) = messages.try_recv() {
            rest.push(message);
        }
        if rest.is_empty() {
            return;
        }
        let (hub, id) = (self.hub, self.id);
        tokio::spawn(async move {
            for message in rest {
                hub.dispatch(id, message).await;
            }
        });
    }

    async fn handle(&mut self, batch: Vec<DocMessage>) {
        if self.judging.committed().is_none() {
            if let Err(reason) = self.load().await {
                for message in batch {
                    match message {
                        DocMessage::Sync { peer, .. } | DocMessage::Ephemeral { peer, .. } => {
                            peer.close(&reason);
                        }
                        DocMessage::Write { done, .. } => {
                            let _ = done.send(Err(WriteFailure::Storage(reason.clone())));
                        }
                        DocMessage::Left { .. } | DocMessage::Announced { .. } => {}
                    }
                }
                return;
            }
        }
        let mut syncs = Vec::new();
        let mut writes = Vec::new();
        let mut announced = None;
        for message in batch {
            match message {
                DocMessage::Sync {
                    peer,
                    data,
                    is_request,
                } => syncs.push((peer, data, is_request)),
                DocMessage::Ephemeral {
                    peer,
                    count,
                    session_id,
                    data,
                } => self.relay(&peer, count, &session_id, data),
                DocMessage::Left { connection_id } => {
                    self.peers.remove(&connection_id);
                }
                DocMessage::Announced { revision } => {
                    announced = Some(announced.unwrap_or(0).max(revision));
                }
                DocMessage::Write { write, done } => writes.push((write, done)),
            }
        }
        let behind = self.judging.committed().map_or(0, |doc| doc.revision);
        let mut reloaded = false;
        if announced.is_some_and(|revision| revision > behind) {
            match self.load().await {
                Ok(()) => reloaded = true,
                Err(reason) => {
                    tracing::warn!(%reason, "could not load what another process committed");
                }
            }
        }
        if !syncs.is_empty() || (reloaded && self.judging.has_waiting()) {
            self.receive(&syncs, reloaded).await;
        }
        for (write, done) in writes {
            let outcome = self.write(write).await;
            let _ = done.send(outcome);
        }
        self.reply_to_peers();
    }

    /// Commits a change the server makes; see [`ServerWrite`].
    async fn write(&mut self, mut write: ServerWrite) -> Result<WriteOutcome, WriteFailure> {
        for _ in 0..MAX_STALE_RETRIES {
            if self.judging.committed().is_none() {
                self.load().await.map_err(WriteFailure::Storage)?;
            }
            let Some(mut doc) = self.judging.take_committed() else {
                continue;
            };
            let heads_before = doc.doc.get_heads();
            // On a copy: an edit that fails halfway leaves nothing behind.
            let mut edited = doc.doc.clone();
            edited.set_actor(automerge::ActorId::random());
            if let Err(error) = (write.edit)(&mut edited) {
                self.judging.loaded(doc);
                return Err(WriteFailure::Refused(error));
            }
            if edited.get_heads() == heads_before {
                self.judging.loaded(doc);
                return Ok(WriteOutcome::Unchanged);
            }
            let chunk = edited.save_after(&heads_before);
            let receipts = match &write.on_behalf_of {
                Some(delivery) => edited
                    .get_changes(&heads_before)
                    .iter()
                    .map(|change| (change.hash(), delivery.clone()))
                    .collect(),
                None => Vec::new(),
            };
            doc.doc = edited;
            let (done, committed) = oneshot::channel();
            self.hub
                .store
                .commit(Commit {
                    doc_id: self.key.clone(),
                    doc,
                    chunk,
                    receipts,
                    history: write.history.clone(),
                    done,
                })
                .await;
            match committed
                .await
                .unwrap_or_else(|_| Committed::Failed("the server is stopping".into()))
            {
                Committed::Stored(doc) => {
                    self.judging.loaded(*doc);
                    return Ok(WriteOutcome::Written);
                }
                Committed::Stale => {
                    tracing::debug!("another process committed first; writing again on its state");
                    self.judging.forget();
                }
                Committed::Failed(reason) => {
                    self.judging.forget();
                    return Err(WriteFailure::Storage(reason));
                }
            }
        }
        Err(WriteFailure::Storage(
            "other processes kept committing first; try again".into(),
        ))
    }

    /// Loads the document as committed, retrying while the database is
    /// unreachable or the pool exhausted (messages wait meanwhile).
    async fn load(&mut self) -> Result<(), String> {
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.hub.store.load(&self.key).await {
                Ok(doc) => {
                    self.judging.loaded(doc);
                    return Ok(());
                }
                Err(error) if started.elapsed() < LOAD_BUDGET => {
                    tracing::warn!(%error, ?backoff, "loading the document failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(error) => {
                    tracing::error!(%error, "loading the document failed");
                    self.judging.forget();
                    return Err(
                        "the server cannot read its storage now; try again later".to_string()
                    );
                }
            }
        }
    }

    /// Judges the batch's sync messages, commits what they add, and judges
    /// them again if another process committed first. `recheck_waiting`:
    /// the document was reloaded, and changes that waited may apply now.
    async fn receive(&mut self, syncs: &[(Arc<Peer>, Vec<u8>, bool)], mut recheck_waiting: bool) {
        let mut checked_other_processes = false;
        for _ in 0..MAX_STALE_RETRIES {
            let Some(mut pass) = self.judging.start_pass() else {
                return;
            };
            if recheck_waiting {
                let hub = &self.hub;
                let key = &self.key;
                let may_create = |account| hub.access.reserve_creation(account, key);
                if let Err((from, reason)) = self.judging.judge_waiting(&mut pass, &may_create) {
                    self.refuse(&from, &reason);
                }
            }
            for (peer, data, is_request) in syncs {
                self.receive_one(&mut pass, peer, data, *is_request);
            }
            let mut settled = self.judging.settle(pass, !checked_other_processes);
            if let Settled::CheckRevision(pass) = settled {
                // Changes left waiting for a dependency this process has
                // not seen: another process may have committed it. Judged
                // against that, they may be refused at once instead of waiting.
                checked_other_processes = true;
                match self.hub.store.revision(&self.key).await {
                    Ok(revision) if revision != pass.revision() => {
                        tracing::debug!("another process committed; judging against its changes");
                        let writers = self.judging.withdraw(pass.into_attempt());
                        if !self.reload_for_another_pass(&writers).await {
                            return;
                        }
                        recheck_waiting = true;
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "could not read the document's revision"),
                }
                settled = self.judging.settle(pass, false);
            }
            let ToCommit {
                doc,
                chunk,
                receipts,
                attempt,
            } = match settled {
                Settled::Commit(commit) => commit,
                // Settled with `false`, a pass never asks again.
                Settled::Unchanged | Settled::CheckRevision(_) => return,
            };
            let (done, committed) = oneshot::channel();
            self.hub
                .store
                .commit(Commit {
                    doc_id: self.key.clone(),
                    doc,
                    chunk,
                    receipts,
                    history: Vec::new(),
                    done,
                })
                .await;
            let outcome = committed
                .await
                .unwrap_or_else(|_| Committed::Failed("the server is stopping".into()));
            match outcome {
                Committed::Stored(doc) => {
                    self.judging.loaded(*doc);
                    return;
                }
                Committed::Stale => {
                    tracing::debug!("another process committed first; judging again");
                    let writers = self.judging.withdraw(attempt);
                    if !self.reload_for_another_pass(&writers).await {
                        return;
                    }
                    recheck_waiting = true;
                }
                Committed::Failed(reason) => {
                    // Nothing was acknowledged: the writers reconnect and
                    // send their changes again.
                    let writers = self.judging.withdraw(attempt);
                    self.drop_writers(&writers, &reason);
                    return;
                }
            }
        }
        tracing::warn!("other processes kept committing first; the writers retry later");
        self.judging.forget();
    }

    /// Reloads the document to judge a batch again on what another process
    /// committed; false if it cannot be (the writers are told to come back).
    async fn reload_for_another_pass(&mut self, writers: &[Arc<Peer>]) -> bool {
        match self.load().await {
            Ok(()) => true,
            Err(reason) => {
                self.drop_writers(writers, &reason);
                false
            }
        }
    }

    fn drop_writers(&mut self, writers: &[Arc<Peer>], reason: &str) {
        for peer in writers {
            self.peers.remove(&peer.connection_id);
            peer.close(reason);
        }
    }

    /// Takes one sync message into the pass's document.
    fn receive_one(
        &mut self,
        pass: &mut Pass<Arc<Peer>>,
        peer: &Arc<Peer>,
        data: &[u8],
        is_request: bool,
    ) {
        if peer.is_closed() {
            return;
        }
        let limits = SyncDataLimits {
            max_chunks: MAX_CHANGES_PER_MESSAGE,
            max_inflated_bytes: self.hub.settings.max_inflated_bytes,
        };
        let incoming = match IncomingSync::decode(data, limits) {
            Ok(incoming) => incoming,
            Err(error) => {
                self.refuse(peer, &error.to_string());
                return;
            }
        };
        // Changes are judged whoever sends them: a writer without the right
        // is refused with the reason, as it already knows the document.
        if incoming.has_changes() {
            let hub = &self.hub;
            let key = &self.key;
            let may_create = |account| hub.access.reserve_creation(account, key);
            if let Err(reason) = self.judging.judge(pass, peer, &incoming, &may_create) {
                self.refuse(peer, &reason);
                return;
            }
        }
        let doc = pass.document();
        let nothing_here = !doc.is_stored() && doc.doc.get_heads().is_empty();
        if access_for(&peer.principal, doc) == Access::None || (is_request && nothing_here) {
            self.peers.remove(&peer.connection_id);
            peer.send(peer.protocol.doc_unavailable(self.id));
            return;
        }
        let writer = may_write(&peer.principal, doc);
        let entry = self
            .peers
            .entry(peer.connection_id)
            .or_insert_with(|| PeerSync {
                peer: peer.clone(),
                sync: if writer {
                    DocumentSync::new()
                } else {
                    DocumentSync::read_only()
                },
            });
        if let Err(error) = entry.sync.received(&mut doc.doc, incoming) {
            let reason = format!("the sync message does not apply: {error}");
            self.refuse(peer, &reason);
        }
    }

    fn refuse(&mut self, peer: &Peer, reason: &str) {
        tracing::warn!(connection_id = %peer.connection_id, %reason, "closing a sync connection");
        self.peers.remove(&peer.connection_id);
        peer.close(reason);
    }

    /// Ephemeral messages (presence, cursors) come only from the notebook's
    /// owner, so a read-only reader cannot push messages to a volunteer's
    /// phone; they go to the document's other peers.
    fn relay(&self, from: &Peer, count: u64, session_id: &str, data: Vec<u8>) {
        let Some(doc) = self.judging.committed() else {
            return;
        };
        let is_owner = doc
            .header
            .is_some_and(|header| header.owner_id == from.principal.account_id);
        if !is_owner {
            tracing::debug!(connection_id = %from.connection_id, "dropping an ephemeral message from a peer that does not own the document");
            return;
        }
        for other in self.peers.values() {
            if other.peer.connection_id != from.connection_id
                && access_for(&other.peer.principal, doc) != Access::None
            {
                other.peer.send(other.peer.protocol.ephemeral(
                    from.protocol.remote(),
                    self.id,
                    count,
                    session_id,
                    data.clone(),
                ));
            }
        }
    }

    /// Gives every peer of the document what it lacks of the committed state
    /// (the acknowledgement of its own changes, and the fan-out of others').
    fn reply_to_peers(&mut self) {
        let (Some(doc), Some(source)) = (self.judging.committed(), self.judging.reply_source())
        else {
            return;
        };
        let mut gone = Vec::new();
        for (connection_id, peer) in &mut self.peers {
            if peer.peer.is_closed() {
                gone.push(*connection_id);
                continue;
            }
            if access_for(&peer.peer.principal, doc) == Access::None {
                // Granted while the document was being created, and not its
                // owner's now that it is stored.
                peer.peer.send(peer.peer.protocol.doc_unavailable(self.id));
                gone.push(*connection_id);
                continue;
            }
            if let Some(data) = peer.sync.reply(&source) {
                peer.peer.send(peer.peer.protocol.sync(self.id, data));
            }
        }
        for connection_id in gone {
            self.peers.remove(&connection_id);
        }
    }
}
