//! The credential an enrolled phone presents to the server. Its own module
//! because the store keeps it, the sync client dials with it and the device
//! enrols for it: none of them owns it.

use samod::PeerId;
use uuid::Uuid;

/// What a phone received when it was enrolled: its device id and the secret
/// credential it presents to the server. Serialised only into the store's
/// identity file; `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCredential {
    pub device_id: Uuid,
    pub secret: String,
}

impl std::fmt::Debug for DeviceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCredential")
            .field("device_id", &self.device_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl DeviceCredential {
    /// The server binds a device credential to this automerge-repo peer id.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from(format!("device-{}", self.device_id).as_str())
    }
}
