//! A simulated phone: one volunteer's notebook, edited offline, synced on demand.
//!
//! No store and no capture API: an in-memory repo the end-to-end tests and the
//! load generators (`tests/src/bin`) drive. Built only with the
//! `simulated-phone` feature, which the tests crate enables; apps and `fieldkit`
//! use [`crate::Device`].

use std::{sync::Arc, time::Duration};

use automerge::{Automerge, ChangeHash};
use samod::{BackoffConfig, DialerHandle, DocHandle, DocumentId, Repo};
use schemas::{FieldRecord, RecordKind};
use serde_json::Value as Json;
use sync::documents::{
    new_notebook, put_raw_record, put_record,
    review::{read_decisions, DecisionEntry},
    set_field, NotebookHeader, WriteError,
};
use url::Url;
use uuid::Uuid;

use crate::{
    credential::DeviceCredential,
    repo_runtime::RepoRuntime,
    sync_client,
    ws_dialer::{InvalidCredential, WireCounters},
};

#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone's repo has stopped")]
    Stopped,
    #[error("could not connect to {url}: {reason}")]
    Connect { url: Url, reason: String },
    #[error("the phone is offline")]
    Offline,
    #[error("the server did not confirm the notebook within {0:?}")]
    SyncTimeout(Duration),
    #[error("document {0} is not available from the server")]
    NotFound(DocumentId),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// One device holding one notebook.
pub struct Phone {
    repo: Repo,
    runtime: RepoRuntime,
    notebook: DocHandle,
    counters: Arc<WireCounters>,
    credential: Option<DeviceCredential>,
    dialer: Option<DialerHandle<InvalidCredential>>,
}

/// A repo whose peer id is the one the server expects for `credential`.
async fn new_repo(credential: Option<&DeviceCredential>) -> (Repo, RepoRuntime) {
    let runtime = RepoRuntime::current();
    let builder = runtime.repo_builder();
    let repo = match credential {
        Some(credential) => builder.with_peer_id(credential.peer_id()).load().await,
        None => builder.load().await,
    };
    (repo, runtime)
}

impl Phone {
    /// A phone that starts a new notebook without any network. Without a
    /// credential it can record but only sync with servers that ask for none.
    pub async fn new_notebook(
        header: NotebookHeader,
        credential: Option<DeviceCredential>,
    ) -> Result<Phone, PhoneError> {
        let (repo, runtime) = new_repo(credential.as_ref()).await;
        let notebook = repo
            .create(new_notebook(header))
            .await
            .map_err(|_| PhoneError::Stopped)?;
        Ok(Phone {
            repo,
            runtime,
            notebook,
            counters: Arc::default(),
            credential,
            dialer: None,
        })
    }

    /// A second device of the same volunteer: fetches an existing notebook from
    /// the server (online), after which it can work offline too.
    pub async fn fetch_notebook(
        url: &Url,
        credential: Option<DeviceCredential>,
        notebook: DocumentId,
    ) -> Result<Phone, PhoneError> {
        let (repo, runtime) = new_repo(credential.as_ref()).await;
        let counters = Arc::<WireCounters>::default();
        let dialer = dial(&repo, &runtime, url, credential.as_ref(), counters.clone()).await?;
        let handle = repo
            .find(notebook.clone())
            .await
            .map_err(|_| PhoneError::Stopped)?
            .ok_or(PhoneError::NotFound(notebook))?;
        Ok(Phone {
            repo,
            runtime,
            notebook: handle,
            counters,
            credential,
            dialer: Some(dialer),
        })
    }

    pub fn notebook_id(&self) -> DocumentId {
        self.notebook.document_id().clone()
    }

    /// Records (or replaces) a typed record.
    pub fn record<R: FieldRecord>(&self, record: &R) -> Result<(), PhoneError> {
        self.notebook
            .with_document(|doc| put_record(doc, record))
            .map_err(PhoneError::from)
    }

    /// Records exactly what was typed, even if it fails validation.
    pub fn record_raw(&self, kind: RecordKind, key: &str, raw: &Json) -> Result<(), PhoneError> {
        self.notebook
            .with_document(|doc| put_raw_record(doc, kind, key, raw))
            .map_err(PhoneError::from)
    }

    /// Edits one field of a record.
    pub fn edit(
        &self,
        kind: RecordKind,
        id: Uuid,
        field: &str,
        value: &Json,
    ) -> Result<(), PhoneError> {
        self.notebook
            .with_document(|doc| set_field(doc, kind, id, field, value))
            .map_err(PhoneError::from)
    }

    /// A read-only look at the notebook.
    pub fn read<T>(&self, f: impl FnOnce(&Automerge) -> T) -> T {
        self.notebook.with_document(|doc| f(doc))
    }

    /// The coordinators' decisions about this volunteer's records, from
    /// their review document (its id: `GET /api/territories/{id}/review-document`).
    /// The first call fetches it (online); from then on the repo keeps it in
    /// sync with the notebook, and it reads offline too.
    pub async fn decisions(
        &self,
        review_document: DocumentId,
    ) -> Result<Vec<DecisionEntry>, PhoneError> {
        let handle = self
            .repo
            .find(review_document.clone())
            .await
            .map_err(|_| PhoneError::Stopped)?
            .ok_or(PhoneError::NotFound(review_document))?;
        Ok(handle.with_document(|doc| read_decisions(doc)))
    }

    pub fn heads(&self) -> Vec<ChangeHash> {
        self.read(|doc| doc.get_heads())
    }

    /// Connects to the server at `url` (e.g. `ws://host/sync`).
    pub async fn go_online(&mut self, url: &Url) -> Result<(), PhoneError> {
        if self.dialer.is_none() {
            self.dialer = Some(
                dial(
                    &self.repo,
                    &self.runtime,
                    url,
                    self.credential.as_ref(),
                    self.counters.clone(),
                )
                .await?,
            );
        }
        Ok(())
    }

    /// Drops the connection; edits go on offline.
    pub fn go_offline(&mut self) {
        if let Some(dialer) = self.dialer.take() {
            dialer.close();
        }
    }

    /// Waits until the server has confirmed holding everything this phone has.
    /// The server confirms only what it has committed to its database.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<(), PhoneError> {
        let dialer = self.dialer.as_ref().ok_or(PhoneError::Offline)?;
        let connection = dialer.connection_id().ok_or(PhoneError::Offline)?;
        tokio::time::timeout(timeout, self.notebook.they_have_our_changes(connection))
            .await
            .map_err(|_| PhoneError::SyncTimeout(timeout))
    }

    /// Bytes sent and received over the network so far.
    pub fn wire(&self) -> &WireCounters {
        &self.counters
    }

    pub async fn shut_down(mut self) {
        self.go_offline();
        self.repo.stop().await;
    }
}

/// Dials with few retries and waits for the connection: a test phone that
/// cannot reach its server should fail the test, not retry forever.
async fn dial(
    repo: &Repo,
    runtime: &RepoRuntime,
    url: &Url,
    credential: Option<&DeviceCredential>,
    counters: Arc<WireCounters>,
) -> Result<DialerHandle<InvalidCredential>, PhoneError> {
    let backoff = BackoffConfig {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(5),
        max_retries: Some(20),
    };
    let dialer = sync_client::dial(repo, runtime, url, credential, counters, backoff)
        .map_err(|_| PhoneError::Stopped)?;
    dialer
        .established()
        .await
        .map_err(|error| PhoneError::Connect {
            url: url.clone(),
            reason: format!("{error:?}"),
        })?;
    Ok(dialer)
}
