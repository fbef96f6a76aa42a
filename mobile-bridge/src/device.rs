//! A phone as an app sees it: an enrolled device with its store, its notebook
//! and its sync client. Capture methods are in [`crate::capture`].

use std::{path::Path, sync::Arc, time::Duration};

use samod::{BackoffConfig, DocHandle, DocumentId, Repo};
use serde::Deserialize;
use serde_json::json;
use sync::documents::{new_notebook, NotebookHeader};
use tokio::sync::watch;
use url::Url;
use uuid::Uuid;

use crate::{
    credential::DeviceCredential,
    pending::{known_heads, pending_records, PendingRecord},
    repo_runtime::RepoRuntime,
    store::{Identity, Store, StoreError},
    sync_client::{sync_url, PendingPhotos, SyncClient, SyncStatus, SyncTimeout, DEFAULT_BACKOFF},
    ws_dialer::WireCounters,
};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "this phone is not enrolled yet (no identity in {0}): enrol it with an invitation code"
    )]
    NotEnrolled(String),
    #[error("this phone is already enrolled (as device {0}); use a new store to enrol again")]
    AlreadyEnrolled(Uuid),
    #[error("could not reach {url}: {reason}")]
    Unreachable { url: Url, reason: String },
    #[error("the server refused the enrolment ({status}): {message}")]
    EnrolmentRefused { status: u16, message: String },
    #[error("the sync client has stopped")]
    Stopped,
    #[error(transparent)]
    SyncTimeout(#[from] SyncTimeout),
}

impl From<samod::Stopped> for DeviceError {
    fn from(_: samod::Stopped) -> Self {
        DeviceError::Stopped
    }
}

/// An enrolled phone with its notebook. Capture calls are synchronous and return
/// once the change is on disk; they need a tokio runtime only through `open`.
pub struct Device {
    pub(crate) store: Store,
    pub(crate) identity: Identity,
    repo: Repo,
    /// What `repo`'s tasks run on; dialing goes through it.
    runtime: RepoRuntime,
    pub(crate) notebook: DocHandle,
    pub(crate) sync: SyncClient,
    backoff: BackoffConfig,
}

/// The server's answer to `POST /api/enrol`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Enrolled {
    account_id: Uuid,
    device_id: Uuid,
    credential: String,
    territory_id: Uuid,
}

impl Device {
    /// Redeems an invitation `code` at `server` (its base URL, e.g.
    /// `https://nature.example.org`) and stores the identity in `dir`.
    /// `volunteer_name` fills `recordedBy` on sightings.
    pub async fn enrol(
        dir: &Path,
        server: &Url,
        code: &str,
        device_name: &str,
        volunteer_name: Option<&str>,
    ) -> Result<Device, DeviceError> {
        let store = Store::open(dir)?;
        if let Some(identity) = store.identity()? {
            return Err(DeviceError::AlreadyEnrolled(identity.credential.device_id));
        }
        let url = server
            .join("api/enrol")
            .map_err(|e| DeviceError::Unreachable {
                url: server.clone(),
                reason: e.to_string(),
            })?;
        let unreachable = |e: reqwest::Error| DeviceError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let response = reqwest::Client::new()
            .post(url.clone())
            .json(&json!({ "code": code, "deviceName": device_name }))
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("no explanation given")
                .to_string();
            return Err(DeviceError::EnrolmentRefused {
                status: status.as_u16(),
                message,
            });
        }
        let enrolled: Enrolled = response.json().await.map_err(unreachable)?;
        store.save_identity(&Identity {
            server: server.clone(),
            account_id: enrolled.account_id,
            territory_id: enrolled.territory_id,
            device_name: device_name.to_string(),
            volunteer_name: volunteer_name.map(str::to_string),
            credential: DeviceCredential {
                device_id: enrolled.device_id,
                secret: enrolled.credential,
            },
        })?;
        Device::open(dir).await
    }

    /// Opens an enrolled phone's store: loads its notebook (creating it on first
    /// use) into a sync client that stays offline until [`Device::go_online`].
    pub async fn open(dir: &Path) -> Result<Device, DeviceError> {
        let store = Store::open(dir)?;
        let identity = store
            .identity()?
            .ok_or_else(|| DeviceError::NotEnrolled(dir.display().to_string()))?;
        let header = NotebookHeader {
            territory_id: identity.territory_id,
            owner_id: identity.account_id,
        };
        let id = match store.find_notebook(header) {
            Some(id) => id,
            None => store.create_notebook(&mut new_notebook(header))?,
        };
        let runtime = RepoRuntime::current();
        let repo = runtime
            .repo_builder()
            .with_storage(store.clone())
            .with_peer_id(identity.credential.peer_id())
            .load()
            .await;
        let notebook = repo
            .find(id.clone())
            .await?
            .ok_or(StoreError::UnknownNotebook(id))?;
        let sync = SyncClient::new(store.clone(), notebook.clone())?;
        Ok(Device {
            store,
            identity,
            repo,
            runtime,
            notebook,
            sync,
            backoff: DEFAULT_BACKOFF,
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn notebook_id(&self) -> DocumentId {
        self.notebook.document_id().clone()
    }

    /// Replaces the reconnection policy (takes effect at the next `go_online`).
    pub fn set_backoff(&mut self, backoff: BackoffConfig) {
        self.backoff = backoff;
    }

    /// Starts syncing in the background: connects when the network allows,
    /// reconnects with backoff, and keeps the status up to date. Returns at once.
    pub fn go_online(&mut self) -> Result<(), DeviceError> {
        let url = sync_url(&self.identity.server);
        self.sync.go_online(
            &self.repo,
            &self.runtime,
            &url,
            &self.identity.credential,
            self.backoff.clone(),
        )?;
        Ok(())
    }

    /// Stops syncing; capture goes on.
    pub fn go_offline(&mut self) {
        self.sync.go_offline();
    }

    /// Goes online if needed and waits until the server acknowledged everything
    /// this phone holds (or `timeout` passes).
    pub async fn sync(&mut self, timeout: Duration) -> Result<SyncStatus, DeviceError> {
        self.start_sync(timeout)?.await
    }

    /// Goes online if needed and returns the wait for the server's
    /// acknowledgement of everything this phone holds, which does not hold the
    /// device: an app records while it waits.
    pub fn start_sync(
        &mut self,
        timeout: Duration,
    ) -> Result<
        impl std::future::Future<Output = Result<SyncStatus, DeviceError>> + Send + 'static,
        DeviceError,
    > {
        if !self.sync.is_online() {
            self.go_online()?;
        }
        let synced = self.sync.synced(timeout);
        Ok(async move { Ok(synced.await?) })
    }

    /// Records the server has not acknowledged in their latest state.
    pub fn pending(&self) -> Result<Vec<PendingRecord>, StoreError> {
        let acknowledged = self.store.sync_state(self.notebook.document_id())?;
        Ok(self.notebook.with_document(|doc| {
            let heads = known_heads(doc, &acknowledged.acknowledged_heads);
            pending_records(doc, &heads)
        }))
    }

    /// The current sync status. `pending_records` is counted now rather than
    /// taken from the last batched update, so it is exact right after a capture.
    pub fn sync_status(&self) -> SyncStatus {
        let mut status = self.sync.status();
        if let Ok(pending) = self.pending() {
            status.pending_records = pending.len();
        }
        status
    }

    /// A channel that changes whenever the sync status does.
    pub fn subscribe_status(&self) -> watch::Receiver<SyncStatus> {
        self.sync.subscribe()
    }

    /// Where the photo queue reports how many photos wait for upload.
    pub fn set_pending_photos(&self, source: Arc<dyn PendingPhotos>) {
        self.sync.set_pending_photos(source);
    }

    /// Bytes sent and received over the network so far.
    pub fn wire(&self) -> &WireCounters {
        self.sync.counters()
    }

    /// The store this device writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Disconnects and stops the sync client; everything captured is on disk already.
    pub async fn shut_down(mut self) {
        self.sync.go_offline();
        self.repo.stop().await;
    }
}
