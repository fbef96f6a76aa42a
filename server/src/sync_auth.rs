//! Authorisation on the sync channel.
//!
//! Every WebSocket on `/sync` is authenticated when it is opened (device
//! credential or session token) and bound to a peer id derived from that
//! credential (`device-<id>` / `session-<id>`), which samod enforces during its
//! handshake. From then on:
//! - the share policy ([`SyncAccess`] as a samod `SharePolicy`) decides per
//!   document whether the peer may read it, write it, or not see it at all;
//! - every incoming change is judged before samod applies it
//!   ([`SyncAccess::authorize_incoming`], rules in `sync::authorize`): a refused
//!   change gets an `error` message naming the reason and the connection closes,
//!   with nothing applied or stored;
//! - revoking a device, or logging a session out, closes its open connections
//!   at once, in every server process (PostgreSQL `NOTIFY
//!   fieldnotes_device_revoked` / `fieldnotes_session_ended`); a periodic sweep
//!   also closes connections of sessions that expired.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use automerge::{sync, Automerge, ChangeHash, ReadDoc};
use futures::Stream;
use samod::{DocumentId, PeerId, ShareConfig};
use sqlx::{postgres::PgListener, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    auth::{
        admin::{DEVICE_REVOKED_CHANNEL, SESSION_ENDED_CHANNEL},
        Credential, Principal, Role,
    },
    committed::CommittedDocs,
    deliveries::{Deliveries, Delivery},
};
use ::sync::authorize::{authorize_notebook_changes, Decision, Refusal, WriterRights};
use ::sync::protocol::Message as ProtocolMessage;

/// How long an incoming change may wait for the changes it depends on to commit.
const DEPENDENCY_WAIT: Duration = Duration::from_secs(60);
/// How long after a connection closed its undelivered messages are surely
/// discarded by samod (its document actors have processed the close).
const DROP_GRACE: Duration = Duration::from_secs(2);
/// How long the close time of a connection is remembered.
const CLOSED_MEMORY: Duration = Duration::from_secs(600);
/// How often open connections are re-checked against revocations, in case a
/// notification was missed while the listener reconnected.
const REVOCATION_SWEEP: Duration = Duration::from_secs(30);

/// Open sync connections one credential may hold: a phone needs one, a
/// browser a few tabs; dozens are an attack on what every connection costs.
pub const MAX_CONNECTIONS_PER_CREDENTIAL: usize = 8;

/// New notebooks one account may create per hour, counted per server process:
/// a volunteer keeps one per territory, a few more after reinstalling.
pub const MAX_NEW_DOCUMENTS_PER_HOUR: usize = 20;

/// Why an incoming message was not handed to samod.
#[derive(Debug, thiserror::Error)]
pub enum IncomingError {
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error("the changes this message depends on were not committed in time")]
    DependenciesNotCommitted,
    #[error("more than {limit} new documents in an hour from one account; try again later")]
    TooManyNewDocuments { limit: usize },
    #[error("reading the committed document: {0}")]
    Database(#[from] sqlx::Error),
}

/// The peer id a credential must use in the automerge-repo handshake.
pub fn peer_id_for(credential: &Credential) -> PeerId {
    match credential {
        Credential::Device { device_id } => PeerId::from(format!("device-{device_id}").as_str()),
        Credential::Session { session_id } => {
            PeerId::from(format!("session-{session_id}").as_str())
        }
    }
}

struct OpenConnection {
    id: Uuid,
    credential: Credential,
    closed: CancellationToken,
}

#[derive(Default)]
struct Registry {
    /// Principals by peer id, for the share policy (samod knows peers by id only).
    principals: HashMap<String, (Principal, usize)>,
    connections: Vec<OpenConnection>,
    /// When recent connections closed (kept [`CLOSED_MEMORY`]).
    closed_at: HashMap<Uuid, Instant>,
    /// The documents each account created in the last hour, and when.
    created: HashMap<Uuid, HashMap<String, Instant>>,
}

/// The outcome of one judgement of an incoming message.
enum Verdict {
    /// With the changes that now apply.
    Allowed(Vec<ChangeHash>),
    /// The changes would create a document, and the writer has created as
    /// many as it may this hour.
    TooManyNewDocuments,
    Refused(Refusal),
    /// Some changes would be left waiting for dependencies: first reload the
    /// committed state if another server process has written since.
    CheckOtherProcesses,
}

/// Per document, what this process handed to samod that PostgreSQL does not
/// hold yet, as the incoming-change judge must know it.
#[derive(Default)]
struct InFlight {
    /// Changes handed to samod and not committed yet, with the connection that
    /// delivered each. A change depending on one of them is judged once it is
    /// committed, not taken for one whose history never arrived (samod, which
    /// holds it, would apply that change at once). samod drops the messages it
    /// still buffers for a connection that closes, so an entry whose
    /// connection has closed may never commit: see [`SyncAccess::dropped_by_samod`].
    admitted: HashMap<ChangeHash, Uuid>,
    /// Changes samod keeps unapplied until their dependencies arrive (the sync
    /// protocol sends them ahead after a Bloom-filter false positive). They are
    /// judged again with every later message, and apply with the one that
    /// completes them, or refuse it.
    waiting: HashMap<ChangeHash, Vec<u8>>,
}

/// The sync channel's view of who is connected and what they may do. Cheap to clone.
#[derive(Clone)]
pub struct SyncAccess {
    pool: PgPool,
    committed: CommittedDocs,
    /// A std mutex: held only for map updates, never across an await.
    registry: Arc<Mutex<Registry>>,
    /// By document id. A std mutex, never held across an await; the per-document
    /// committed-state lock serialises the judgements that update an entry.
    in_flight: Arc<Mutex<HashMap<String, InFlight>>>,
    /// How long an incoming change may wait for the changes it depends on to commit.
    dependency_wait: Duration,
    /// What samod holds in memory; attached once the repo is built (which
    /// needs this value as its share policy). Until then nothing is taken
    /// for dropped.
    samod: Arc<OnceLock<Arc<dyn SamodDocuments>>>,
    /// Who delivered the changes accepted and not yet stored.
    deliveries: Deliveries,
}

/// What samod's in-memory documents hold: implemented in `repo`, the one
/// place that touches samod's API.
pub trait SamodDocuments: Send + Sync {
    /// Those of `hashes` that samod's copy of `doc_id` has applied.
    fn applied(&self, doc_id: &str, hashes: &[ChangeHash]) -> Vec<ChangeHash>;
}

/// A credential holds as many open sync connections as it may.
#[derive(Debug, thiserror::Error)]
#[error("this credential already holds {open} open sync connections; the limit is {limit}")]
pub struct TooManyConnections {
    pub open: usize,
    pub limit: usize,
}

/// Deregisters a connection when the transport that owns it is dropped.
pub struct ConnectionRegistration {
    access: SyncAccess,
    id: Uuid,
    peer_id: String,
    pub closed: CancellationToken,
}

impl ConnectionRegistration {
    /// The connection's id, for logs.
    pub fn connection_id(&self) -> Uuid {
        self.id
    }
}

impl Drop for ConnectionRegistration {
    fn drop(&mut self) {
        let mut registry = self.access.registry.lock().expect("sync registry poisoned");
        registry.connections.retain(|c| c.id != self.id);
        let now = Instant::now();
        registry
            .closed_at
            .retain(|_, at| now.duration_since(*at) < CLOSED_MEMORY);
        registry.closed_at.insert(self.id, now);
        if let Some((_, count)) = registry.principals.get_mut(&self.peer_id) {
            *count -= 1;
            if *count == 0 {
                registry.principals.remove(&self.peer_id);
            }
        }
    }
}

impl SyncAccess {
    pub fn new(pool: PgPool, committed: CommittedDocs) -> Self {
        SyncAccess {
            pool,
            committed,
            registry: Arc::default(),
            in_flight: Arc::default(),
            dependency_wait: DEPENDENCY_WAIT,
            samod: Arc::default(),
            deliveries: Deliveries::default(),
        }
    }

    /// Who delivered the changes this judge accepted, for storage to record.
    pub fn deliveries(&self) -> Deliveries {
        self.deliveries.clone()
    }

    /// Lets the judge ask samod what it holds (see [`Self::dropped_by_samod`]).
    pub fn attach_samod(&self, samod: Arc<dyn SamodDocuments>) {
        let _ = self.samod.set(samod);
    }

    /// Replaces how long an incoming change waits for its dependencies to
    /// commit (tests shorten it).
    pub fn with_dependency_wait(mut self, wait: Duration) -> Self {
        self.dependency_wait = wait;
        self
    }

    /// Records an authenticated connection, within the credential's limit of
    /// open connections (checked and taken under one lock, so parallel
    /// upgrades cannot all pass); its token is cancelled when the credential
    /// is revoked.
    pub fn register(
        &self,
        principal: &Principal,
        connection_id: Uuid,
    ) -> Result<ConnectionRegistration, TooManyConnections> {
        let peer_id = peer_id_for(&principal.credential).to_string();
        let closed = CancellationToken::new();
        let mut registry = self.registry.lock().expect("sync registry poisoned");
        let open = registry
            .connections
            .iter()
            .filter(|c| c.credential == principal.credential)
            .count();
        if open >= MAX_CONNECTIONS_PER_CREDENTIAL {
            return Err(TooManyConnections {
                open,
                limit: MAX_CONNECTIONS_PER_CREDENTIAL,
            });
        }
        registry
            .principals
            .entry(peer_id.clone())
            .and_modify(|(current, count)| {
                *current = principal.clone();
                *count += 1;
            })
            .or_insert_with(|| (principal.clone(), 1));
        registry.connections.push(OpenConnection {
            id: connection_id,
            credential: principal.credential.clone(),
            closed: closed.clone(),
        });
        Ok(ConnectionRegistration {
            access: self.clone(),
            id: connection_id,
            peer_id,
            closed,
        })
    }

    /// Takes one of `account`'s [`MAX_NEW_DOCUMENTS_PER_HOUR`] creations (in
    /// this process) for `doc_id`, checked and taken under one lock so that
    /// parallel connections cannot all pass; false when none is left. The same
    /// document takes one, however many messages create it.
    fn reserve_creation(&self, account: Uuid, doc_id: &str) -> bool {
        let mut registry = self.registry.lock().expect("sync registry poisoned");
        let hour = Duration::from_secs(3600);
        let created = registry.created.entry(account).or_default();
        created.retain(|_, at| at.elapsed() < hour);
        if created.contains_key(doc_id) {
            return true;
        }
        if created.len() >= MAX_NEW_DOCUMENTS_PER_HOUR {
            return false;
        }
        created.insert(doc_id.to_string(), Instant::now());
        true
    }

    fn principal_of(&self, peer_id: &PeerId) -> Option<Principal> {
        let registry = self.registry.lock().expect("sync registry poisoned");
        registry
            .principals
            .get(&peer_id.to_string())
            .map(|(principal, _)| principal.clone())
    }

    /// Closes every open connection made with `credential` (a revoked device,
    /// an ended session).
    pub fn close_credential(&self, credential: &Credential) -> usize {
        let registry = self.registry.lock().expect("sync registry poisoned");
        let mut closed = 0;
        for connection in &registry.connections {
            if connection.credential == *credential {
                connection.closed.cancel();
                closed += 1;
            }
        }
        if closed > 0 {
            tracing::info!(
                ?credential,
                connections = closed,
                "revoked credential disconnected"
            );
        }
        closed
    }

    /// What `peer_id` may do with `doc_id`, and whether that is final: a
    /// decision taken before the document is a stored notebook with an owner
    /// is taken again once it is.
    async fn share_config(&self, doc_id: &DocumentId, peer_id: &PeerId) -> (ShareConfig, bool) {
        let Some(principal) = self.principal_of(peer_id) else {
            return (ShareConfig::none(), true);
        };
        let row = self.committed.document_row(&doc_id.to_string()).await;
        let is_notebook = matches!(row, Ok(Some((_, Some(_)))));
        let config = match row {
            // A document the server does not have: the peer is creating it. Its
            // content is judged change by change on the way in.
            Ok(None) => ShareConfig::read_write(),
            Ok(Some((_, Some(owner)))) if owner == principal.account_id => {
                ShareConfig::read_write()
            }
            Ok(Some((territory, _)))
                if principal.is_admin
                    || principal.has_role(territory, Role::Coordinator)
                    || principal.has_role(territory, Role::RegieAuditor) =>
            {
                ShareConfig::read_only()
            }
            Ok(Some(_)) => ShareConfig::none(),
            Err(error) => {
                tracing::error!(%doc_id, %error, "share policy could not read the document; denying");
                ShareConfig::none()
            }
        };
        (config.with_announce(false), is_notebook)
    }

    /// Whether an `ephemeral` message (presence, cursors: relayed by samod to
    /// the document's other peers) from `principal` may be relayed: only the
    /// notebook's owner may send them, so a read-only reader (an auditor, a
    /// coordinator) cannot push messages to a volunteer's phone.
    pub async fn may_send_ephemeral(&self, principal: &Principal, doc_id: &str) -> bool {
        matches!(
            self.committed.document_row(doc_id).await,
            Ok(Some((_, Some(owner)))) if owner == principal.account_id
        )
    }

    /// Judges an incoming message before samod sees it: changes must be ones
    /// the connection's principal may make.
    pub async fn authorize_incoming(
        &self,
        principal: &Principal,
        connection_id: Uuid,
        message: &ProtocolMessage,
    ) -> Result<(), IncomingError> {
        let (ProtocolMessage::Sync {
            document_id, data, ..
        }
        | ProtocolMessage::Request {
            document_id, data, ..
        }) = message
        else {
            return Ok(());
        };
        let doc_id = document_id.to_string();
        let Ok(sync_message) = sync::Message::decode(data) else {
            return Ok(()); // `wire::check_incoming` has already refused it
        };
        if sync_message.changes.is_empty() {
            return Ok(());
        }
        let incoming: Vec<Vec<u8>> = sync_message.changes.iter().map(<[u8]>::to_vec).collect();
        let rights = WriterRights {
            account_id: principal.account_id,
            notebook_territories: principal.territories_with(&[Role::Volunteer, Role::Coordinator]),
        };
        let mut checked_other_processes = false;
        loop {
            let verdict = self
                .committed
                .wait_for(&doc_id, self.dependency_wait, |committed| {
                    self.judge(
                        &doc_id,
                        committed,
                        (connection_id, &incoming),
                        &rights,
                        checked_other_processes,
                    )
                })
                .await?;
            return match verdict {
                Some(Verdict::Allowed(applied)) => {
                    let delivery = Delivery {
                        account_id: principal.account_id,
                        credential: principal.credential.clone(),
                    };
                    self.deliveries.accepted(&applied, &delivery);
                    Ok(())
                }
                Some(Verdict::Refused(refusal)) => {
                    tracing::warn!(%doc_id, account = %principal.account_id, %refusal, "refusing changes");
                    Err(refusal.into())
                }
                Some(Verdict::TooManyNewDocuments) => {
                    tracing::warn!(%doc_id, account = %principal.account_id, "refusing a new document over the hourly limit");
                    Err(IncomingError::TooManyNewDocuments {
                        limit: MAX_NEW_DOCUMENTS_PER_HOUR,
                    })
                }
                Some(Verdict::CheckOtherProcesses) if !checked_other_processes => {
                    self.committed.refresh(&doc_id).await?;
                    checked_other_processes = true;
                    continue;
                }
                Some(Verdict::CheckOtherProcesses) | None => {
                    Err(IncomingError::DependenciesNotCommitted)
                }
            };
        }
    }

    /// Of the `awaited` uncommitted changes of a document, those samod dropped:
    /// samod discards the messages it still buffers (while a share decision
    /// or a load is pending) for a connection that closes, so a change the
    /// judge let through on a connection closed for [`DROP_GRACE`] that samod
    /// has not applied never will be; waiting for its commit would stall every
    /// change depending on it.
    fn dropped_by_samod(
        &self,
        doc_id: &str,
        awaited: &[ChangeHash],
        admitted: &HashMap<ChangeHash, Uuid>,
    ) -> Vec<ChangeHash> {
        let Some(samod) = self.samod.get() else {
            return Vec::new();
        };
        let long_closed: Vec<ChangeHash> = {
            let registry = self.registry.lock().expect("sync registry poisoned");
            awaited
                .iter()
                .copied()
                .filter(|hash| {
                    admitted
                        .get(hash)
                        .and_then(|connection| registry.closed_at.get(connection))
                        .is_some_and(|at| at.elapsed() >= DROP_GRACE)
                })
                .collect()
        };
        if long_closed.is_empty() {
            return Vec::new();
        }
        let applied = samod.applied(doc_id, &long_closed);
        long_closed
            .into_iter()
            .filter(|hash| !applied.contains(hash))
            .collect()
    }

    /// One judgement of `incoming` (with the changes still waiting in this
    /// document) against its committed state; `None` to judge again after the
    /// next commit (or recheck). Runs under the document's committed-state lock.
    ///
    /// Changes may be left waiting only once `committed` is known to include
    /// what other server processes committed (`checked_other_processes`):
    /// samod may have loaded their changes, and would apply at once a change
    /// this judgement took for one whose dependencies never arrived.
    fn judge(
        &self,
        doc_id: &str,
        committed: &Automerge,
        (connection_id, incoming): (Uuid, &[Vec<u8>]),
        rights: &WriterRights,
        checked_other_processes: bool,
    ) -> Option<Verdict> {
        // Nothing stored yet: these changes create the document.
        if committed.get_heads().is_empty() && !self.reserve_creation(rights.account_id, doc_id) {
            return Some(Verdict::TooManyNewDocuments);
        }
        let mut in_flight = self.in_flight.lock().expect("in-flight map poisoned");
        let entry = in_flight.entry(doc_id.to_string()).or_default();
        entry
            .admitted
            .retain(|hash, _| committed.get_change_by_hash(hash).is_none());
        let chunks: Vec<Vec<u8>> = entry
            .waiting
            .values()
            .cloned()
            .chain(incoming.iter().cloned())
            .collect();
        let decide = |admitted: &HashMap<ChangeHash, Uuid>| {
            authorize_notebook_changes(
                committed,
                |hash| admitted.contains_key(hash),
                &chunks,
                rights,
            )
        };
        let mut decision = decide(&entry.admitted);
        if let Decision::AwaitCommit(awaited) = &decision {
            let dropped = self.dropped_by_samod(doc_id, awaited, &entry.admitted);
            if !dropped.is_empty() {
                tracing::info!(
                    doc_id,
                    dropped = dropped.len(),
                    "forgetting accepted changes that samod dropped with their closed connection"
                );
                entry.admitted.retain(|hash, _| !dropped.contains(hash));
                decision = decide(&entry.admitted);
            }
        }
        let outcome = match decision {
            Decision::Refused(refusal) => Some(Verdict::Refused(refusal)),
            Decision::AwaitCommit(awaited) => {
                tracing::debug!(
                    doc_id,
                    %connection_id,
                    ?awaited,
                    "changes wait for the commit of changes accepted before"
                );
                None
            }
            Decision::Allowed { waiting, .. }
                if !waiting.is_empty() && !checked_other_processes =>
            {
                Some(Verdict::CheckOtherProcesses)
            }
            Decision::Allowed {
                applied,
                waiting,
                missing,
            } => {
                if !waiting.is_empty() {
                    tracing::debug!(
                        doc_id,
                        waiting = waiting.len(),
                        ?missing,
                        "changes wait for dependencies the server has not received"
                    );
                }
                entry
                    .admitted
                    .extend(applied.iter().map(|hash| (*hash, connection_id)));
                entry.waiting = waiting
                    .into_iter()
                    .map(|change| (change.hash(), change.raw_bytes().to_vec()))
                    .collect();
                Some(Verdict::Allowed(applied))
            }
        };
        if entry.admitted.is_empty() && entry.waiting.is_empty() {
            in_flight.remove(doc_id);
        }
        outcome
    }

    /// Listens for revoked devices and ended sessions from any server process
    /// and closes their connections; also sweeps periodically in case a
    /// notification was lost while the listener reconnected, and to close
    /// sessions that expired. Runs until `stop` is cancelled.
    pub async fn watch_revocations(self, stop: CancellationToken) {
        let channels = [DEVICE_REVOKED_CHANNEL, SESSION_ENDED_CHANNEL];
        let mut listener = loop {
            match PgListener::connect_with(&self.pool).await {
                Ok(mut listener) => match listener.listen_all(channels).await {
                    Ok(()) => break listener,
                    Err(error) => tracing::warn!(%error, "listening for revocations"),
                },
                Err(error) => tracing::warn!(%error, "connecting the revocation listener"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        let mut sweep = tokio::time::interval(REVOCATION_SWEEP);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                notification = listener.recv() => match notification {
                    Ok(notification) => {
                        let id = Uuid::parse_str(notification.payload());
                        match (notification.channel(), id) {
                            (DEVICE_REVOKED_CHANNEL, Ok(device_id)) => {
                                self.close_credential(&Credential::Device { device_id });
                            }
                            (SESSION_ENDED_CHANNEL, Ok(session_id)) => {
                                self.close_credential(&Credential::Session { session_id });
                            }
                            _ => tracing::warn!("ignoring a malformed revocation notification"),
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "revocation listener lost its connection; it reconnects");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = sweep.tick() => self.sweep_revoked().await,
            }
        }
    }

    async fn sweep_revoked(&self) {
        let (devices, sessions): (Vec<Uuid>, Vec<Uuid>) = {
            let registry = self.registry.lock().expect("sync registry poisoned");
            let (mut devices, mut sessions) = (Vec::new(), Vec::new());
            for connection in &registry.connections {
                match connection.credential {
                    Credential::Device { device_id } => devices.push(device_id),
                    Credential::Session { session_id } => sessions.push(session_id),
                }
            }
            (devices, sessions)
        };
        if devices.is_empty() && sessions.is_empty() {
            return;
        }
        let ended: Result<Vec<(Uuid, bool)>, _> = sqlx::query_as(
            "SELECT id, true FROM devices WHERE id = ANY($1) AND revoked_at IS NOT NULL \
             UNION ALL \
             SELECT id, false FROM sessions WHERE id = ANY($2) \
               AND (revoked_at IS NOT NULL OR expires_at <= now())",
        )
        .bind(&devices)
        .bind(&sessions)
        .fetch_all(&self.pool)
        .await;
        match ended {
            Ok(ended) => {
                for (id, is_device) in ended {
                    self.close_credential(&if is_device {
                        Credential::Device { device_id: id }
                    } else {
                        Credential::Session { session_id: id }
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "revocation sweep failed"),
        }
    }
}

/// Where a share-policy stream stands.
enum ShareStep {
    First,
    WhenTheNotebookIsKnown,
    Done,
}

impl samod::SharePolicy for SyncAccess {
    /// samod asks about every (document, peer) pair, including while a peer
    /// is creating a document the server cannot yet tell the owner of; that
    /// first answer is replaced once the notebook is stored.
    fn share(
        &self,
        doc_id: DocumentId,
        peer_id: PeerId,
    ) -> impl Stream<Item = ShareConfig> + Send + 'static {
        let access = self.clone();
        futures::stream::unfold(ShareStep::First, move |step| {
            let (access, doc_id, peer_id) = (access.clone(), doc_id.clone(), peer_id.clone());
            async move {
                match step {
                    ShareStep::First => {}
                    ShareStep::WhenTheNotebookIsKnown => {
                        access.committed.wait_for_owner(&doc_id.to_string()).await;
                    }
                    ShareStep::Done => return None,
                }
                let (config, is_notebook) = access.share_config(&doc_id, &peer_id).await;
                let next = if is_notebook {
                    ShareStep::Done
                } else {
                    ShareStep::WhenTheNotebookIsKnown
                };
                Some((config, next))
            }
        })
    }
}
