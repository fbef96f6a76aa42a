//! One (connection, document) pair's automerge sync, on the server's side.
//!
//! automerge's `receive_sync_message` applies a message's changes at once (and
//! queues those whose dependencies are missing, inside the document); the
//! server must judge them first (with the judge, `crate::judge`, which this engine never calls) and store them before the
//! peer is told they are in. So a message is decoded here, its changes are
//! handed to the caller ([`IncomingSync::changes`]), the caller applies to its
//! committed document only what it accepted and stored, and the peer's state
//! (what it has, what it needs) is updated from the message without its
//! changes ([`DocumentSync::received`]). Replies come from the committed
//! document ([`DocumentSync::reply`]): the heads they announce are durable by
//! construction. A peer does not send a change twice on one connection, so the
//! caller keeps the changes whose dependencies are missing and applies them
//! once those arrive.

use automerge::{
    sync::{self, SyncDoc},
    Automerge, AutomergeError, ChangeHash,
};

use crate::documents::wire::{InflationBudget, InflationError};

/// Why the `data` of a `sync`/`request` message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncDataError {
    #[error("the automerge sync message does not decode: {0}")]
    Malformed(String),
    #[error("the sync message carries {got} change chunks, over the limit of {limit}")]
    TooManyChunks { limit: usize, got: usize },
    #[error(transparent)]
    Inflation(#[from] InflationError),
}

/// What one sync message's changes may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncDataLimits {
    /// Change chunks in the message.
    pub max_chunks: usize,
    /// Bytes the chunks take once inflated (see [`crate::documents::wire::InflationBudget`]).
    pub max_inflated_bytes: usize,
}

/// A decoded automerge sync message, changes not applied yet.
#[derive(Debug, Clone)]
pub struct IncomingSync {
    message: sync::Message,
    max_inflated_bytes: usize,
}

impl IncomingSync {
    /// Decodes a sync message within `limits`. Nothing is inflated here
    /// (automerge's decoding of the message only splits its chunks): the
    /// chunks are counted as they inflate when [`IncomingSync::changes`]
    /// hands them out, so a peer the caller refuses costs no inflation.
    pub fn decode(data: &[u8], limits: SyncDataLimits) -> Result<IncomingSync, SyncDataError> {
        let message = sync::Message::decode(data)
            .map_err(|error| SyncDataError::Malformed(error.to_string()))?;
        let got = message.changes.len();
        if got > limits.max_chunks {
            return Err(SyncDataError::TooManyChunks {
                limit: limits.max_chunks,
                got,
            });
        }
        Ok(IncomingSync {
            message,
            max_inflated_bytes: limits.max_inflated_bytes,
        })
    }

    /// Whether the message carries changes at all.
    pub fn has_changes(&self) -> bool {
        !self.message.changes.is_empty()
    }

    /// The change chunks, to be judged before anything is applied, once
    /// what they inflate to is within the limit (counted without keeping
    /// it, before automerge parses them).
    pub fn changes(&self) -> Result<Vec<Vec<u8>>, SyncDataError> {
        let mut budget = InflationBudget::new(self.max_inflated_bytes);
        for chunk in self.message.changes.iter() {
            budget.charge(chunk)?;
        }
        Ok(self.message.changes.iter().map(<[u8]>::to_vec).collect())
    }

    /// The heads the peer announces.
    pub fn heads(&self) -> &[ChangeHash] {
        &self.message.heads
    }
}

/// The sync state of one peer on one document.
#[derive(Debug, Default)]
pub struct DocumentSync {
    state: sync::State,
}

impl DocumentSync {
    pub fn new() -> DocumentSync {
        DocumentSync::default()
    }

    /// The sync state of a peer that may not write the document: our
    /// messages carry automerge's read-only flag, and the peer's automerge
    /// then offers no changes (nor do we ask for any). A phone can hold
    /// changes of such a document that the server lacks — a coordinator's
    /// decision in its review document, taken after the backup the server
    /// was restored from — and without the flag it would offer them at every
    /// connection, to be refused by the judge and cut off each time.
    pub fn read_only() -> DocumentSync {
        DocumentSync {
            state: sync::State::new_read_only(),
        }
    }

    /// Records what the peer said it has and needs. The message's changes
    /// are not applied: the caller has applied those it accepted.
    pub fn received(
        &mut self,
        doc: &mut Automerge,
        mut message: IncomingSync,
    ) -> Result<(), AutomergeError> {
        let last_sent = self.state.last_sent_heads.clone();
        // A peer with nothing is resynced from scratch, as automerge does.
        let peer_has_nothing = message.message.heads.is_empty();
        message.message.changes = Vec::<Vec<u8>>::new().into();
        doc.receive_sync_message(&mut self.state, message.message)?;
        // A message without changes whose heads equal ours makes automerge
        // take our heads for announced, and say nothing more. Here our heads
        // may equal the peer's only because the caller applied changes
        // (this message's, or an earlier one's in the same batch) that the
        // peer has not yet heard were taken: the heads are announced when
        // they were, not when the peer has them.
        if !peer_has_nothing {
            self.state.last_sent_heads = last_sent;
        }
        Ok(())
    }

    /// The next message for this peer, from the committed document, if there
    /// is anything to say (encoded: the `data` of a `sync` message).
    pub fn reply(&mut self, doc: &Automerge) -> Option<Vec<u8>> {
        doc.generate_sync_message(&mut self.state)
            .map(sync::Message::encode)
    }

    /// The heads the peer last announced.
    pub fn peer_heads(&self) -> Option<&[ChangeHash]> {
        self.state.their_heads.as_deref()
    }

    /// Whether the peer is known to have exactly `doc`'s heads.
    pub fn in_sync_with(&self, doc: &Automerge) -> bool {
        self.peer_heads() == Some(doc.get_heads().as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{transaction::Transactable, ReadDoc, ROOT};

    fn with_count(doc: &mut Automerge, count: i64) {
        doc.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "count", count).map(|_| ()))
            .unwrap();
    }

    /// The server takes `message` in as it would once judged: its changes
    /// applied, then the peer's state updated.
    fn limits(max_chunks: usize) -> SyncDataLimits {
        SyncDataLimits {
            max_chunks,
            max_inflated_bytes: 1 << 30,
        }
    }

    fn take_in(server: &mut Automerge, peer: &mut DocumentSync, message: sync::Message) {
        let incoming = IncomingSync::decode(&message.encode(), limits(100)).unwrap();
        for chunk in incoming.changes().unwrap() {
            server.load_incremental(&chunk).unwrap();
        }
        peer.received(server, incoming).unwrap();
    }

    /// A phone (plain automerge sync) and the server side (judge, then apply)
    /// exchange messages until neither has anything to say.
    fn converge(
        phone: &mut Automerge,
        server: &mut Automerge,
        judge: impl Fn(&[Vec<u8>]) -> bool,
    ) -> bool {
        let mut phone_state = sync::State::new();
        let mut peer = DocumentSync::new();
        for _ in 0..10 {
            let mut quiet = true;
            if let Some(message) = phone.generate_sync_message(&mut phone_state) {
                quiet = false;
                let incoming = IncomingSync::decode(&message.encode(), limits(100)).unwrap();
                assert_eq!(incoming.heads(), phone.get_heads().as_slice());
                let changes = incoming.changes().unwrap();
                if !judge(&changes) {
                    return false;
                }
                for chunk in &changes {
                    server.load_incremental(chunk).unwrap();
                }
                peer.received(server, incoming).unwrap();
            }
            if let Some(reply) = peer.reply(server) {
                quiet = false;
                phone
                    .receive_sync_message(&mut phone_state, sync::Message::decode(&reply).unwrap())
                    .unwrap();
            }
            if quiet {
                assert!(
                    peer.in_sync_with(server),
                    "the server knows the phone has its heads"
                );
                return true;
            }
        }
        panic!("no convergence in 10 rounds");
    }

    #[test]
    fn a_phone_and_the_server_converge_through_judged_messages() {
        let mut phone = Automerge::new();
        with_count(&mut phone, 3);
        let mut server = Automerge::new();
        assert!(converge(&mut phone, &mut server, |_| true));
        assert_eq!(server.get_heads(), phone.get_heads());
        let value = server.get(ROOT, "count").unwrap().unwrap().0;
        assert_eq!(value.as_i64(), Some(3));
    }

    /// A phone ahead of the server on a document it may not write (a review
    /// document after a restore) offers none of its changes, and still
    /// receives the server's.
    #[test]
    fn a_read_only_peer_offers_no_changes_and_receives_the_servers() {
        let mut server = Automerge::new();
        with_count(&mut server, 1);
        let mut phone = server.fork();
        with_count(&mut phone, 2);
        with_count(&mut server, 3);
        let mut phone_state = sync::State::new();
        let mut peer = DocumentSync::read_only();
        for _ in 0..10 {
            let mut quiet = true;
            if let Some(message) = phone.generate_sync_message(&mut phone_state) {
                quiet = false;
                assert!(message.changes.is_empty(), "the phone offers nothing");
                take_in(&mut server, &mut peer, message);
            }
            if let Some(reply) = peer.reply(&server) {
                quiet = false;
                phone
                    .receive_sync_message(&mut phone_state, sync::Message::decode(&reply).unwrap())
                    .unwrap();
            }
            if quiet {
                break;
            }
        }
        let server_heads = server.get_heads();
        assert!(
            server_heads
                .iter()
                .all(|head| phone.get_change_by_hash(head).is_some()),
            "the phone has the server's changes"
        );
        assert_eq!(
            server.get_changes(&[]).len(),
            2,
            "and the server none of the phone's"
        );
    }

    #[test]
    fn changes_taken_in_are_acknowledged_with_the_new_heads() {
        let mut phone = Automerge::new();
        with_count(&mut phone, 3);
        let mut phone_state = sync::State::new();
        let mut server = Automerge::new();
        let mut peer = DocumentSync::new();
        // The phone's opening message, and the server's answer (it has nothing).
        let opening = phone.generate_sync_message(&mut phone_state).unwrap();
        take_in(&mut server, &mut peer, opening);
        if let Some(reply) = peer.reply(&server) {
            phone
                .receive_sync_message(&mut phone_state, sync::Message::decode(&reply).unwrap())
                .unwrap();
        }
        // Until the server has taken the phone's changes in.
        while server.get_heads() != phone.get_heads() {
            let message = phone.generate_sync_message(&mut phone_state).unwrap();
            take_in(&mut server, &mut peer, message);
        }
        let ack = peer
            .reply(&server)
            .expect("the server acknowledges what it took in");
        assert_eq!(
            sync::Message::decode(&ack).unwrap().heads,
            phone.get_heads()
        );
    }

    #[test]
    fn changes_taken_in_a_batch_are_acknowledged_even_after_the_peer_repeats_its_heads() {
        let mut phone = Automerge::new();
        let mut phone_state = sync::State::new();
        let mut server = Automerge::new();
        let mut peer = DocumentSync::new();
        // Opening exchange.
        let opening = phone.generate_sync_message(&mut phone_state).unwrap();
        take_in(&mut server, &mut peer, opening);
        let answer = peer.reply(&server).unwrap();
        phone
            .receive_sync_message(&mut phone_state, sync::Message::decode(&answer).unwrap())
            .unwrap();
        // The phone sends a change, then (before any answer) its heads again.
        with_count(&mut phone, 1);
        let with_change = phone.generate_sync_message(&mut phone_state).unwrap();
        let repeat = sync::Message {
            changes: Vec::<Vec<u8>>::new().into(),
            ..with_change.clone()
        };
        // Both are taken in one batch before anything is replied.
        for message in [with_change, repeat] {
            take_in(&mut server, &mut peer, message);
        }
        let ack = peer
            .reply(&server)
            .expect("the batch's changes are acknowledged");
        assert_eq!(
            sync::Message::decode(&ack).unwrap().heads,
            phone.get_heads()
        );
    }

    #[test]
    fn a_refused_message_leaves_the_committed_document_untouched() {
        let mut phone = Automerge::new();
        with_count(&mut phone, 3);
        let mut server = Automerge::new();
        let before = server.get_heads();
        assert!(!converge(&mut phone, &mut server, |changes| changes.is_empty()));
        assert_eq!(server.get_heads(), before);
    }

    #[test]
    fn oversize_and_malformed_sync_data_are_refused_naming_why() {
        let mut phone = Automerge::new();
        with_count(&mut phone, 1);
        with_count(&mut phone, 2);
        let message = sync::Message {
            heads: phone.get_heads(),
            need: Vec::new(),
            have: Vec::new(),
            changes: phone
                .get_changes(&[])
                .iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect::<Vec<_>>()
                .into(),
            flags: None,
            version: sync::MessageVersion::V1,
        };
        assert_eq!(
            IncomingSync::decode(&message.encode(), limits(1)).unwrap_err(),
            SyncDataError::TooManyChunks { limit: 1, got: 2 }
        );
        assert!(matches!(
            IncomingSync::decode(&[0x42, 0x01], limits(10)),
            Err(SyncDataError::Malformed(_))
        ));
    }

    #[test]
    fn changes_inflating_past_the_limit_are_refused_naming_it() {
        let mut phone = Automerge::new();
        phone
            .transact::<_, _, AutomergeError>(|tx| {
                for n in 0..100 {
                    tx.put(ROOT, format!("k{n}"), "repeated text ".repeat(50))?;
                }
                Ok(())
            })
            .unwrap();
        // The whole document, its columns deflated, as a phone may send it.
        let saved = phone.save();
        let message = sync::Message {
            heads: phone.get_heads(),
            need: Vec::new(),
            have: Vec::new(),
            changes: vec![saved.clone()].into(),
            flags: None,
            version: sync::MessageVersion::V2,
        }
        .encode();
        let tight = SyncDataLimits {
            max_chunks: 10,
            max_inflated_bytes: 2 * saved.len(),
        };
        let refused = IncomingSync::decode(&message, tight)
            .unwrap()
            .changes()
            .unwrap_err();
        assert_eq!(
            refused,
            SyncDataError::Inflation(InflationError::OverLimit {
                limit: 2 * saved.len()
            })
        );
        assert!(refused.to_string().contains(&(2 * saved.len()).to_string()));
        assert!(IncomingSync::decode(&message, limits(10))
            .unwrap()
            .changes()
            .is_ok());
    }
}
