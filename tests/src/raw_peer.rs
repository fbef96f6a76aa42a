//! A bare automerge-repo peer speaking the wire protocol by hand, so tests can
//! send exactly the bytes they mean: the same changes twice, garbage, a
//! truncated change.

use std::time::Duration;

use ::sync::protocol::{self, Limits, Message as ProtocolMessage};
use anyhow::{bail, Context};
use automerge::{
    sync::{self as automerge_sync, SyncDoc},
    Automerge,
};
use futures::{SinkExt, StreamExt};
use mobile_bridge::DeviceCredential;
use samod::DocumentId;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, Message},
    MaybeTlsStream, WebSocketStream,
};
use url::Url;

/// What tests look at in a message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub kind: String,
    pub sender_id: Option<String>,
    pub document_id: Option<String>,
    pub data: Option<Vec<u8>>,
    /// The text of an `error` message.
    pub message: Option<String>,
}

impl From<ProtocolMessage> for Envelope {
    fn from(message: ProtocolMessage) -> Envelope {
        let kind = message.kind().to_string();
        let sender_id = message.sender_id().map(str::to_string);
        let (document_id, data, text) = match message {
            ProtocolMessage::Sync {
                document_id, data, ..
            }
            | ProtocolMessage::Request {
                document_id, data, ..
            }
            | ProtocolMessage::Ephemeral {
                document_id, data, ..
            } => (Some(document_id.to_string()), Some(data), None),
            ProtocolMessage::DocUnavailable { document_id, .. }
            | ProtocolMessage::RemoteHeadsChanged { document_id, .. } => {
                (Some(document_id.to_string()), None, None)
            }
            ProtocolMessage::Error { message, .. } => (None, None, Some(message)),
            _ => (None, None, None),
        };
        Envelope {
            kind,
            sender_id,
            document_id,
            data,
            message: text,
        }
    }
}

/// A `sync` message about `document_id` (its base58check text), as a peer sends it.
pub fn sync_message(sender: &str, target: &str, document_id: &str, data: &[u8]) -> Vec<u8> {
    protocol::encode(&ProtocolMessage::Sync {
        sender_id: sender.to_string(),
        target_id: target.to_string(),
        document_id: protocol::DocumentId::parse(document_id)
            .expect("tests send well-formed document ids"),
        data: data.to_vec(),
    })
}

/// A document a [`RawPeer`] keeps syncing after [`RawPeer::fetch_synced`]:
/// the automerge sync state stays with the document, so each later `sync`
/// message from the server is applied and answered as automerge-repo does.
pub struct SyncedDoc {
    pub document_id: DocumentId,
    pub doc: Automerge,
    state: automerge_sync::State,
    /// Bytes of automerge sync data received for it so far (what a phone's
    /// data plan pays for it, less the framing).
    pub received_bytes: usize,
}

pub struct RawPeer {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub peer_id: String,
    pub server_peer_id: String,
}

/// A fresh automerge-repo document id.
pub fn new_document_id() -> DocumentId {
    DocumentId::try_from(uuid::Uuid::new_v4().as_bytes().to_vec())
        .expect("16 bytes make a document id")
}

/// An automerge sync message carrying every change of `doc`, as a peer sends
/// once it knows the other side has none of them.
pub fn all_changes_message(doc: &Automerge) -> automerge_sync::Message {
    automerge_sync::Message {
        heads: doc.get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: doc
            .get_changes(&[])
            .iter()
            .map(|change| change.raw_bytes().to_vec())
            .collect::<Vec<_>>()
            .into(),
        flags: None,
        version: automerge_sync::MessageVersion::V1,
    }
}

impl RawPeer {
    /// Connects with a device credential and completes the join/peer
    /// handshake under the peer id the server binds to that device.
    pub async fn connect(url: &Url, device: &DeviceCredential) -> anyhow::Result<RawPeer> {
        let peer_id = format!("device-{}", device.device_id);
        RawPeer::connect_as(url, &device.secret, &peer_id).await
    }

    /// Connects with a bearer `token` (a device credential or a session token)
    /// under `peer_id`, which must be the one the server binds to that token.
    pub async fn connect_as(url: &Url, token: &str, peer_id: &str) -> anyhow::Result<RawPeer> {
        RawPeer::handshake(url, Some(token), peer_id).await
    }

    /// Connects without any credential, under any `peer_id`: for servers that
    /// authenticate no one, such as the JS reference server.
    pub async fn connect_anonymous(url: &Url, peer_id: &str) -> anyhow::Result<RawPeer> {
        RawPeer::handshake(url, None, peer_id).await
    }

    async fn handshake(url: &Url, token: Option<&str>, peer_id: &str) -> anyhow::Result<RawPeer> {
        let mut request = url.as_str().into_client_request()?;
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        let mut peer = RawPeer {
            socket,
            peer_id: peer_id.to_string(),
            server_peer_id: String::new(),
        };
        let join = protocol::encode(&ProtocolMessage::Join {
            sender_id: peer_id.to_string(),
            supported_protocol_versions: vec![protocol::PROTOCOL_VERSION.to_string()],
            metadata: None,
        });
        peer.send_bytes(join).await?;
        let reply = peer
            .next_envelope(Duration::from_secs(10))
            .await?
            .context("server closed during the handshake")?;
        if reply.kind != "peer" {
            bail!("expected a `peer` reply, got {reply:?}");
        }
        peer.server_peer_id = reply.sender_id.unwrap_or_default();
        Ok(peer)
    }

    pub async fn send_bytes(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.socket.send(Message::Binary(bytes.into())).await?;
        Ok(())
    }

    /// Sends an automerge sync message about `document_id`.
    pub async fn send_sync(&mut self, document_id: &DocumentId, data: &[u8]) -> anyhow::Result<()> {
        let message = sync_message(
            &self.peer_id,
            &self.server_peer_id,
            &document_id.to_string(),
            data,
        );
        self.send_bytes(message).await
    }

    /// The next protocol message, or `None` once the server closed the connection.
    pub async fn next_envelope(&mut self, timeout: Duration) -> anyhow::Result<Option<Envelope>> {
        loop {
            let frame = tokio::time::timeout(timeout, self.socket.next())
                .await
                .context("no message from the server in time")?;
            if let Some(read) = read_frame(frame)? {
                return Ok(read);
            }
        }
    }

    /// The next protocol message however long it takes, or `None` once the
    /// server closed the connection. Cancel-safe: a peer can wait for it in
    /// `tokio::select!` beside something else without losing a message.
    pub async fn receive(&mut self) -> anyhow::Result<Option<Envelope>> {
        loop {
            if let Some(read) = read_frame(self.socket.next().await)? {
                return Ok(read);
            }
        }
    }

    /// Syncs `document_id` from the server into an empty document, as a reader
    /// does: the document once it holds everything the server announced, or
    /// None when the server answers that it has no such document for this peer.
    pub async fn fetch(
        &mut self,
        document_id: &DocumentId,
        timeout: Duration,
    ) -> anyhow::Result<Option<Automerge>> {
        Ok(self
            .fetch_synced(document_id, timeout)
            .await?
            .map(|synced| synced.doc))
    }

    /// [`RawPeer::fetch`], keeping the sync state with the document so that
    /// [`RawPeer::apply_sync`] can go on receiving the document's changes.
    pub async fn fetch_synced(
        &mut self,
        document_id: &DocumentId,
        timeout: Duration,
    ) -> anyhow::Result<Option<SyncedDoc>> {
        let mut synced = SyncedDoc {
            document_id: document_id.clone(),
            doc: Automerge::new(),
            state: automerge_sync::State::new(),
            received_bytes: 0,
        };
        if let Some(message) = synced.doc.generate_sync_message(&mut synced.state) {
            self.send_sync(document_id, &message.encode()).await?;
        }
        loop {
            let envelope = self
                .next_envelope(timeout)
                .await?
                .context("the server closed the connection during the fetch")?;
            match envelope.kind.as_str() {
                "doc-unavailable" => return Ok(None),
                "error" => bail!("the server refused the fetch: {envelope:?}"),
                _ => {
                    if self.apply_sync(&mut synced, &envelope).await? {
                        let heads = synced.doc.get_heads();
                        if !heads.is_empty() && synced.state.their_heads.as_ref() == Some(&heads) {
                            return Ok(Some(synced));
                        }
                    }
                }
            }
        }
    }

    /// If `envelope` is a `sync` message about `synced`'s document, applies it
    /// and sends the reply automerge's sync protocol asks for (if any); true if
    /// it was one. Anything else is left for the caller.
    pub async fn apply_sync(
        &mut self,
        synced: &mut SyncedDoc,
        envelope: &Envelope,
    ) -> anyhow::Result<bool> {
        if envelope.kind != "sync"
            || envelope.document_id.as_deref() != Some(synced.document_id.to_string().as_str())
        {
            return Ok(false);
        }
        let data = envelope
            .data
            .as_deref()
            .context("a sync message carries data")?;
        synced.received_bytes += data.len();
        synced
            .doc
            .receive_sync_message(&mut synced.state, automerge_sync::Message::decode(data)?)?;
        if let Some(reply) = synced.doc.generate_sync_message(&mut synced.state) {
            self.send_sync(&synced.document_id, &reply.encode()).await?;
        }
        Ok(true)
    }

    /// Collects messages until the server closes the connection.
    pub async fn messages_until_closed(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Envelope>> {
        let mut seen = Vec::new();
        while let Some(envelope) = self.next_envelope(timeout).await? {
            seen.push(envelope);
        }
        Ok(seen)
    }
}

/// What one WebSocket frame read means: `Some(Some(_))` a protocol message,
/// `Some(None)` the connection is over, `None` a frame to skip (ping, text).
fn read_frame(
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> anyhow::Result<Option<Option<Envelope>>> {
    match frame {
        None | Some(Ok(Message::Close(_))) | Some(Err(_)) => Ok(Some(None)),
        Some(Ok(Message::Binary(bytes))) => Ok(Some(Some(
            protocol::decode(&bytes, &Limits::default())?.into(),
        ))),
        Some(Ok(_)) => Ok(None),
    }
}

/// A compressed automerge change chunk (type 2) whose deflated body is
/// `compressed_bytes` long and inflates to about 1,032 times that in zeros:
/// a decompression bomb. Built bit by bit, so that a 16 MiB one (16 GiB
/// inflated) costs nothing to make.
pub fn deflate_bomb_chunk(compressed_bytes: usize) -> Vec<u8> {
    let deflated = deflate_bomb(compressed_bytes);
    // Magic bytes, a checksum automerge would only check once inflated, the
    // type (compressed change), the body's length.
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    let mut length = deflated.len();
    loop {
        let low = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            chunk.push(low);
            break;
        }
        chunk.push(low | 0x80);
    }
    chunk.extend(deflated);
    chunk
}

/// One dynamic-Huffman DEFLATE block (RFC 1951) with three literal/length
/// codes — length 258 in one bit, the literal 0 and end-of-block in two —
/// and one distance code (distance 1) in one bit: a zero, then "copy 258
/// bytes from 1 back" in two zero bits, over and over.
pub fn deflate_bomb(compressed_bytes: usize) -> Vec<u8> {
    let mut bits = BitWriter::default();
    bits.number(1, 1); // the last block
    bits.number(2, 2); // dynamic Huffman codes
    bits.number(29, 5); // 286 literal/length codes
    bits.number(0, 5); // one distance code
    bits.number(14, 4); // 18 code-length codes
                        // Code lengths of the code-length alphabet, in RFC 1951's order
                        // (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1):
                        // 18 (a run of zeros) in one bit, the lengths 1 and 2 in two.
    for length in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        bits.number(length, 3);
    }
    // Canonical codes: 18 → 0; 1 → 10; 2 → 11.
    let zeros = |bits: &mut BitWriter, run: u32| {
        bits.code(0b0, 1);
        bits.number(run - 11, 7);
    };
    bits.code(0b11, 2); // literal 0: length 2
    zeros(&mut bits, 138);
    zeros(&mut bits, 117); // literals 1–255: unused
    bits.code(0b11, 2); // end of block: length 2
    zeros(&mut bits, 28); // lengths 257–284: unused
    bits.code(0b10, 2); // length 258 (code 285): length 1
    bits.code(0b10, 2); // distance 1 (code 0): length 1
                        // Canonical codes: 285 → 0; literal 0 → 10; end of block → 11; distance 0 → 0.
    bits.code(0b10, 2); // one zero byte
    let header_bits = bits.bit_length() + 2;
    let copies = (compressed_bytes * 8).saturating_sub(header_bits) / 2;
    bits.zeros(copies * 2); // 258 more zero bytes per copy
    bits.code(0b11, 2); // end of block
    bits.finish()
}

/// Bits into bytes, least significant bit first, as DEFLATE packs them.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn bit(&mut self, bit: bool) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if bit {
            *self.bytes.last_mut().expect("pushed above") |= 1 << self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    /// A number's `count` low bits, least significant first (header fields, extra bits).
    fn number(&mut self, value: u32, count: u32) {
        (0..count).for_each(|i| self.bit(value >> i & 1 == 1));
    }

    /// A Huffman code, most significant bit first.
    fn code(&mut self, code: u32, length: u32) {
        (0..length).rev().for_each(|i| self.bit(code >> i & 1 == 1));
    }

    fn zeros(&mut self, mut count: usize) {
        while count > 0 && self.used != 0 {
            self.bit(false);
            count -= 1;
        }
        self.bytes.resize(self.bytes.len() + count / 8, 0);
        (0..count % 8).for_each(|_| self.bit(false));
    }

    fn bit_length(&self) -> usize {
        self.bytes.len() * 8 - (8 - self.used as usize) % 8
    }

    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// The peer id the server binds a web session's sync connection to.
pub async fn session_peer_id(server: &crate::ServerProcess, token: &str) -> anyhow::Result<String> {
    let (_, me) = server.as_(token).get("/api/me").await?;
    Ok(format!(
        "session-{}",
        me["credential"]["id"].as_str().unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    #[test]
    fn the_bomb_inflates_to_about_a_thousand_times_its_size_in_zeros() {
        let bomb = super::deflate_bomb(4096);
        assert!((4090..=4100).contains(&bomb.len()), "{}", bomb.len());
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(&bomb[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert!(inflated.len() > 1000 * 4096, "{}", inflated.len());
        assert!(inflated.iter().all(|&b| b == 0));
    }
}
