//! Who may do what on the sync channel.
//!
//! Every WebSocket on `/sync` is authenticated when it is opened (device
//! credential or session token) and bound to a peer id derived from that
//! credential (`device-<id>` / `session-<id>`), which the handshake enforces.
//! From then on:
//! - [`access_for`] decides per document whether the peer may read it, write
//!   it, or not learn that it exists; the document's owner in the loop
//!   decides it again at every message, so what changed since (a notebook
//!   stored meanwhile) counts;
//! - every incoming change is judged before it is applied (rules in
//!   `sync::judge`, called by the document's owner, `super::document`);
//! - a credential holds at most [`MAX_CONNECTIONS_PER_CREDENTIAL`] open
//!   connections and its account creates at most [`MAX_NEW_DOCUMENTS_PER_HOUR`];
//! - revoking a device, or logging a session out, closes its open connections
//!   at once, in every server process (PostgreSQL `NOTIFY
//!   fieldnotes_device_revoked` / `fieldnotes_session_ended`, heard by the
//!   process's listener, `crate::notifications`); so does disabling the
//!   account or removing one of its roles (every open session and active
//!   device of the account is announced, `auth::admin::close_account_connections`),
//!   so that its clients reconnect as the account is now; a periodic sweep
//!   also closes connections of sessions that expired, and of credentials
//!   revoked or of accounts disabled whose announcement was missed.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sqlx::PgPool;
use sync::protocol::PeerId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    auth::{Credential, Principal, Role},
    inventory::materialise::{CommittedDoc, DocumentKind},
};

/// How often open connections are re-checked against revocations, in case a
/// notification was missed while the listener reconnected.
const REVOCATION_SWEEP: Duration = Duration::from_secs(30);

/// Open sync connections one credential may hold: a phone needs one, a
/// browser a few tabs; dozens are an attack on what every connection costs.
pub const MAX_CONNECTIONS_PER_CREDENTIAL: usize = 8;

/// New notebooks one account may create per hour, counted per server process:
/// a volunteer keeps one per territory, a few more after reinstalling.
pub const MAX_NEW_DOCUMENTS_PER_HOUR: usize = 20;

/// Documents one connection may hold open at once: a phone syncs its
/// notebooks, a browser a territory's worth; thousands are an attack on the
/// memory every open document costs.
pub const MAX_DOCUMENTS_PER_CONNECTION: usize = 256;

/// The peer id a credential must use in the automerge-repo handshake.
pub fn peer_id_for(credential: &Credential) -> PeerId {
    match credential {
        Credential::Device { device_id } => format!("device-{device_id}"),
        Credential::Session { session_id } => format!("session-{session_id}"),
    }
}

/// What a peer may do with one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Its owner, or whoever creates a document the server does not hold
    /// (what the changes may write is judged change by change).
    ReadWrite,
    /// The territory's coordinators and régie auditors, and admins; for a
    /// territory's species list, every member.
    ReadOnly,
    /// Everyone else: told the document is unavailable, as if it did not exist.
    None,
}

/// What `principal` may do with `doc` as it is committed now.
pub fn access_for(principal: &Principal, doc: &CommittedDoc) -> Access {
    if doc.kind == DocumentKind::Retired {
        // Its owner was erased: nobody is shown it again, and a phone still
        // holding its history is told it is unavailable.
        return Access::None;
    }
    if let DocumentKind::SpeciesList { territory } = doc.kind {
        // Reference data for everyone working in the territory; written by
        // the server only (the judge refuses every peer's change to it).
        return if principal.is_admin || principal.is_member(territory) {
            Access::ReadOnly
        } else {
            Access::None
        };
    }
    match &doc.header {
        Some(header) if header.owner_id == principal.account_id => Access::ReadWrite,
        Some(header)
            if principal.is_admin
                || principal.has_role(header.territory_id, Role::Coordinator)
                || principal.has_role(header.territory_id, Role::RegieAuditor) =>
        {
            Access::ReadOnly
        }
        Some(_) => Access::None,
        None if !doc.is_stored() => Access::ReadWrite,
        // Stored without a usable header (filed under the default territory):
        // only admins, who see every territory, read it.
        None if principal.is_admin => Access::ReadOnly,
        None => Access::None,
    }
}

/// Whether `principal` may write `doc` over sync at all: the owner of a
/// notebook, or whoever creates a document the server does not hold. Review
/// documents and species lists are the server's to write, whoever may read
/// them. The sync state of any other peer is read-only
/// (`DocumentSync::read_only`), so an honest peer is never led to offer changes
/// the judge would refuse.
pub fn may_write(principal: &Principal, doc: &CommittedDoc) -> bool {
    doc.kind == DocumentKind::Notebook && access_for(principal, doc) == Access::ReadWrite
}

/// Who sent a change: the account and the credential of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub account_id: Uuid,
    pub credential: Credential,
}

impl Delivery {
    pub fn of(principal: &Principal) -> Delivery {
        Delivery {
            account_id: principal.account_id,
            credential: principal.credential.clone(),
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
    connections: Vec<OpenConnection>,
    /// The documents each account created in the last hour, and when.
    created: HashMap<Uuid, HashMap<String, Instant>>,
}

/// The sync channel's view of who is connected. Cheap to clone.
#[derive(Clone)]
pub struct SyncAccess {
    pool: PgPool,
    /// A std mutex: held only for map updates, never across an await.
    registry: Arc<Mutex<Registry>>,
}

/// A credential holds as many open sync connections as it may.
#[derive(Debug, thiserror::Error)]
#[error("this credential already holds {open} open sync connections; the limit is {limit}")]
pub struct TooManyConnections {
    pub open: usize,
    pub limit: usize,
}

/// Deregisters a connection when it is dropped (with the connection's task).
pub struct ConnectionRegistration {
    access: SyncAccess,
    id: Uuid,
    /// Cancelled when the credential is revoked or the session ends.
    pub revoked: CancellationToken,
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
    }
}

impl SyncAccess {
    pub fn new(pool: PgPool) -> Self {
        SyncAccess {
            pool,
            registry: Arc::default(),
        }
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
        let revoked = CancellationToken::new();
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
        registry.connections.push(OpenConnection {
            id: connection_id,
            credential: principal.credential.clone(),
            closed: revoked.clone(),
        });
        Ok(ConnectionRegistration {
            access: self.clone(),
            id: connection_id,
            revoked,
        })
    }

    /// Open sync connections in this process.
    pub fn open_connections(&self) -> usize {
        self.registry
            .lock()
            .expect("sync registry poisoned")
            .connections
            .len()
    }

    /// Takes one of `account`'s [`MAX_NEW_DOCUMENTS_PER_HOUR`] creations (in
    /// this process) for `doc_id`, checked and taken under one lock so that
    /// parallel connections cannot all pass; false when none is left. The same
    /// document takes one, however many messages create it.
    pub fn reserve_creation(&self, account: Uuid, doc_id: &str) -> bool {
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

    /// Closes the connections of the devices revoked and sessions ended in
    /// any server process, as `ended` announces them
    /// ([`crate::notifications`]); also sweeps periodically, for
    /// announcements missed while the listener reconnected and for sessions
    /// that expired. Runs until `stop` is cancelled.
    pub async fn watch_revocations(
        self,
        mut ended: mpsc::UnboundedReceiver<Credential>,
        stop: CancellationToken,
    ) {
        let mut sweep = tokio::time::interval(REVOCATION_SWEEP);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                credential = ended.recv() => match credential {
                    Some(credential) => {
                        self.close_credential(&credential);
                    }
                    None => return,
                },
                _ = sweep.tick() => self.sweep_revoked().await,
            }
        }
    }

    /// Closes the connections whose credential is no longer accepted:
    /// revoked or ended, expired, or of an account disabled.
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
            "SELECT d.id, true FROM devices d JOIN accounts a ON a.id = d.account_id \
             WHERE d.id = ANY($1) AND (d.revoked_at IS NOT NULL OR a.disabled_at IS NOT NULL) \
             UNION ALL \
             SELECT s.id, false FROM sessions s JOIN accounts a ON a.id = s.account_id \
             WHERE s.id = ANY($2) \
               AND (s.revoked_at IS NOT NULL OR s.expires_at <= now() \
                    OR a.disabled_at IS NOT NULL)",
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
