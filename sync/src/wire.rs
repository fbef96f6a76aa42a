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
    if let Some(parts) = split_chunks(chunk) {
        // One change, or changes laid end to end, each matching its checksum.
        if let Ok(changes) = parts
            .iter()
            .map(|part| Change::from_bytes(part.to_vec()))
            .collect::<Result<Vec<_>, _>>()
        {
            return Ok(changes);
        }
        // automerge's bundle parser checks neither the chunk's type nor that
        // it read every byte: a run of changes can pass for an empty bundle.
        if let [bundle] = parts.as_slice() {
            if bundle.get(CHUNK_TYPE_AT) == Some(&BUNDLE_CHUNK) {
                let bundle = Bundle::try_from(*bundle).map_err(|e| e.to_string())?;
                return bundle.to_changes().map_err(|e| e.to_string());
            }
        }
    }
    Automerge::load(chunk)
        .map(|doc| doc.get_changes(&[]))
        .map_err(|e| e.to_string())
}

/// Where a chunk's type byte is (after the magic bytes and the checksum),
/// and the type of a bundle of changes.
const CHUNK_TYPE_AT: usize = 8;
const BUNDLE_CHUNK: u8 = 3;

/// Splits bytes into automerge chunks by their headers (magic and checksum,
/// 8 bytes; type, 1 byte; body length, unsigned LEB128), or None if they do not
/// split exactly. Each part still has to parse (and match its checksum).
fn split_chunks(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    const FIXED_HEADER: usize = CHUNK_TYPE_AT + 1;
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

    #[test]
    fn a_run_of_changes_that_also_parses_as_a_bundle_is_read_as_its_changes() {
        // Values of these lengths make the first change's bytes parse as an
        // empty bundle (automerge 0.12): the run was once read as no change.
        let mut doc = Automerge::new();
        for n in 0..51u64 {
            let len = ((299 * 7919 + n * 104729) % 700) as usize;
            doc.transact::<_, _, automerge::AutomergeError>(|tx| {
                tx.put(ROOT, format!("k{n}"), "x".repeat(len)).map(|_| ())
            })
            .unwrap();
        }
        let run = doc.save_after(&[]);
        let read: Vec<_> = chunk_changes(&run)
            .unwrap()
            .iter()
            .map(Change::hash)
            .collect();
        let made: Vec<_> = doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
        assert_eq!(read, made);
    }

    #[test]
    fn a_bundle_is_read_and_one_with_bytes_after_it_is_not() {
        let doc = doc_with_changes(3);
        let hashes = doc.get_heads();
        let bundle = doc.bundle(hashes.iter().copied()).unwrap().bytes().to_vec();
        assert_eq!(chunk_changes(&bundle).unwrap().len(), 1);
        let mut longer = bundle.clone();
        longer.extend_from_slice(b"trailing");
        assert!(chunk_changes(&longer).is_err());
    }
}
