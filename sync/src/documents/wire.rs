//! The change chunks of an automerge sync message.
//!
//! A chunk is a change (V1 messages), a bundle of changes, a run of changes
//! laid end to end (V2: automerge 0.12 concatenates the changes it sends when
//! they are under a third of the document) or a whole document. Each is
//! parsed strictly: a truncated or corrupt chunk fails, while a change whose
//! parents live elsewhere passes.
//!
//! Chunks may be compressed (a whole change deflated, or a document's or a
//! bundle's columns), and automerge inflates them whole before any limit of
//! ours applies: a megabyte of deflated zeros asks for a gigabyte. So a
//! message's chunks are first walked here ([`InflationBudget`]), counting what
//! they inflate to without keeping it, against a limit, before automerge
//! sees them.

use std::io::Read;

use automerge::{Automerge, Bundle, Change};

/// The individual changes a chunk carries, so that each can be judged, and
/// the ones that cannot apply yet kept apart. A truncated or corrupt chunk
/// is an error (automerge would load the readable part of it), and so is one
/// automerge panics on (fuzzing found chunks that make automerge 0.12 unwrap
/// `None` or a failed integer conversion): a peer's bytes never panic the
/// caller.
pub fn chunk_changes(chunk: &[u8]) -> Result<Vec<Change>, String> {
    std::panic::catch_unwind(|| read_chunk_changes(chunk))
        .unwrap_or_else(|_| Err("automerge cannot read this chunk".to_string()))
}

fn read_chunk_changes(chunk: &[u8]) -> Result<Vec<Change>, String> {
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

/// Why a message's chunks are refused before automerge parses them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflationError {
    #[error("the change chunks of one sync message inflate to more than {limit} bytes; the limit is {limit} bytes per message (send fewer changes at once)")]
    OverLimit { limit: usize },
    #[error("a compressed chunk does not inflate: {0}")]
    Corrupt(String),
}

/// The default of what one message's changes may inflate to: four times the
/// largest message (16 MiB), well above a phone's first sync of a full
/// notebook (a few MB inflated), far below what a bomb asks for (a gigabyte
/// per megabyte sent).
pub const DEFAULT_MAX_INFLATED_BYTES: usize = 64 * 1024 * 1024;

/// What the chunks of one message may inflate to, counted chunk by chunk:
/// stored bytes count as they are, compressed ones as what they inflate to.
/// Counting keeps nothing: inflated bytes go through one small buffer.
#[derive(Debug)]
pub struct InflationBudget {
    limit: usize,
    spent: usize,
}

/// The buffer counted inflation goes through.
const INFLATE_BUFFER: usize = 32 * 1024;

impl InflationBudget {
    pub fn new(limit: usize) -> InflationBudget {
        InflationBudget { limit, spent: 0 }
    }

    /// Bytes the chunks charged so far would take once inflated.
    pub fn spent(&self) -> usize {
        self.spent
    }

    /// Charges `bytes` (one chunk, or chunks laid end to end, as in a sync
    /// message's change list). Bytes that do not split into chunks are
    /// refused: automerge would refuse them too, after inflating the
    /// chunks it could read.
    pub fn charge(&mut self, bytes: &[u8]) -> Result<(), InflationError> {
        let parts = split_chunks(bytes).ok_or_else(|| {
            InflationError::Corrupt("the bytes do not split into automerge chunks".into())
        })?;
        for part in parts {
            self.charge_chunk(part)?;
        }
        Ok(())
    }

    fn add(&mut self, bytes: usize) -> Result<(), InflationError> {
        self.spent = self.spent.saturating_add(bytes);
        if self.spent > self.limit {
            return Err(InflationError::OverLimit { limit: self.limit });
        }
        Ok(())
    }

    fn charge_chunk(&mut self, chunk: &[u8]) -> Result<(), InflationError> {
        let (body_at, _) = chunk_body(chunk).ok_or_else(|| cut("chunk header"))?;
        let body = &chunk[body_at..];
        self.add(body_at)?;
        match chunk[CHUNK_TYPE_AT] {
            COMPRESSED_CHANGE_CHUNK => self.inflate(body),
            DOCUMENT_CHUNK => self.charge_columns(body, ColumnLayout::Document),
            BUNDLE_CHUNK => self.charge_columns(body, ColumnLayout::Bundle),
            // A change (its columns are never compressed) or a type automerge refuses.
            _ => self.add(body.len()),
        }
    }

    /// Inflates `deflated` into nothing, counting.
    fn inflate(&mut self, deflated: &[u8]) -> Result<(), InflationError> {
        let mut decoder = flate2::read::DeflateDecoder::new(deflated);
        let mut buffer = vec![0u8; INFLATE_BUFFER];
        loop {
            let read = decoder
                .read(&mut buffer)
                .map_err(|error| InflationError::Corrupt(error.to_string()))?;
            if read == 0 {
                return Ok(());
            }
            self.add(read)?;
        }
    }

    /// A document's or a bundle's body: ids, then column metadata and the
    /// columns, any of which may be deflated.
    fn charge_columns(&mut self, body: &[u8], layout: ColumnLayout) -> Result<(), InflationError> {
        let mut reader = Reader { bytes: body, at: 0 };
        match layout {
            // Actors, heads, both groups' metadata; the change columns, the
            // ops columns; the heads' indices.
            ColumnLayout::Document => {
                reader.actors()?;
                reader.hashes()?;
                let changes = reader.column_metadata()?;
                let ops = reader.column_metadata()?;
                self.add(reader.at)?;
                self.charge_group(&mut reader, &changes)?;
                self.charge_group(&mut reader, &ops)?;
            }
            // Dependencies, actors; each group's metadata followed by its columns.
            ColumnLayout::Bundle => {
                reader.hashes()?;
                reader.actors()?;
                for _ in 0..2 {
                    let metadata_at = reader.at;
                    let group = reader.column_metadata()?;
                    self.add(reader.at - metadata_at)?;
                    self.charge_group(&mut reader, &group)?;
                }
            }
        }
        self.add(body.len() - reader.at)
    }

    fn charge_group(
        &mut self,
        reader: &mut Reader<'_>,
        columns: &[(u64, usize)],
    ) -> Result<(), InflationError> {
        for &(specification, length) in columns {
            let data = reader.take(length)?;
            if specification & DEFLATED_COLUMN != 0 {
                self.inflate(data)?;
            } else {
                self.add(data.len())?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnLayout {
    Document,
    Bundle,
}

fn cut(what: &str) -> InflationError {
    InflationError::Corrupt(format!("the {what} is cut short"))
}

/// Reads the unsigned LEB128 numbers and byte runs of a chunk's body.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn number(&mut self) -> Result<u64, InflationError> {
        let (value, used) = leb128(&self.bytes[self.at..]).ok_or_else(|| cut("number"))?;
        self.at += used;
        Ok(value)
    }

    fn length(&mut self) -> Result<usize, InflationError> {
        usize::try_from(self.number()?).map_err(|_| cut("length"))
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], InflationError> {
        let end = self.at.checked_add(length).ok_or_else(|| cut("column"))?;
        let taken = self.bytes.get(self.at..end).ok_or_else(|| cut("column"))?;
        self.at = end;
        Ok(taken)
    }

    fn skip(&mut self, length: usize) -> Result<(), InflationError> {
        self.take(length).map(|_| ())
    }

    fn actors(&mut self) -> Result<(), InflationError> {
        for _ in 0..self.number()? {
            let length = self.length()?;
            self.skip(length)?;
        }
        Ok(())
    }

    fn hashes(&mut self) -> Result<(), InflationError> {
        let count = self.length()?;
        self.skip(
            count
                .checked_mul(HASH_BYTES)
                .ok_or_else(|| cut("hash list"))?,
        )
    }

    /// `(specification, length)` of each column.
    fn column_metadata(&mut self) -> Result<Vec<(u64, usize)>, InflationError> {
        let count = self.length()?;
        // Each column takes two bytes of metadata at least: a count beyond
        // what the body holds is a lie, not a reason to allocate.
        if count > self.bytes.len() / 2 {
            return Err(cut("column metadata"));
        }
        (0..count)
            .map(|_| Ok((self.number()?, self.length()?)))
            .collect()
    }
}

/// Bytes of a change hash.
const HASH_BYTES: usize = 32;
/// The bit of a column's specification that says it is deflated.
const DEFLATED_COLUMN: u64 = 0b1000;
const DOCUMENT_CHUNK: u8 = 0;
const COMPRESSED_CHANGE_CHUNK: u8 = 2;

/// An unsigned LEB128 number at the start of `bytes`, and how many bytes it took.
fn leb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let (mut value, mut shift) = (0u64, 0u32);
    for (index, &byte) in bytes.iter().enumerate() {
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
        shift += 7;
        if shift >= 64 {
            return None;
        }
    }
    None
}

/// Where a chunk's body starts, and its length, from its header.
fn chunk_body(bytes: &[u8]) -> Option<(usize, usize)> {
    const FIXED_HEADER: usize = CHUNK_TYPE_AT + 1;
    let (length, used) = leb128(bytes.get(FIXED_HEADER..)?)?;
    Some((FIXED_HEADER + used, usize::try_from(length).ok()?))
}

/// Where a chunk's type byte is (after the magic bytes and the checksum),
/// and the type of a bundle of changes.
const CHUNK_TYPE_AT: usize = 8;
const BUNDLE_CHUNK: u8 = 3;

/// Splits bytes into automerge chunks by their headers (magic and checksum,
/// 8 bytes; type, 1 byte; body length, unsigned LEB128), or None if they do not
/// split exactly. Each part still has to parse (and match its checksum).
fn split_chunks(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        let (at, length) = chunk_body(bytes)?;
        let end = at.checked_add(length)?;
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

    /// A compressed change chunk (type 2) whose deflated body is zeros
    /// inflating to `inflated` bytes: what a decompression bomb looks like.
    fn compressed_zeros(inflated: usize) -> Vec<u8> {
        use std::io::Write;
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; inflated]).unwrap();
        let body = encoder.finish().unwrap();
        let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, COMPRESSED_CHANGE_CHUNK];
        let mut length = body.len();
        loop {
            let byte = (length & 0x7f) as u8;
            length >>= 7;
            if length == 0 {
                chunk.push(byte);
                break;
            }
            chunk.push(byte | 0x80);
        }
        chunk.extend(body);
        chunk
    }

    #[test]
    fn a_compressed_chunk_is_refused_once_it_inflates_past_the_limit() {
        let bomb = compressed_zeros(4 * 1024 * 1024);
        assert!(bomb.len() < 16 * 1024, "{} bytes", bomb.len());
        let mut budget = InflationBudget::new(1024 * 1024);
        assert_eq!(
            budget.charge(&bomb),
            Err(InflationError::OverLimit { limit: 1024 * 1024 })
        );
        assert!(budget.spent() <= 1024 * 1024 + INFLATE_BUFFER + 16);
        let mut roomy = InflationBudget::new(8 * 1024 * 1024);
        roomy.charge(&bomb).unwrap();
        assert!(roomy.spent() >= 4 * 1024 * 1024);
    }

    #[test]
    fn the_limit_counts_every_chunk_of_a_message() {
        let chunk = compressed_zeros(600 * 1024);
        let mut budget = InflationBudget::new(1024 * 1024);
        budget.charge(&chunk).unwrap();
        assert!(matches!(
            budget.charge(&chunk),
            Err(InflationError::OverLimit { .. })
        ));
    }

    #[test]
    fn a_saved_document_is_charged_its_inflated_columns() {
        // Long values make automerge deflate the document's columns.
        let mut doc = Automerge::new();
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            for n in 0..200 {
                tx.put(ROOT, format!("key{n}"), "a long repeated value ".repeat(20))?;
            }
            Ok(())
        })
        .unwrap();
        let saved = doc.save();
        let mut counted = InflationBudget::new(usize::MAX);
        counted.charge(&saved).unwrap();
        assert!(
            counted.spent() > 2 * saved.len(),
            "columns counted inflated: {} of {} stored bytes",
            counted.spent(),
            saved.len()
        );
        let mut tight = InflationBudget::new(saved.len() + 100);
        assert!(matches!(
            tight.charge(&saved),
            Err(InflationError::OverLimit { .. })
        ));
    }

    #[test]
    fn changes_are_charged_their_length_and_bundles_what_they_inflate_to() {
        let doc = doc_with_changes(3);
        let run: Vec<u8> = doc
            .get_changes(&[])
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        let mut budget = InflationBudget::new(usize::MAX);
        budget.charge(&run).unwrap();
        assert_eq!(budget.spent(), run.len());
        let bundle = doc.bundle(doc.get_heads()).unwrap().bytes().to_vec();
        let mut budget = InflationBudget::new(usize::MAX);
        budget.charge(&bundle).unwrap();
        // Bundles deflate their columns: charged as they inflate.
        assert!(budget.spent() > 0);
        assert!(matches!(
            InflationBudget::new(budget.spent() - 1).charge(&bundle),
            Err(InflationError::OverLimit { .. })
        ));
    }

    #[test]
    fn bytes_that_are_no_chunks_and_cut_columns_are_refused() {
        let mut budget = InflationBudget::new(usize::MAX);
        assert!(matches!(
            budget.charge(b"not an automerge chunk"),
            Err(InflationError::Corrupt(_))
        ));
        let saved = doc_with_changes(2).save();
        // A document chunk whose body claims a column longer than it holds.
        let mut lying = saved.clone();
        let at = lying.len() - 1;
        lying.truncate(at);
        assert!(InflationBudget::new(usize::MAX).charge(&lying).is_err());
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
