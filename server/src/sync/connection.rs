//! One WebSocket on `/sync`: a reader that checks each message with the
//! protocol engine and hands it to the document it is about, and a writer
//! that sends what the documents' owners queue for this peer.
//!
//! A connection holds at most [`MAX_DOCUMENTS_PER_CONNECTION`] documents open.
//! Its outgoing queue is bounded: a peer that does not read its messages is
//! disconnected rather than let grow the server's memory. Whoever closes the
//! connection (a refusal, a revocation, a protocol error) gives the reason,
//! which the peer receives as an `error` message before the close frame.
//!
//! A peer silent for the ping interval (`SyncSettings::ping_interval`) is
//! sent a WebSocket ping; one that then sends nothing, not even the pong,
//! for as long again is closed: a phone gone out of coverage, or a client
//! holding the socket without reading, does not keep it open for good.

use std::{
    collections::HashSet,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use axum::extract::ws::{Message as Frame, WebSocket};
use futures::{SinkExt, StreamExt};
use sync::protocol::{Connection, DocumentId, Incoming, Limits};
use tokio::{
    sync::{mpsc, Notify},
    time::Instant,
};

use super::{
    access::{peer_id_for, ConnectionRegistration, MAX_DOCUMENTS_PER_CONNECTION},
    document::DocMessage,
    peer::{close, Closing, Peer},
    Hub,
};
use crate::{
    auth::{Credential, Principal},
    telemetry,
};

/// Messages waiting to be written to one peer.
const OUTGOING_QUEUE: usize = 1024;
/// How long writing one message may take before the peer is taken for gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves one authenticated WebSocket until it closes.
pub(super) async fn serve(
    hub: Arc<Hub>,
    socket: WebSocket,
    principal: Principal,
    registration: ConnectionRegistration,
) {
    let connection_id = registration.connection_id();
    let (sink, mut stream) = socket.split();
    let mut protocol = Connection::new(
        hub.local_peer_id.clone(),
        peer_id_for(&principal.credential),
        hub.metadata.clone(),
        Limits::default(),
    );
    let closing = Arc::new(Closing::default());
    let (outgoing, queued) = mpsc::channel(OUTGOING_QUEUE);
    let ping = Arc::new(Notify::new());
    let writer = tokio::spawn(write(
        sink,
        queued,
        closing.clone(),
        protocol.clone(),
        ping.clone(),
    ));
    let ping_interval = hub.settings.ping_interval;
    let silence = tokio::time::sleep(ping_interval);
    tokio::pin!(silence);
    let mut pinged = false;
    let goodbye = match principal.credential {
        Credential::Device { .. } => {
            "this device's credential was revoked, or its account disabled or its roles \
             changed; reconnect to sync with the roles it holds now"
        }
        Credential::Session { .. } => {
            "this session ended (logged out or expired), or its account was disabled or its \
             roles changed; reconnect to sync with the roles it holds now"
        }
    };
    tracing::info!(%connection_id, "sync connection accepted");

    let mut principal = Some(principal);
    let mut peer: Option<Arc<Peer>> = None;
    let mut open: HashSet<DocumentId> = HashSet::new();
    loop {
        let frame = tokio::select! {
            // The silence is heard only when no frame is waiting: a pong
            // already received is never taken for a missing one.
            biased;
            () = registration.revoked.cancelled() => {
                close(&closing, goodbye);
                break;
            }
            () = hub.stopping.cancelled() => {
                close(&closing, "the server is stopping; reconnect in a moment");
                break;
            }
            () = closing.token.cancelled() => break,
            frame = stream.next() => frame,
            () = silence.as_mut() => {
                if pinged {
                    tracing::info!(%connection_id, "a sync peer answered no ping; closing");
                    close(
                        &closing,
                        &format!(
                            "nothing received for {} s after a ping; reconnect",
                            ping_interval.as_secs()
                        ),
                    );
                    break;
                }
                pinged = true;
                ping.notify_one();
                silence.as_mut().reset(Instant::now() + ping_interval);
                continue;
            }
        };
        // Whatever the peer sends shows it is there.
        pinged = false;
        silence.as_mut().reset(Instant::now() + ping_interval);
        let bytes = match frame {
            Some(Ok(Frame::Binary(bytes))) => bytes,
            Some(Ok(Frame::Text(_))) => {
                telemetry::sync_refused("text_frame");
                close(
                    &closing,
                    "text frames are not part of the automerge-repo protocol",
                );
                break;
            }
            Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => continue,
            Some(Ok(Frame::Close(_))) | None => break,
            Some(Err(error)) => {
                tracing::debug!(%connection_id, %error, "sync connection lost");
                break;
            }
        };
        hub.received.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(telemetry::SYNC_MESSAGES_RECEIVED).increment(1);
        let incoming = match protocol.receive(&bytes) {
            Ok(incoming) => incoming,
            Err(error) => {
                tracing::warn!(%connection_id, %error, "closing a sync connection");
                telemetry::sync_refused("protocol");
                close(&closing, &error.to_string());
                break;
            }
        };
        match incoming {
            Incoming::Joined { reply, .. } => {
                if let Some(principal) = principal.take() {
                    peer = Some(Arc::new(Peer {
                        connection_id,
                        principal,
                        protocol: protocol.clone(),
                        outgoing: outgoing.clone(),
                        closing: closing.clone(),
                    }));
                }
                if outgoing.send(reply).await.is_err() {
                    break;
                }
            }
            Incoming::Sync {
                document_id,
                data,
                is_request,
            } => {
                let Some(peer) = &peer else { continue };
                if !open.contains(&document_id) {
                    if open.len() >= MAX_DOCUMENTS_PER_CONNECTION {
                        tracing::warn!(%connection_id, "a connection opens too many documents");
                        telemetry::sync_refused("documents_per_connection");
                        close(
                            &closing,
                            &format!(
                                "this connection holds {MAX_DOCUMENTS_PER_CONNECTION} documents open, \
                                 the limit; close some before opening more"
                            ),
                        );
                        break;
                    }
                    open.insert(document_id);
                }
                let message = DocMessage::Sync {
                    peer: peer.clone(),
                    data,
                    is_request,
                };
                hub.dispatch(document_id, message).await;
            }
            Incoming::DocUnavailable { document_id } => {
                if open.remove(&document_id) {
                    hub.dispatch_if_live(document_id, DocMessage::Left { connection_id })
                        .await;
                }
            }
            Incoming::Ephemeral {
                document_id,
                count,
                session_id,
                data,
            } => {
                let Some(peer) = &peer else { continue };
                if open.contains(&document_id) {
                    let message = DocMessage::Ephemeral {
                        peer: peer.clone(),
                        count,
                        session_id,
                        data,
                    };
                    hub.dispatch_if_live(document_id, message).await;
                }
            }
            // Accepted, not acted on: this server keeps no remote heads.
            Incoming::RemoteSubscriptionChange { .. } | Incoming::RemoteHeadsChanged { .. } => {}
            Incoming::Leave => break,
            Incoming::PeerError { message } => {
                tracing::warn!(%connection_id, %message, "the peer reported an error; closing");
                break;
            }
        }
    }
    for document_id in open {
        hub.dispatch_if_live(document_id, DocMessage::Left { connection_id })
            .await;
    }
    closing.token.cancel();
    drop(outgoing);
    drop(peer);
    let _ = writer.await;
    tracing::info!(%connection_id, "sync connection closed");
    drop(registration);
}

/// Writes queued messages until the connection closes; then what was queued
/// before the close, the `error` naming why (if a reason was given), and
/// the close frame.
async fn write(
    mut sink: futures::stream::SplitSink<WebSocket, Frame>,
    mut queued: mpsc::Receiver<Vec<u8>>,
    closing: Arc<Closing>,
    protocol: Connection,
    ping: Arc<Notify>,
) {
    loop {
        tokio::select! {
            biased;
            message = queued.recv() => match message {
                Some(bytes) => {
                    if !send_frame(&mut sink, Frame::Binary(bytes.into())).await {
                        closing.token.cancel();
                        return;
                    }
                    metrics::counter!(telemetry::SYNC_MESSAGES_SENT).increment(1);
                }
                None => break,
            },
            () = ping.notified() => {
                if !send_frame(&mut sink, Frame::Ping(Default::default())).await {
                    closing.token.cancel();
                    return;
                }
            }
            () = closing.token.cancelled() => break,
        }
    }
    while let Ok(bytes) = queued.try_recv() {
        if !send_frame(&mut sink, Frame::Binary(bytes.into())).await {
            return;
        }
    }
    let reason = closing
        .reason
        .lock()
        .expect("closing reason poisoned")
        .take();
    if let Some(reason) = reason {
        if !send_frame(&mut sink, Frame::Binary(protocol.error(&reason).into())).await {
            return;
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(Frame::Close(None))).await;
}

/// Sends one frame; false if the peer is gone or does not take it in time.
async fn send_frame(sink: &mut futures::stream::SplitSink<WebSocket, Frame>, frame: Frame) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.send(frame)).await,
        Ok(Ok(()))
    )
}
