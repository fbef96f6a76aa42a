//! The one place that touches samod's API (pinned at `=0.16.0`: its releases
//! change the API often), so an upgrade is a change to this file.

use std::sync::Arc;

use automerge::{ChangeHash, ReadDoc};
use futures::{SinkExt, StreamExt};
use samod::{DocumentId, PeerId, Repo, SearchState, Transport};
use sync::protocol::Message as ProtocolMessage;

use crate::{
    auth::{Credential, Principal},
    committed::CommittedDocs,
    durability,
    storage::PgStorage,
    sync_auth::{self, SyncAccess},
};

/// The server's automerge-repo, accepting phone connections.
#[derive(Clone)]
pub struct SyncRepo {
    repo: Repo,
    acceptor: Arc<samod::AcceptorHandle>,
    access: SyncAccess,
    committed: CommittedDocs,
}

/// samod's in-memory documents, as the incoming-change judge asks about them.
pub struct SamodDocs(pub Repo);

impl sync_auth::SamodDocuments for SamodDocs {
    fn applied(&self, doc_id: &str, hashes: &[ChangeHash]) -> Vec<ChangeHash> {
        let Ok(id) = doc_id.parse::<DocumentId>() else {
            return Vec::new();
        };
        // The search's first state tells whether samod holds the document; a
        // document it does not hold has nothing applied. (A search of an
        // unloaded document starts loading it, as the incoming message would.)
        match self.0.search(id) {
            Ok((SearchState::Found(handle), _)) => handle.with_document(|doc| {
                hashes
                    .iter()
                    .copied()
                    .filter(|hash| doc.get_change_by_hash(hash).is_some())
                    .collect()
            }),
            _ => Vec::new(),
        }
    }
}

/// Sends an `error` message and a close frame: the peer learns why.
async fn say_goodbye(
    sink: &tokio::sync::Mutex<
        futures::stream::SplitSink<axum::extract::ws::WebSocket, axum::extract::ws::Message>,
    >,
    reason: &str,
) {
    use axum::extract::ws::Message;
    let mut sink = sink.lock().await;
    let error = sync::protocol::encode(&ProtocolMessage::Error {
        message: reason.to_string(),
        sender_id: None,
        target_id: None,
    });
    let _ = sink.send(Message::Binary(error.into())).await;
    let _ = sink.send(Message::Close(None)).await;
}

/// Errors a connection's byte stream can end with.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("websocket: {0}")]
    WebSocket(#[from] axum::Error),
    #[error("text frames are not part of the automerge-repo protocol")]
    TextFrame,
    #[error("malformed message: {0}")]
    Protocol(sync::wire::ProtocolViolation),
    #[error("{0}")]
    Refused(sync_auth::IncomingError),
    #[error("credential revoked")]
    Revoked,
    #[error(transparent)]
    Gate(#[from] durability::GateError),
}

impl SyncRepo {
    pub async fn start(
        storage: PgStorage,
        access: SyncAccess,
        committed: CommittedDocs,
    ) -> anyhow::Result<Self> {
        // Each process its own peer id: several servers may share one database.
        let peer_id = PeerId::from(format!("fieldnotes-server-{}", uuid::Uuid::new_v4()).as_str());
        let repo = Repo::build_tokio()
            .with_storage(storage)
            .with_peer_id(peer_id)
            // Per document and peer; never pushes documents a peer did not ask for.
            .with_share_policy(access.clone())
            .load()
            .await;
        access.attach_samod(Arc::new(SamodDocs(repo.clone())));
        let acceptor = repo
            .make_acceptor(url::Url::parse("fieldnotes://sync")?)
            .map_err(|_| anyhow::anyhow!("the sync repo stopped while starting"))?;
        Ok(SyncRepo {
            repo,
            acceptor: Arc::new(acceptor),
            access,
            committed,
        })
    }

    /// Hands an authenticated WebSocket to samod. Incoming messages are
    /// checked first — well formed ([`sync::wire::check_incoming`]) and allowed
    /// for this principal ([`SyncAccess::authorize_incoming`]); a refused one
    /// gets an `error` message naming the reason and the connection closes
    /// before samod sees it. Outgoing messages pass the acknowledgement gate
    /// ([`durability`]). Revoking the credential closes the connection.
    pub fn accept(
        &self,
        socket: axum::extract::ws::WebSocket,
        principal: Principal,
        registration: sync_auth::ConnectionRegistration,
    ) -> anyhow::Result<()> {
        let connection_id = registration.connection_id();
        use axum::extract::ws::Message;
        let (sink, stream) = socket.split();
        // Shared: samod writes through it, and so do the checks that must tell
        // the peer why it is being disconnected.
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let registration = Arc::new(registration);
        let peer_id = sync_auth::peer_id_for(&principal.credential);
        let goodbye = match principal.credential {
            Credential::Device { .. } => "this device's credential was revoked",
            Credential::Session { .. } => "this session ended (logged out or expired)",
        };
        let principal = Arc::new(principal);

        let access = self.access.clone();
        let refusal_sink = sink.clone();
        let incoming = stream
            .then(move |frame| {
                let (sink, access, principal) =
                    (refusal_sink.clone(), access.clone(), principal.clone());
                async move {
                    let bytes = match frame {
                        Ok(Message::Binary(bytes)) => bytes,
                        Ok(Message::Text(_)) => return Some(Err(TransportError::TextFrame)),
                        Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_)) => return None,
                        Err(error) => return Some(Err(TransportError::WebSocket(error))),
                    };
                    let verdict = match sync::wire::check_incoming(&bytes) {
                        Err(violation) => Err(TransportError::Protocol(violation)),
                        Ok(ProtocolMessage::Ephemeral { document_id, .. }) => {
                            let doc_id = document_id.to_string();
                            if !access.may_send_ephemeral(&principal, &doc_id).await {
                                tracing::debug!(%connection_id, %doc_id, "dropping an ephemeral message from a read-only peer");
                                return None;
                            }
                            Ok(())
                        }
                        Ok(message) => access
                            .authorize_incoming(&principal, connection_id, &message)
                            .await
                            .map_err(TransportError::Refused),
                    };
                    match verdict {
                        Ok(()) => Some(Ok(bytes.to_vec())),
                        Err(error) => {
                            tracing::warn!(%connection_id, %error, "closing a sync connection");
                            say_goodbye(&sink, &error.to_string()).await;
                            Some(Err(error))
                        }
                    }
                }
            })
            .filter_map(futures::future::ready);
        let revoked_sink = sink.clone();
        let revoked = futures::stream::once(async move {
            registration.closed.cancelled().await;
            say_goodbye(&revoked_sink, goodbye).await;
            // Keeps the registration alive exactly as long as the connection.
            drop(registration);
            Err(TransportError::Revoked)
        });
        let incoming = futures::stream::select(incoming, revoked).boxed();

        let committed = self.committed.clone();
        let outgoing = futures::sink::unfold(
            (sink, committed),
            |(sink, committed), bytes: Vec<u8>| async move {
                durability::wait_until_durable(&committed, &bytes).await?;
                sink.lock()
                    .await
                    .send(Message::Binary(bytes.into()))
                    .await?;
                Ok::<_, TransportError>((sink, committed))
            },
        );
        let transport = Transport::new(incoming, Box::pin(outgoing)).with_expected_peer_id(peer_id);
        self.acceptor
            .accept(transport)
            .map_err(|_| anyhow::anyhow!("the sync repo is stopping"))?;
        tracing::info!(%connection_id, "sync connection accepted");
        Ok(())
    }

    /// Who is connected and what they may do.
    pub fn access(&self) -> &SyncAccess {
        &self.access
    }

    /// Stops the repo: samod finishes pending storage writes first.
    pub async fn stop(&self) {
        self.acceptor.close();
        self.repo.stop().await;
    }
}
