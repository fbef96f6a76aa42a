//! The change chunks of an automerge sync message.
//!
//! A chunk is a change (V1 messages), a bundle of changes, a run of changes
//! laid end to end (V2: automerge 0.12 concatenates the changes it sends when
//! they are under a third of the document) or a whole document. Each is
//! parsed strictly: a truncated or corrupt chunk fails, while a change whose
//! parents live elsewhere passes.

use automerge::{Automerge, Bundle, Change};

/// The individual changes a chunk carries, so that each can be judged, and
/// the ones that cannot apply yet kept apart. A truncated or corrupt chunk
/// is an error (automerge would load the readable part of it).
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
    use automerge::{transaction::Transactable, ROOT};

    fn doc_with_changes(count: i64) -> Automerge {
        let mut doc = Automerge::new();
        for value in 1..=count {
            doc.transact::<_, _, automerge::AutomergeError>(|tx| {
                tx.put(ROOT, "count", value).map(|_| ())
            })
            .unwrap();
        }
        doc
    }

    #[test]
    fn a_change_whose_parent_is_elsewhere_is_read_and_a_cut_one_is_not() {
        let doc = doc_with_changes(2);
        let last = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        let changes = chunk_changes(&last).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].hash(), doc.get_heads()[0]);
        assert!(chunk_changes(&last[..last.len() - 3]).is_err());
    }

    #[test]
    fn changes_laid_end_to_end_are_read_and_a_cut_run_is_not() {
        // What automerge 0.12 sends (V2) for a few changes the peer lacks.
        let doc = doc_with_changes(3);
        let run: Vec<u8> = doc
            .get_changes(&[])
            .iter()
            .skip(1)
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        assert_eq!(chunk_changes(&run).unwrap().len(), 2);
        assert!(chunk_changes(&run[..run.len() - 3]).is_err());
    }

    #[test]
    fn a_whole_document_is_read_and_a_truncated_one_is_not() {
        let saved = doc_with_changes(2).save();
        assert_eq!(chunk_changes(&saved).unwrap().len(), 2);
        assert!(chunk_changes(&saved[..saved.len() / 2]).is_err());
    }
}
