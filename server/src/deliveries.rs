//! Which credential delivered each accepted change, from the moment the sync
//! judge accepts it until storage commits it, so the receipt stored with a
//! change names the device (or session) whose connection sent it — the
//! server's own knowledge, not the `deviceId` a record claims.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use automerge::ChangeHash;
use uuid::Uuid;

use crate::auth::Credential;

/// An accepted change that samod never stores (its connection closed first)
/// is forgotten after this long.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// Who sent a change: the account and the credential of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub account_id: Uuid,
    pub credential: Credential,
}

/// Shared by the sync judge (which records) and storage (which reads and
/// forgets once committed). Cheap to clone; a std mutex never held across an await.
#[derive(Clone, Default)]
pub struct Deliveries(Arc<Mutex<HashMap<ChangeHash, (Delivery, Instant)>>>);

impl Deliveries {
    /// Records that `hashes` were accepted from `delivery`'s connection.
    pub fn accepted(&self, hashes: &[ChangeHash], delivery: &Delivery) {
        if hashes.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut map = self.0.lock().expect("deliveries poisoned");
        map.retain(|_, (_, at)| now.duration_since(*at) < FORGET_AFTER);
        for hash in hashes {
            map.insert(*hash, (delivery.clone(), now));
        }
    }

    /// Who delivered each of `hashes`, for those known.
    pub fn of(&self, hashes: &[ChangeHash]) -> Vec<(ChangeHash, Delivery)> {
        let map = self.0.lock().expect("deliveries poisoned");
        hashes
            .iter()
            .filter_map(|hash| map.get(hash).map(|(delivery, _)| (*hash, delivery.clone())))
            .collect()
    }

    /// Forgets `hashes` once their receipts are committed.
    pub fn forget(&self, hashes: &[ChangeHash]) {
        let mut map = self.0.lock().expect("deliveries poisoned");
        for hash in hashes {
            map.remove(hash);
        }
    }
}
