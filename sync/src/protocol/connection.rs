//! One connection's side of the protocol: the `join`/`peer` handshake, and
//! the checks every later message passes before anything acts on it.
//!
//! The server knows, from the credential that opened the connection, which
//! peer id the other side must use; a `join` under another id, a message
//! before `join`, a message from another sender or to another target is a
//! protocol error, answered with an `error` and the end of the connection.

use super::{
    ids::{DocumentId, PeerId, StorageId},
    message::{decode, encode, DecodeError, HeadsAt, Limits, Message, PeerMetadata},
    PROTOCOL_VERSION,
};
use std::collections::BTreeMap;

/// What a well-formed incoming message asks of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// The handshake is done: send `reply` (a `peer` message).
    Joined {
        reply: Vec<u8>,
        metadata: Option<PeerMetadata>,
    },
    /// An automerge sync message about a document; `is_request` when the peer
    /// does not have the document (the answer is `doc-unavailable` if the
    /// server has none it may share).
    Sync {
        document_id: DocumentId,
        data: Vec<u8>,
        is_request: bool,
    },
    /// The peer has no such document (an answer to the server's request).
    DocUnavailable { document_id: DocumentId },
    Ephemeral {
        document_id: DocumentId,
        count: u64,
        session_id: String,
        data: Vec<u8>,
    },
    RemoteSubscriptionChange {
        add: Vec<StorageId>,
        remove: Vec<StorageId>,
    },
    RemoteHeadsChanged {
        document_id: DocumentId,
        new_heads: BTreeMap<StorageId, HeadsAt>,
    },
    /// The peer is leaving: close the connection.
    Leave,
    /// The peer reports an error of ours: log it and close.
    PeerError { message: String },
}

/// Why an incoming message is refused; the text goes to the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the first message must be `join` (got `{0}`)")]
    NotJoined(&'static str),
    #[error("`join` was already received on this connection")]
    AlreadyJoined,
    #[error("this credential connects as peer {expected}, not {got}")]
    WrongPeerId { expected: PeerId, got: String },
    #[error("no supported protocol version in {offered:?}; this server speaks \"1\"")]
    UnsupportedVersion { offered: Vec<String> },
    #[error("a `{0}` message must come from the peer that joined")]
    WrongSender(&'static str),
    #[error("a `{0}` message must be addressed to this server")]
    WrongTarget(&'static str),
    #[error("a `{0}` message is not sent to a server")]
    Unexpected(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingJoin,
    Open,
}

/// One connection's protocol state.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The server's peer id.
    local: PeerId,
    /// The peer id the connection's credential must use.
    remote: PeerId,
    /// The server's own metadata, sent in `peer`.
    metadata: PeerMetadata,
    limits: Limits,
    phase: Phase,
}

impl Connection {
    pub fn new(local: PeerId, remote: PeerId, metadata: PeerMetadata, limits: Limits) -> Self {
        Connection {
            local,
            remote,
            metadata,
            limits,
            phase: Phase::AwaitingJoin,
        }
    }

    /// The peer id the other side joined (or must join) as.
    pub fn remote(&self) -> &PeerId {
        &self.remote
    }

    /// Whether the handshake is done.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Decodes and checks one incoming message.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Incoming, ConnectionError> {
        let message = decode(bytes, &self.limits)?;
        let kind = message.kind();
        if self.phase == Phase::AwaitingJoin {
            let Message::Join {
                sender_id,
                supported_protocol_versions,
                metadata,
            } = message
            else {
                return Err(ConnectionError::NotJoined(kind));
            };
            if sender_id != self.remote {
                return Err(ConnectionError::WrongPeerId {
                    expected: self.remote.clone(),
                    got: sender_id,
                });
            }
            if !supported_protocol_versions
                .iter()
                .any(|version| version == PROTOCOL_VERSION)
            {
                return Err(ConnectionError::UnsupportedVersion {
                    offered: supported_protocol_versions,
                });
            }
            self.phase = Phase::Open;
            let reply = encode(&Message::Peer {
                sender_id: self.local.clone(),
                target_id: self.remote.clone(),
                selected_protocol_version: PROTOCOL_VERSION.to_string(),
                metadata: Some(self.metadata.clone()),
            });
            return Ok(Incoming::Joined { reply, metadata });
        }
        if message
            .sender_id()
            .is_some_and(|sender| sender != self.remote)
        {
            return Err(ConnectionError::WrongSender(kind));
        }
        if message
            .target_id()
            .is_some_and(|target| target != self.local)
        {
            return Err(ConnectionError::WrongTarget(kind));
        }
        Ok(match message {
            Message::Join { .. } => return Err(ConnectionError::AlreadyJoined),
            Message::Peer { .. } => return Err(ConnectionError::Unexpected(kind)),
            Message::Request {
                document_id, data, ..
            } => Incoming::Sync {
                document_id,
                data,
                is_request: true,
            },
            Message::Sync {
                document_id, data, ..
            } => Incoming::Sync {
                document_id,
                data,
                is_request: false,
            },
            Message::DocUnavailable { document_id, .. } => Incoming::DocUnavailable { document_id },
            Message::Ephemeral {
                document_id,
                count,
                session_id,
                data,
                ..
            } => Incoming::Ephemeral {
                document_id,
                count,
                session_id,
                data,
            },
            Message::RemoteSubscriptionChange { add, remove, .. } => {
                Incoming::RemoteSubscriptionChange { add, remove }
            }
            Message::RemoteHeadsChanged {
                document_id,
                new_heads,
                ..
            } => Incoming::RemoteHeadsChanged {
                document_id,
                new_heads,
            },
            Message::Leave { .. } => Incoming::Leave,
            Message::Error { message, .. } => Incoming::PeerError { message },
        })
    }

    /// A `sync` message from the server to this peer.
    pub fn sync(&self, document_id: DocumentId, data: Vec<u8>) -> Vec<u8> {
        encode(&Message::Sync {
            sender_id: self.local.clone(),
            target_id: self.remote.clone(),
            document_id,
            data,
        })
    }

    /// The server has no document by this id that it may share with this peer.
    pub fn doc_unavailable(&self, document_id: DocumentId) -> Vec<u8> {
        encode(&Message::DocUnavailable {
            sender_id: self.local.clone(),
            target_id: self.remote.clone(),
            document_id,
        })
    }

    /// An ephemeral message relayed to this peer, as its sender wrote it.
    pub fn ephemeral(
        &self,
        from: &PeerId,
        document_id: DocumentId,
        count: u64,
        session_id: &str,
        data: Vec<u8>,
    ) -> Vec<u8> {
        encode(&Message::Ephemeral {
            sender_id: from.clone(),
            target_id: self.remote.clone(),
            count,
            session_id: session_id.to_string(),
            document_id,
            data,
        })
    }

    /// The `error` sent before closing the connection.
    pub fn error(&self, reason: &str) -> Vec<u8> {
        encode(&Message::Error {
            message: reason.to_string(),
            sender_id: Some(self.local.clone()),
            target_id: Some(self.remote.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        Connection::new(
            "server".into(),
            "device-1".into(),
            PeerMetadata {
                storage_id: Some("server-storage".into()),
                is_ephemeral: Some(false),
            },
            Limits::default(),
        )
    }

    fn join(sender: &str, versions: &[&str]) -> Vec<u8> {
        encode(&Message::Join {
            sender_id: sender.into(),
            supported_protocol_versions: versions.iter().map(|v| v.to_string()).collect(),
            metadata: None,
        })
    }

    fn sync_from(sender: &str, target: &str) -> Vec<u8> {
        encode(&Message::Sync {
            sender_id: sender.into(),
            target_id: target.into(),
            document_id: DocumentId::from_bytes([9; 16]),
            data: vec![0x42],
        })
    }

    #[test]
    fn a_join_under_the_credentials_peer_id_is_answered_with_peer() {
        let mut connection = connection();
        let Incoming::Joined { reply, .. } = connection.receive(&join("device-1", &["1"])).unwrap()
        else {
            panic!("expected the handshake to complete");
        };
        assert_eq!(
            decode(&reply, &Limits::default()).unwrap(),
            Message::Peer {
                sender_id: "server".into(),
                target_id: "device-1".into(),
                selected_protocol_version: "1".into(),
                metadata: Some(PeerMetadata {
                    storage_id: Some("server-storage".into()),
                    is_ephemeral: Some(false),
                }),
            }
        );
        assert!(connection.is_open());
        assert_eq!(
            connection
                .receive(&sync_from("device-1", "server"))
                .unwrap(),
            Incoming::Sync {
                document_id: DocumentId::from_bytes([9; 16]),
                data: vec![0x42],
                is_request: false
            }
        );
    }

    #[test]
    fn handshake_violations_are_refused_with_their_own_error() {
        let mut connection = connection();
        assert_eq!(
            connection.receive(&sync_from("device-1", "server")),
            Err(ConnectionError::NotJoined("sync"))
        );
        assert_eq!(
            connection.receive(&join("device-2", &["1"])),
            Err(ConnectionError::WrongPeerId {
                expected: "device-1".into(),
                got: "device-2".into()
            })
        );
        assert_eq!(
            connection.receive(&join("device-1", &["2"])),
            Err(ConnectionError::UnsupportedVersion {
                offered: vec!["2".into()]
            })
        );
        assert!(!connection.is_open());
        connection.receive(&join("device-1", &["1"])).unwrap();
        assert_eq!(
            connection.receive(&join("device-1", &["1"])),
            Err(ConnectionError::AlreadyJoined)
        );
        assert_eq!(
            connection.receive(&sync_from("device-2", "server")),
            Err(ConnectionError::WrongSender("sync"))
        );
        assert_eq!(
            connection.receive(&sync_from("device-1", "another-server")),
            Err(ConnectionError::WrongTarget("sync"))
        );
    }

    #[test]
    fn what_the_server_sends_is_addressed_from_it_to_the_joined_peer() {
        let connection = connection();
        let doc = DocumentId::from_bytes([5; 16]);
        let limits = Limits::default();
        let sent = [
            connection.sync(doc, vec![0x42]),
            connection.doc_unavailable(doc),
            connection.ephemeral(&"device-2".to_string(), doc, 4, "s", vec![1]),
            connection.error("refused"),
        ];
        let decoded: Vec<Message> = sent.iter().map(|b| decode(b, &limits).unwrap()).collect();
        assert_eq!(
            decoded[0],
            Message::Sync {
                sender_id: "server".into(),
                target_id: "device-1".into(),
                document_id: doc,
                data: vec![0x42]
            }
        );
        assert_eq!(decoded[1].kind(), "doc-unavailable");
        assert_eq!(decoded[1].target_id(), Some("device-1"));
        // A relayed ephemeral message keeps its original sender.
        assert_eq!(decoded[2].sender_id(), Some("device-2"));
        assert_eq!(decoded[2].target_id(), Some("device-1"));
        assert_eq!(
            decoded[3],
            Message::Error {
                message: "refused".into(),
                sender_id: Some("server".into()),
                target_id: Some("device-1".into())
            }
        );
    }
}
