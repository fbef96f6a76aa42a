//! A connected peer as the documents' owners reach it: the queue its
//! messages leave by, and how its connection is closed with a reason.

use std::sync::{Arc, Mutex};

use sync::protocol::Connection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::Principal;

/// Why a connection closes, given once.
#[derive(Default)]
pub(super) struct Closing {
    pub(super) token: CancellationToken,
    pub(super) reason: Mutex<Option<String>>,
}

/// A connected peer, as documents' owners reach it.
pub struct Peer {
    pub connection_id: Uuid,
    pub principal: Principal,
    /// The connection's protocol state after the handshake: its encoders
    /// address messages from this server to this peer.
    pub protocol: Connection,
    pub(super) outgoing: mpsc::Sender<Vec<u8>>,
    pub(super) closing: Arc<Closing>,
}

impl Peer {
    /// Queues `message` for the peer; a peer whose queue is full is not
    /// reading, and is disconnected.
    pub fn send(&self, message: Vec<u8>) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.outgoing.try_send(message) {
            self.close("this connection does not read its messages; reconnect");
        }
    }

    /// Closes the connection, telling the peer `reason`.
    pub fn close(&self, reason: &str) {
        close(&self.closing, reason);
    }

    pub fn is_closed(&self) -> bool {
        self.closing.token.is_cancelled()
    }
}

pub(super) fn close(closing: &Closing, reason: &str) {
    let mut current = closing.reason.lock().expect("closing reason poisoned");
    if current.is_none() && !closing.token.is_cancelled() {
        *current = Some(reason.to_string());
    }
    drop(current);
    closing.token.cancel();
}
