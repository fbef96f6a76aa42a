//! A samod [`Dialer`] over `tokio-tungstenite`, counting the bytes it moves.
//!
//! samod's own tungstenite dialer pulls in native TLS; a phone library needs a
//! dialer it controls anyway (credentials on the upgrade request, byte counts for
//! the user's data plan), so it has its own.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use futures::{future::BoxFuture, SinkExt, StreamExt, TryStreamExt};
use samod::{DialError, Dialer, Transport};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
use url::Url;

/// Bytes of automerge-repo messages sent and received, over every connection of a dialer.
#[derive(Debug, Default)]
pub struct WireCounters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

impl WireCounters {
    pub fn total(&self) -> u64 {
        self.sent.load(Ordering::Relaxed) + self.received.load(Ordering::Relaxed)
    }
}

pub struct WsDialer {
    url: Url,
    /// Sent as `Authorization: Bearer …` on the upgrade request.
    credential: Option<String>,
    counters: Arc<WireCounters>,
}

impl WsDialer {
    pub fn new(url: Url, credential: Option<String>, counters: Arc<WireCounters>) -> Self {
        WsDialer {
            url,
            credential,
            counters,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("websocket: {0}")]
struct WsError(#[from] tokio_tungstenite::tungstenite::Error);

/// A credential that cannot be sent as a header value: retrying cannot help.
#[derive(Debug, thiserror::Error)]
#[error("the device credential is not a valid header value")]
pub struct InvalidCredential;

impl Dialer for WsDialer {
    type Error = InvalidCredential;

    fn url(&self) -> Url {
        self.url.clone()
    }

    fn connect(&self) -> BoxFuture<'static, Result<Transport, DialError<InvalidCredential>>> {
        let url = self.url.clone();
        let credential = self.credential.clone();
        let counters = self.counters.clone();
        Box::pin(async move {
            let mut request = url
                .as_str()
                .into_client_request()
                .map_err(|error| DialError::transient(WsError(error)))?;
            if let Some(credential) = credential {
                let value = format!("Bearer {credential}")
                    .parse()
                    .map_err(|_| DialError::PermanentFailure(InvalidCredential))?;
                request.headers_mut().insert("authorization", value);
            }
            let (socket, _response) = tokio_tungstenite::connect_async(request)
                .await
                .map_err(|error| DialError::transient(WsError(error)))?;
            let (sink, stream) = socket.split();
            let received = counters.clone();
            let incoming = stream
                .map_err(WsError)
                .try_filter_map(move |message| {
                    let received = received.clone();
                    async move {
                        Ok(match message {
                            Message::Binary(bytes) => {
                                received
                                    .received
                                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                                Some(bytes.to_vec())
                            }
                            _ => None,
                        })
                    }
                })
                .boxed();
            let outgoing = sink.sink_map_err(WsError).with(move |bytes: Vec<u8>| {
                counters
                    .sent
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                futures::future::ready(Ok::<_, WsError>(Message::Binary(bytes.into())))
            });
            Ok(Transport::new(incoming, Box::pin(outgoing)))
        })
    }
}
