//! Checking that an incoming automerge-repo message is well formed down to its
//! automerge changes, before anything acts on it.
//!
//! The message itself is decoded by [`crate::protocol::message`] (every type,
//! with limits, an error naming the field); in `sync` and `request` messages
//! `data` is an automerge sync message whose changes are length-delimited
//! chunks, each checked here. samod logs and skips a sync message it cannot
//! decode and applies the readable part of a truncated chunk; the server wants
//! a clear error and a closed connection instead, so it checks here first.

use automerge::{
    sync, Automerge, Bundle, Change, ChangeHash, LoadOptions, OnPartialLoad, VerificationMode,
};

use crate::{
    authorize::MAX_CHANGES_PER_MESSAGE,
    protocol::{decode, DecodeError, IncomingSync, Limits, Message, SyncDataError},
};

/// Why an incoming message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolViolation {
    #[error(transparent)]
    Message(#[from] DecodeError),
    #[error("the automerge sync message of document {document_id} is refused: {reason}")]
    BadSyncMessage {
        document_id: String,
        reason: SyncDataError,
    },
    #[error("change chunk {index} of document {document_id} is malformed: {reason}")]
    BadChange {
        document_id: String,
        index: usize,
        reason: String,
    },
}

/// For `sync`/`request` messages: the document and the heads the sender announces.
pub fn announced_heads(message: &[u8]) -> Option<(String, Vec<ChangeHash>)> {
    match decode(message, &Limits::default()).ok()? {
        Message::Sync {
            document_id, data, ..
        }
        | Message::Request {
            document_id, data, ..
        } => Some((
            document_id.to_string(),
            sync::Message::decode(&data).ok()?.heads,
        )),
        _ => None,
    }
}

/// Decodes an incoming message and, for `sync`/`request`, checks its
/// automerge sync message and every change chunk in it.
pub fn check_incoming(bytes: &[u8]) -> Result<Message, ProtocolViolation> {
    let message = decode(bytes, &Limits::default())?;
    if let Message::Sync {
        document_id, data, ..
    }
    | Message::Request {
        document_id, data, ..
    } = &message
    {
        let document_id = document_id.to_string();
        let incoming = IncomingSync::decode(data, MAX_CHANGES_PER_MESSAGE).map_err(|reason| {
            ProtocolViolation::BadSyncMessage {
                document_id: document_id.clone(),
                reason,
            }
        })?;
        for (index, chunk) in incoming.changes().iter().enumerate() {
            check_chunk(chunk).map_err(|reason| ProtocolViolation::BadChange {
                document_id: document_id.clone(),
                index,
                reason,
            })?;
        }
    }
    Ok(message)
}

/// A chunk of a sync message is a change (V1 messages), a bundle of changes, a
/// run of changes laid end to end (V2: automerge 0.12 concatenates the changes
/// it sends when they are under a third of the document) or a whole document.
/// Each is parsed strictly on its own: a truncated or corrupt chunk fails, while
/// a change whose parents live elsewhere passes.
fn check_chunk(chunk: &[u8]) -> Result<(), String> {
    let as_change = match Change::from_bytes(chunk.to_vec()) {
        Ok(_) => return Ok(()),
        Err(error) => error.to_string(),
    };
    if Bundle::try_from(chunk).is_ok() {
        return Ok(());
    }
    if split_chunks(chunk).is_some_and(|changes| {
        changes
            .iter()
            .all(|change| Change::from_bytes(change.to_vec()).is_ok())
    }) {
        return Ok(());
    }
    Automerge::load_with_options(
        chunk,
        LoadOptions::new()
            .on_partial_load(OnPartialLoad::Error)
            .verification_mode(VerificationMode::Check),
    )
    .map(|_| ())
    .map_err(|_| as_change)
}

/// The individual changes a chunk carries (see [`check_chunk`] for the forms a
/// chunk takes), so that the ones that cannot apply yet can be kept apart.
pub fn chunk_changes(chunk: &[u8]) -> Result<Vec<Change>, String> {
    if let Ok(change) = Change::from_bytes(chunk.to_vec()) {
        return Ok(vec![change]);
    }
    if let Ok(bundle) = Bundle::try_from(chunk) {
        return bundle.to_changes().map_err(|e| e.to_string());
    }
    if let Some(parts) = split_chunks(chunk) {
        if let Ok(changes) = parts
            .iter()
            .map(|part| Change::from_bytes(part.to_vec()))
            .collect::<Result<Vec<_>, _>>()
        {
            return Ok(changes);
        }
    }
    Automerge::load(chunk)
        .map(|doc| doc.get_changes(&[]))
        .map_err(|e| e.to_string())
}

/// Splits bytes into automerge chunks by their headers (magic and checksum,
/// 8 bytes; type, 1 byte; body length, unsigned LEB128), or None if they do not
/// split exactly. Each part still has to parse (and match its checksum).
fn split_chunks(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    const FIXED_HEADER: usize = 4 + 4 + 1;
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        let (mut length, mut shift, mut at) = (0u64, 0u32, FIXED_HEADER);
        loop {
            let byte = *bytes.get(at)?;
            at += 1;
            length |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let end = at.checked_add(usize::try_from(length).ok()?)?;
        chunks.push(bytes.get(..end)?);
        bytes = &bytes[end..];
    }
    Some(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{encode, DocumentId};
    use automerge::{sync::SyncDoc, transaction::Transactable, ROOT};

    const DOC: DocumentId = DocumentId::from_bytes([3; 16]);

    fn sync_message(data: &[u8]) -> Vec<u8> {
        encode(&Message::Sync {
            sender_id: "phone".into(),
            target_id: "server".into(),
            document_id: DOC,
            data: data.to_vec(),
        })
    }

    fn doc_with_two_changes() -> Automerge {
        let mut doc = Automerge::new();
        for value in [1, 2] {
            doc.transact::<_, _, automerge::AutomergeError>(|tx| {
                tx.put(ROOT, "count", value).map(|_| ())
            })
            .unwrap();
        }
        doc
    }

    fn full_sync_message(doc: &Automerge) -> sync::Message {
        // A peer that has nothing: after its first reply, we send every change.
        let mut ours = sync::State::new();
        let mut theirs = sync::State::new();
        let empty = Automerge::new();
        let first = doc.generate_sync_message(&mut ours).unwrap();
        let mut empty_mut = empty.clone();
        empty_mut.receive_sync_message(&mut theirs, first).unwrap();
        let reply = empty_mut.generate_sync_message(&mut theirs).unwrap();
        let mut doc = doc.clone();
        doc.receive_sync_message(&mut ours, reply).unwrap();
        doc.generate_sync_message(&mut ours).unwrap()
    }

    #[test]
    fn a_well_formed_sync_message_passes_and_announces_its_heads() {
        let doc = doc_with_two_changes();
        let message = full_sync_message(&doc);
        assert!(!message.changes.is_empty());
        let wire = sync_message(&message.encode());
        assert!(matches!(check_incoming(&wire), Ok(Message::Sync { .. })));
        assert_eq!(
            announced_heads(&wire),
            Some((DOC.to_string(), doc.get_heads()))
        );
    }

    #[test]
    fn a_change_whose_parent_is_elsewhere_is_well_formed() {
        let doc = doc_with_two_changes();
        let last = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert_eq!(check_chunk(&last), Ok(()));
        assert!(check_chunk(&last[..last.len() - 3]).is_err());
    }

    #[test]
    fn changes_laid_end_to_end_are_well_formed_and_a_cut_run_is_not() {
        // What automerge 0.12 sends (V2) for a few changes the peer lacks.
        let mut doc = doc_with_two_changes();
        doc.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "count", 3).map(|_| ()))
            .unwrap();
        let run: Vec<u8> = doc
            .get_changes(&[])
            .iter()
            .skip(1)
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        assert_eq!(check_chunk(&run), Ok(()));
        assert!(check_chunk(&run[..run.len() - 3]).is_err());
    }

    #[test]
    fn garbage_bytes_are_refused() {
        assert!(matches!(
            check_incoming(b"\x00\x01garbage"),
            Err(ProtocolViolation::Message(DecodeError::NotAMap(_)))
        ));
    }

    #[test]
    fn a_truncated_change_is_refused_naming_the_document() {
        let doc = doc_with_two_changes();
        let mut message = full_sync_message(&doc);
        let chunks: Vec<Vec<u8>> = message
            .changes
            .iter()
            .map(|chunk| chunk[..chunk.len() / 2].to_vec())
            .collect();
        message.changes = chunks.into();
        let wire = sync_message(&message.encode());
        match check_incoming(&wire) {
            Err(ProtocolViolation::BadChange { document_id, .. }) => {
                assert_eq!(document_id, DOC.to_string())
            }
            other => panic!("expected a bad change, got {other:?}"),
        }
    }

    #[test]
    fn a_truncated_sync_message_is_refused() {
        let doc = doc_with_two_changes();
        let encoded = full_sync_message(&doc).encode();
        let wire = sync_message(&encoded[..encoded.len() / 3]);
        assert!(matches!(
            check_incoming(&wire),
            Err(ProtocolViolation::BadSyncMessage { .. })
        ));
    }
}
