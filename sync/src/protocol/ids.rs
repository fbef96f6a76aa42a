//! Identifiers on the wire.

use std::fmt;

/// An automerge-repo document id: 16 bytes (a UUID), written on the wire and
/// in URLs (`automerge:<id>`) as base58check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId([u8; 16]);

impl DocumentId {
    pub const fn from_bytes(bytes: [u8; 16]) -> DocumentId {
        DocumentId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the base58check form; the reason says what is wrong.
    pub fn parse(text: &str) -> Result<DocumentId, String> {
        let bytes = bs58::decode(text)
            .with_check(None)
            .into_vec()
            .map_err(|error| format!("not base58check: {error}"))?;
        let bytes: [u8; 16] = bytes
            .try_into()
            .map_err(|bytes: Vec<u8>| format!("{} bytes, not 16", bytes.len()))?;
        Ok(DocumentId(bytes))
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

/// A peer's id as it introduces itself in `join` (the server binds it to the
/// connection's credential).
pub type PeerId = String;

/// A peer's storage id (`peerMetadata.storageId`), the key of remote heads.
pub type StorageId = String;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_ids_round_trip_through_base58check() {
        let id = DocumentId::from_bytes(*uuid::Uuid::new_v4().as_bytes());
        assert_eq!(DocumentId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn malformed_document_ids_say_why() {
        assert!(DocumentId::parse("0OIl")
            .unwrap_err()
            .contains("base58check"));
        let short = bs58::encode([1u8; 8]).with_check().into_string();
        assert_eq!(DocumentId::parse(&short).unwrap_err(), "8 bytes, not 16");
        let id = DocumentId::from_bytes([7; 16]).to_string();
        let mut tampered = id.clone().into_bytes();
        tampered[3] = if tampered[3] == b'2' { b'3' } else { b'2' };
        assert!(DocumentId::parse(std::str::from_utf8(&tampered).unwrap()).is_err());
    }
}
