//! The CBOR codec of automerge-repo messages.
//!
//! Every message is a CBOR map with a `type`. Decoding collects the map's
//! entries first (each key once, values kept as their raw bytes) and then reads
//! the fields the type needs, so an error names the message type and the field:
//! "a `sync` message needs a `documentId`", "`count` of an `ephemeral` message
//! must be an unsigned integer". Fields this codec does not know are skipped, as
//! the JS client does, so a newer client's additions do not break the server.

use std::collections::BTreeMap;

use minicbor::{data::Type, Decoder, Encoder};

use super::ids::{DocumentId, PeerId, StorageId};

/// Bounds on what one message may hold; above any of them the message is
/// refused with the limit named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the whole message (a sync message carries changes: the
    /// largest legitimate ones are a phone's first sync of a long day).
    pub max_message_bytes: usize,
    /// Characters of a peer id, session id, storage id, protocol version, head.
    pub max_id_chars: usize,
    /// Characters of an `error` message's text.
    pub max_text_chars: usize,
    /// Entries of a list or map (protocol versions, storage ids, heads).
    pub max_items: usize,
}

impl Limits {
    /// The default of [`Limits::max_message_bytes`].
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_bytes: Limits::DEFAULT_MAX_MESSAGE_BYTES,
            max_id_chars: 256,
            max_text_chars: 4096,
            max_items: 1024,
        }
    }
}

/// What a peer says about itself in `join` and `peer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerMetadata {
    pub storage_id: Option<StorageId>,
    /// Whether the peer will not come back with the same storage (a browser tab).
    pub is_ephemeral: Option<bool>,
}

/// A document's heads as one storage holds them, in `remote-heads-changed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadsAt {
    /// The heads, as the JS client writes them (base58 strings).
    pub heads: Vec<String>,
    /// Milliseconds since the epoch, on the node that first sent them.
    pub timestamp: u64,
}

/// One automerge-repo message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A connecting peer introduces itself.
    Join {
        sender_id: PeerId,
        supported_protocol_versions: Vec<String>,
        metadata: Option<PeerMetadata>,
    },
    /// The answer to `join`.
    Peer {
        sender_id: PeerId,
        target_id: PeerId,
        selected_protocol_version: String,
        metadata: Option<PeerMetadata>,
    },
    /// The peer is about to disconnect.
    Leave { sender_id: PeerId },
    /// A sync message from a peer asking for a document it does not have.
    Request {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    /// An automerge sync message (`data`) about one document.
    Sync {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    /// The sender does not have the document (or will not share it).
    DocUnavailable {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
    },
    /// An application message about a document, relayed to its other peers.
    Ephemeral {
        sender_id: PeerId,
        target_id: PeerId,
        count: u64,
        session_id: String,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    /// The sender found a protocol error; the connection closes after it.
    Error {
        message: String,
        sender_id: Option<PeerId>,
        target_id: Option<PeerId>,
    },
    /// The sender wants (or no longer wants) remote heads of these storages.
    RemoteSubscriptionChange {
        sender_id: PeerId,
        target_id: PeerId,
        add: Vec<StorageId>,
        remove: Vec<StorageId>,
    },
    /// Heads of a document at other storages the sender knows of.
    RemoteHeadsChanged {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        new_heads: BTreeMap<StorageId, HeadsAt>,
    },
}

impl Message {
    /// The `type` field of this message.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Join { .. } => "join",
            Message::Peer { .. } => "peer",
            Message::Leave { .. } => "leave",
            Message::Request { .. } => "request",
            Message::Sync { .. } => "sync",
            Message::DocUnavailable { .. } => "doc-unavailable",
            Message::Ephemeral { .. } => "ephemeral",
            Message::Error { .. } => "error",
            Message::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Message::RemoteHeadsChanged { .. } => "remote-heads-changed",
        }
    }

    /// The peer that sent it, where the message says.
    pub fn sender_id(&self) -> Option<&str> {
        match self {
            Message::Join { sender_id, .. }
            | Message::Peer { sender_id, .. }
            | Message::Leave { sender_id }
            | Message::Request { sender_id, .. }
            | Message::Sync { sender_id, .. }
            | Message::DocUnavailable { sender_id, .. }
            | Message::Ephemeral { sender_id, .. }
            | Message::RemoteSubscriptionChange { sender_id, .. }
            | Message::RemoteHeadsChanged { sender_id, .. } => Some(sender_id),
            Message::Error { sender_id, .. } => sender_id.as_deref(),
        }
    }

    /// The peer it is addressed to, where the message says.
    pub fn target_id(&self) -> Option<&str> {
        match self {
            Message::Join { .. } | Message::Leave { .. } => None,
            Message::Peer { target_id, .. }
            | Message::Request { target_id, .. }
            | Message::Sync { target_id, .. }
            | Message::DocUnavailable { target_id, .. }
            | Message::Ephemeral { target_id, .. }
            | Message::RemoteSubscriptionChange { target_id, .. }
            | Message::RemoteHeadsChanged { target_id, .. } => Some(target_id),
            Message::Error { target_id, .. } => target_id.as_deref(),
        }
    }
}

/// Why bytes are not a message this server accepts. Each names what is wrong,
/// for the `error` message the peer receives before the connection closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a message of {got} bytes is over the limit of {limit} bytes")]
    TooLarge { limit: usize, got: usize },
    #[error("the message ends in the middle of its CBOR")]
    Truncated,
    #[error("the message is not valid CBOR: {0}")]
    NotCbor(String),
    #[error("a message must be a CBOR map (got {0})")]
    NotAMap(String),
    #[error("a message must be a map of definite length")]
    IndefiniteMap,
    #[error("a message's keys must be text")]
    KeyNotText,
    #[error("the key `{0}` appears twice")]
    DuplicateKey(String),
    #[error("the message has {got} fields, over the limit of {limit}")]
    TooManyFields { limit: usize, got: u64 },
    #[error("bytes follow the message's CBOR map")]
    TrailingBytes,
    #[error("the message has no `type`")]
    MissingType,
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("a `{kind}` message needs a `{field}`")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
    #[error("`{field}` of a `{kind}` message must be {expected}")]
    WrongType {
        kind: &'static str,
        field: &'static str,
        expected: &'static str,
    },
    #[error("`{field}` of a `{kind}` message is over the limit of {limit} {unit}")]
    OverLimit {
        kind: &'static str,
        field: &'static str,
        limit: usize,
        unit: &'static str,
    },
    #[error("`documentId` of a `{kind}` message is not a document id: {reason}")]
    BadDocumentId { kind: &'static str, reason: String },
}

/// The top-level map: each key's value as raw CBOR bytes.
struct Fields<'b> {
    kind: &'static str,
    entries: BTreeMap<&'b str, &'b [u8]>,
    limits: Limits,
}

/// Decodes one message, within `limits`.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Message, DecodeError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(DecodeError::TooLarge {
            limit: limits.max_message_bytes,
            got: bytes.len(),
        });
    }
    let mut decoder = Decoder::new(bytes);
    let datatype = decoder.datatype().map_err(cbor_error)?;
    if !matches!(datatype, Type::Map | Type::MapIndef) {
        return Err(DecodeError::NotAMap(describe(datatype).to_string()));
    }
    let length = decoder
        .map()
        .map_err(cbor_error)?
        .ok_or(DecodeError::IndefiniteMap)?;
    // A message has at most a dozen fields; a map of thousands is an attack.
    let max_fields = 32;
    if length > max_fields as u64 {
        return Err(DecodeError::TooManyFields {
            limit: max_fields,
            got: length,
        });
    }
    let mut entries = BTreeMap::new();
    for _ in 0..length {
        if !matches!(decoder.datatype().map_err(cbor_error)?, Type::String) {
            return Err(DecodeError::KeyNotText);
        }
        let key = decoder.str().map_err(cbor_error)?;
        let start = decoder.position();
        decoder.skip().map_err(cbor_error)?;
        if entries
            .insert(key, &bytes[start..decoder.position()])
            .is_some()
        {
            return Err(DecodeError::DuplicateKey(key.to_string()));
        }
    }
    if decoder.position() != bytes.len() {
        return Err(DecodeError::TrailingBytes);
    }
    let kind_text = match entries.get("type") {
        None => return Err(DecodeError::MissingType),
        Some(raw) => Decoder::new(raw)
            .str()
            .map_err(|_| DecodeError::WrongType {
                kind: "any",
                field: "type",
                expected: "text",
            })?,
    };
    let kind = KINDS
        .iter()
        .find(|k| **k == kind_text)
        .ok_or_else(|| DecodeError::UnknownType(shorten(kind_text, limits.max_id_chars)))?;
    let fields = Fields {
        kind,
        entries,
        limits: *limits,
    };
    fields.message()
}

const KINDS: [&str; 10] = [
    "join",
    "peer",
    "leave",
    "request",
    "sync",
    "doc-unavailable",
    "ephemeral",
    "error",
    "remote-subscription-change",
    "remote-heads-changed",
];

impl<'b> Fields<'b> {
    fn message(&self) -> Result<Message, DecodeError> {
        Ok(match self.kind {
            "join" => Message::Join {
                sender_id: self.id("senderId")?,
                supported_protocol_versions: self
                    .optional("supportedProtocolVersions", |f, d| {
                        f.id_list(d, "supportedProtocolVersions")
                    })?
                    .unwrap_or_default(),
                metadata: self.optional("peerMetadata", Fields::metadata)?,
            },
            "peer" => Message::Peer {
                sender_id: self.id("senderId")?,
                target_id: self.id("targetId")?,
                selected_protocol_version: self.id("selectedProtocolVersion")?,
                metadata: self.optional("peerMetadata", Fields::metadata)?,
            },
            "leave" => Message::Leave {
                sender_id: self.id("senderId")?,
            },
            "request" => Message::Request {
                sender_id: self.id("senderId")?,
                target_id: self.id("targetId")?,
                document_id: self.document_id()?,
                data: self.data()?,
            },
            "sync" => Message::Sync {
                sender_id: self.id("senderId")?,
                target_id: self.id("targetId")?,
                document_id: self.document_id()?,
                data: self.data()?,
            },
            "doc-unavailable" => Message::DocUnavailable {
                sender_id: self.id("senderId")?,
                target_id: self.id("targetId")?,
                document_id: self.document_id()?,
            },
            "ephemeral" => Message::Ephemeral {
                sender_id: self.id("senderId")?,
                target_id: self.id("targetId")?,
                count: self.required("count", |f, d| f.unsigned(d, "count"))?,
                session_id: self.id("sessionId")?,
                document_id: self.document_id()?,
                data: self.data()?,
            },
            "error" => Message::Error {
                message: self.required("message", |f, d| {
                    f.text(d, "message", f.limits.max_text_chars)
                })?,
                sender_id: self.optional("senderId", |f, d| {
                    f.text(d, "senderId", f.limits.max_id_chars)
                })?,
                target_id: self.optional("targetId", |f, d| {
                    f.text(d, "targetId", f.limits.max_id_chars)
                })?,
            },
            "remote-subscription-change" => Message::RemoteSubscriptionChange {
                sender_id: self.id("senderId")?,
                target_id: self.id("targetId")?,
                add: self
                    .optional("add", |f, d| f.id_list(d, "add"))?
                    .unwrap_or_default(),
                remove: self
                    .optional("remove", |f, d| f.id_list(d, "remove"))?
                    .unwrap_or_default(),
            },
            "remote-heads-changed" => Message::RemoteHeadsChanged {
                sender_id: self.id("senderId")?,
                target_id: self.id("targetId")?,
                document_id: self.document_id()?,
                new_heads: self.required("newHeads", Fields::new_heads)?,
            },
            other => unreachable!("{other} is in KINDS"),
        })
    }

    fn wrong(&self, field: &'static str, expected: &'static str) -> DecodeError {
        DecodeError::WrongType {
            kind: self.kind,
            field,
            expected,
        }
    }

    fn over(&self, field: &'static str, limit: usize, unit: &'static str) -> DecodeError {
        DecodeError::OverLimit {
            kind: self.kind,
            field,
            limit,
            unit,
        }
    }

    /// A field that may be absent (or null, as cbor-x writes `undefined`).
    fn optional<T>(
        &self,
        field: &'static str,
        read: impl Fn(&Self, &mut Decoder<'b>) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        let Some(raw) = self.entries.get(field) else {
            return Ok(None);
        };
        let mut decoder = Decoder::new(raw);
        if matches!(decoder.datatype(), Ok(Type::Null | Type::Undefined)) {
            return Ok(None);
        }
        read(self, &mut decoder).map(Some)
    }

    fn required<T>(
        &self,
        field: &'static str,
        read: impl Fn(&Self, &mut Decoder<'b>) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        self.optional(field, read)?
            .ok_or(DecodeError::MissingField {
                kind: self.kind,
                field,
            })
    }

    fn id(&self, field: &'static str) -> Result<String, DecodeError> {
        self.required(field, |f, d| f.text(d, field, f.limits.max_id_chars))
    }

    fn text(
        &self,
        decoder: &mut Decoder<'b>,
        field: &'static str,
        max_chars: usize,
    ) -> Result<String, DecodeError> {
        let text = decoder.str().map_err(|_| self.wrong(field, "text"))?;
        if text.chars().count() > max_chars {
            return Err(self.over(field, max_chars, "characters"));
        }
        Ok(text.to_string())
    }

    fn unsigned(&self, decoder: &mut Decoder<'b>, field: &'static str) -> Result<u64, DecodeError> {
        match decoder.datatype() {
            // JS numbers past 2^32 or with a fraction arrive as floats.
            Ok(Type::F16 | Type::F32 | Type::F64) => {
                let value = decoder.f64().map_err(|_| self.wrong(field, "a number"))?;
                if value >= 0.0 && value.fract() == 0.0 && value < 2f64.powi(64) {
                    Ok(value as u64)
                } else {
                    Err(self.wrong(field, "an unsigned integer"))
                }
            }
            _ => decoder
                .u64()
                .map_err(|_| self.wrong(field, "an unsigned integer")),
        }
    }

    fn id_list(
        &self,
        decoder: &mut Decoder<'b>,
        field: &'static str,
    ) -> Result<Vec<String>, DecodeError> {
        let length = decoder
            .array()
            .map_err(|_| self.wrong(field, "a list of text"))?
            .ok_or_else(|| self.wrong(field, "a list of definite length"))?;
        if length > self.limits.max_items as u64 {
            return Err(self.over(field, self.limits.max_items, "items"));
        }
        (0..length)
            .map(|_| self.text(decoder, field, self.limits.max_id_chars))
            .collect()
    }

    fn document_id(&self) -> Result<DocumentId, DecodeError> {
        let text = self.id("documentId")?;
        DocumentId::parse(&text).map_err(|reason| DecodeError::BadDocumentId {
            kind: self.kind,
            reason,
        })
    }

    fn data(&self) -> Result<Vec<u8>, DecodeError> {
        self.required("data", |f, d| {
            d.bytes()
                .map(<[u8]>::to_vec)
                .map_err(|_| f.wrong("data", "a byte string"))
        })
    }

    /// The number of entries of a nested map, within the limit.
    fn map_header(
        &self,
        decoder: &mut Decoder<'b>,
        field: &'static str,
    ) -> Result<u64, DecodeError> {
        let length = decoder
            .map()
            .map_err(|_| self.wrong(field, "a map"))?
            .ok_or_else(|| self.wrong(field, "a map of definite length"))?;
        if length > self.limits.max_items as u64 {
            return Err(self.over(field, self.limits.max_items, "entries"));
        }
        Ok(length)
    }

    fn metadata(&self, decoder: &mut Decoder<'b>) -> Result<PeerMetadata, DecodeError> {
        let field = "peerMetadata";
        let length = self.map_header(decoder, field)?;
        let mut metadata = PeerMetadata::default();
        for _ in 0..length {
            let key = decoder
                .str()
                .map_err(|_| self.wrong(field, "a map with text keys"))?;
            let null = matches!(decoder.datatype(), Ok(Type::Null | Type::Undefined));
            match key {
                _ if null => decoder.skip().map_err(cbor_error)?,
                "storageId" => {
                    metadata.storage_id = Some(self.text(
                        decoder,
                        "peerMetadata.storageId",
                        self.limits.max_id_chars,
                    )?)
                }
                "isEphemeral" => {
                    metadata.is_ephemeral = Some(
                        decoder
                            .bool()
                            .map_err(|_| self.wrong("peerMetadata.isEphemeral", "true or false"))?,
                    )
                }
                _ => decoder.skip().map_err(cbor_error)?,
            }
        }
        Ok(metadata)
    }

    fn new_heads(
        &self,
        decoder: &mut Decoder<'b>,
    ) -> Result<BTreeMap<StorageId, HeadsAt>, DecodeError> {
        let field = "newHeads";
        let length = self.map_header(decoder, field)?;
        let mut new_heads = BTreeMap::new();
        for _ in 0..length {
            let storage = self.text(decoder, field, self.limits.max_id_chars)?;
            let entries = decoder
                .map()
                .map_err(|_| self.wrong(field, "a map of storage id to {heads, timestamp}"))?
                .ok_or_else(|| self.wrong(field, "maps of definite length"))?;
            let (mut heads, mut timestamp) = (None, None);
            for _ in 0..entries {
                match decoder
                    .str()
                    .map_err(|_| self.wrong(field, "maps with text keys"))?
                {
                    "heads" => heads = Some(self.id_list(decoder, "newHeads.heads")?),
                    "timestamp" => timestamp = Some(self.unsigned(decoder, "newHeads.timestamp")?),
                    _ => decoder.skip().map_err(cbor_error)?,
                }
            }
            let (Some(heads), Some(timestamp)) = (heads, timestamp) else {
                return Err(self.wrong(field, "a map of storage id to {heads, timestamp}"));
            };
            new_heads.insert(storage, HeadsAt { heads, timestamp });
        }
        Ok(new_heads)
    }
}

fn cbor_error(error: minicbor::decode::Error) -> DecodeError {
    if error.is_end_of_input() {
        DecodeError::Truncated
    } else {
        DecodeError::NotCbor(error.to_string())
    }
}

fn describe(datatype: Type) -> &'static str {
    match datatype {
        Type::Array | Type::ArrayIndef => "a list",
        Type::String | Type::StringIndef => "text",
        Type::Bytes | Type::BytesIndef => "a byte string",
        Type::Bool => "a boolean",
        Type::Null | Type::Undefined => "null",
        Type::F16 | Type::F32 | Type::F64 => "a float",
        Type::Tag => "a tagged value",
        _ => "a number",
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// Encodes a message as the JS client expects it (field names and types of
/// automerge-repo 2.x; absent optional fields are left out).
pub fn encode(message: &Message) -> Vec<u8> {
    let mut buffer = Vec::new();
    write(&mut Encoder::new(&mut buffer), message).expect("encoding into a Vec cannot fail");
    buffer
}

type Written = Result<(), minicbor::encode::Error<std::convert::Infallible>>;

fn write(e: &mut Encoder<&mut Vec<u8>>, message: &Message) -> Written {
    let field_count = |fields: &[bool]| fields.iter().filter(|present| **present).count() as u64;
    match message {
        Message::Join {
            sender_id,
            supported_protocol_versions,
            metadata,
        } => {
            e.map(field_count(&[true, true, true, metadata.is_some()]))?;
            e.str("type")?
                .str("join")?
                .str("senderId")?
                .str(sender_id)?;
            e.str("supportedProtocolVersions")?
                .array(supported_protocol_versions.len() as u64)?;
            for version in supported_protocol_versions {
                e.str(version)?;
            }
            if let Some(metadata) = metadata {
                e.str("peerMetadata")?;
                write_metadata(e, metadata)?;
            }
        }
        Message::Peer {
            sender_id,
            target_id,
            selected_protocol_version,
            metadata,
        } => {
            e.map(field_count(&[true, true, true, true, metadata.is_some()]))?;
            e.str("type")?
                .str("peer")?
                .str("senderId")?
                .str(sender_id)?;
            e.str("targetId")?.str(target_id)?;
            e.str("selectedProtocolVersion")?
                .str(selected_protocol_version)?;
            if let Some(metadata) = metadata {
                e.str("peerMetadata")?;
                write_metadata(e, metadata)?;
            }
        }
        Message::Leave { sender_id } => {
            e.map(2)?
                .str("type")?
                .str("leave")?
                .str("senderId")?
                .str(sender_id)?;
        }
        Message::Request {
            sender_id,
            target_id,
            document_id,
            data,
        }
        | Message::Sync {
            sender_id,
            target_id,
            document_id,
            data,
        } => {
            e.map(5)?.str("type")?.str(message.kind())?;
            e.str("senderId")?
                .str(sender_id)?
                .str("targetId")?
                .str(target_id)?;
            e.str("documentId")?.str(&document_id.to_string())?;
            e.str("data")?.bytes(data)?;
        }
        Message::DocUnavailable {
            sender_id,
            target_id,
            document_id,
        } => {
            e.map(4)?.str("type")?.str("doc-unavailable")?;
            e.str("senderId")?
                .str(sender_id)?
                .str("targetId")?
                .str(target_id)?;
            e.str("documentId")?.str(&document_id.to_string())?;
        }
        Message::Ephemeral {
            sender_id,
            target_id,
            count,
            session_id,
            document_id,
            data,
        } => {
            e.map(7)?.str("type")?.str("ephemeral")?;
            e.str("senderId")?
                .str(sender_id)?
                .str("targetId")?
                .str(target_id)?;
            e.str("count")?
                .u64(*count)?
                .str("sessionId")?
                .str(session_id)?;
            e.str("documentId")?.str(&document_id.to_string())?;
            e.str("data")?.bytes(data)?;
        }
        Message::Error {
            message,
            sender_id,
            target_id,
        } => {
            e.map(field_count(&[
                true,
                true,
                sender_id.is_some(),
                target_id.is_some(),
            ]))?;
            e.str("type")?.str("error")?.str("message")?.str(message)?;
            if let Some(sender_id) = sender_id {
                e.str("senderId")?.str(sender_id)?;
            }
            if let Some(target_id) = target_id {
                e.str("targetId")?.str(target_id)?;
            }
        }
        Message::RemoteSubscriptionChange {
            sender_id,
            target_id,
            add,
            remove,
        } => {
            e.map(5)?.str("type")?.str("remote-subscription-change")?;
            e.str("senderId")?
                .str(sender_id)?
                .str("targetId")?
                .str(target_id)?;
            for (name, ids) in [("add", add), ("remove", remove)] {
                e.str(name)?.array(ids.len() as u64)?;
                for id in ids {
                    e.str(id)?;
                }
            }
        }
        Message::RemoteHeadsChanged {
            sender_id,
            target_id,
            document_id,
            new_heads,
        } => {
            e.map(5)?.str("type")?.str("remote-heads-changed")?;
            e.str("senderId")?
                .str(sender_id)?
                .str("targetId")?
                .str(target_id)?;
            e.str("documentId")?.str(&document_id.to_string())?;
            e.str("newHeads")?.map(new_heads.len() as u64)?;
            for (storage, at) in new_heads {
                e.str(storage)?
                    .map(2)?
                    .str("heads")?
                    .array(at.heads.len() as u64)?;
                for head in &at.heads {
                    e.str(head)?;
                }
                e.str("timestamp")?.u64(at.timestamp)?;
            }
        }
    }
    Ok(())
}

fn write_metadata(e: &mut Encoder<&mut Vec<u8>>, metadata: &PeerMetadata) -> Written {
    e.map(metadata.storage_id.is_some() as u64 + metadata.is_ephemeral.is_some() as u64)?;
    if let Some(storage_id) = &metadata.storage_id {
        e.str("storageId")?.str(storage_id)?;
    }
    if let Some(is_ephemeral) = metadata.is_ephemeral {
        e.str("isEphemeral")?.bool(is_ephemeral)?;
    }
    Ok(())
}
