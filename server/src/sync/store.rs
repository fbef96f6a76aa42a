//! Documents in PostgreSQL: loading one, and committing accepted changes with
//! group commit.
//!
//! A document's changes live as chunks in `automerge_chunks` under keys
//! `<doc>/incremental/<hash>` (and `<doc>/snapshot/<hash>` once
//! [`super::compaction`] merged them): all of a document's chunks loaded
//! together are the document. Accepted changes are stored as one chunk with
//! the inventory rows they change, the receipts naming who delivered them,
//! and a `NOTIFY` telling the other server processes, all in one transaction.
//!
//! Document owners hand their commits to a few committer tasks; a committer
//! takes every commit waiting (up to [`MAX_GROUP`]) into one transaction, each
//! in a savepoint of its own, so a storm of phones shares transactions and one
//! document's failure does not undo the others'.

use std::{sync::Arc, time::Duration};

use automerge::ChangeHash;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use sqlx::{Acquire, PgPool, Postgres, Transaction};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;
use uuid::Uuid;

use super::access::Delivery;
use crate::{
    audit,
    auth::Credential,
    inventory::materialise::{self, CommittedDoc, DocumentKind, Fingerprints, DEFAULT_TERRITORY},
    notifications::{DocumentCommitted, DOCUMENT_COMMITTED_CHANNEL},
    telemetry,
};

/// Commits one transaction takes at most.
const MAX_GROUP: usize = 64;
/// Committer tasks: each holds one database connection while it commits.
const COMMITTERS: usize = 4;
/// Commits waiting for a committer; past it, document owners wait to hand
/// theirs over (and their connections wait in turn): back-pressure.
const QUEUE: usize = 1024;
/// How long a committer retries a transaction that fails as a whole (the
/// database unreachable) before storage is taken for gone.
const RETRY_BUDGET: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Accepted changes of one document, to be stored.
pub struct Commit {
    pub doc_id: String,
    /// The document with the changes applied, at the revision it was loaded at.
    pub doc: CommittedDoc,
    /// The new changes, as one chunk.
    pub chunk: Vec<u8>,
    /// Who delivered each new change.
    pub receipts: Vec<(ChangeHash, Delivery)>,
    /// `review_history` rows the change carries (a coordinator's resolution):
    /// stored with it or not at all.
    pub history: Vec<Json>,
    pub done: oneshot::Sender<Committed>,
}

/// What became of a [`Commit`].
pub enum Committed {
    /// Stored: the document at its new revision.
    Stored(Box<CommittedDoc>),
    /// Another server process committed to the document since it was loaded:
    /// nothing stored; reload it and judge the changes again.
    Stale,
    /// Not stored, for this reason (the document's other state is unknown:
    /// reload it).
    Failed(String),
}

/// Raised once when storage failed for good; the server stops on it.
#[derive(Clone)]
pub struct FatalStorageError(watch::Sender<Option<String>>);

/// The receiving side of [`FatalStorageError`].
pub struct FatalStorageReceiver(watch::Receiver<Option<String>>);

impl FatalStorageError {
    pub fn channel() -> (FatalStorageError, FatalStorageReceiver) {
        let (tx, rx) = watch::channel(None);
        (FatalStorageError(tx), FatalStorageReceiver(rx))
    }

    fn raise(&self, reason: String) {
        self.0.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }
}

impl FatalStorageReceiver {
    /// Resolves with the reason once storage has failed for good.
    pub async fn wait(&mut self) -> String {
        match self.0.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // All senders gone: nothing can fail any more.
            Err(_) => std::future::pending().await,
        }
    }
}

/// Hands commits to the committer tasks. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    queue: mpsc::Sender<Commit>,
}

impl Store {
    /// Starts the committers; they stop once every `Store` is dropped and the
    /// queue is drained.
    pub fn start(pool: PgPool, process_id: Uuid, fatal: FatalStorageError) -> Store {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..COMMITTERS {
            let committer = Committer {
                pool: pool.clone(),
                process_id,
                fatal: fatal.clone(),
            };
            tokio::spawn(committer.run(receiver.clone()));
        }
        Store { pool, queue }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Stores `commit` (waiting for room in the queue when committers are behind).
    pub async fn commit(&self, commit: Commit) {
        if let Err(mpsc::error::SendError(commit)) = self.queue.send(commit).await {
            let _ = commit
                .done
                .send(Committed::Failed("the server is stopping".into()));
        }
    }

    /// Loads a document as committed (empty at revision 0 if never stored).
    pub async fn load(&self, doc_id: &str) -> Result<CommittedDoc, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        materialise::load_committed(&mut conn, doc_id).await
    }

    /// The document's revision in the database (0 if not stored).
    pub async fn revision(&self, doc_id: &str) -> Result<i64, sqlx::Error> {
        let revision = sqlx::query_scalar("SELECT revision FROM documents WHERE doc_id = $1")
            .bind(doc_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(revision.unwrap_or(0))
    }

    /// The storage id this server announces in `peer`: one per database, as
    /// all its processes hold the same documents (kept under the key earlier
    /// versions used, so an installation keeps the id it had).
    pub async fn storage_id(&self) -> Result<String, sqlx::Error> {
        let fresh = Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO automerge_chunks (key, data) VALUES ('storage-adapter-id', $1) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(fresh.as_bytes())
        .execute(&self.pool)
        .await?;
        let stored: Vec<u8> = sqlx::query_scalar(
            "SELECT data FROM automerge_chunks WHERE key = 'storage-adapter-id'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(String::from_utf8(stored).unwrap_or(fresh))
    }
}

struct Committer {
    pool: PgPool,
    process_id: Uuid,
    fatal: FatalStorageError,
}

impl Committer {
    async fn run(self, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Commit>>>) {
        loop {
            let group = {
                let mut queue = queue.lock().await;
                let Some(first) = queue.recv().await else {
                    return;
                };
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match queue.try_recv() {
                        Ok(commit) => group.push(commit),
                        Err(_) => break,
                    }
                }
                group
            };
            let span = tracing::debug_span!("group_commit", documents = group.len());
            self.commit_group(group).instrument(span).await;
        }
    }

    /// Commits `group` in one transaction, retrying it while the database is
    /// unreachable; past [`RETRY_BUDGET`] storage is taken for gone.
    async fn commit_group(&self, mut group: Vec<Commit>) {
        // One order for every group, so that two processes' groups lock
        // documents in the same order.
        group.sort_by(|a, b| a.doc_id.cmp(&b.doc_id));
        let started = tokio::time::Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let before: Vec<_> = group
                .iter()
                .map(|c| (c.doc.revision, c.doc.header))
                .collect();
            match self.try_group(&mut group).await {
                Ok(outcomes) => {
                    let stored = outcomes
                        .iter()
                        .filter(|outcome| matches!(outcome, Outcome::Stored))
                        .count();
                    metrics::counter!(telemetry::COMMITS).increment(stored as u64);
                    metrics::histogram!(telemetry::COMMIT_SECONDS)
                        .record(started.elapsed().as_secs_f64());
                    for (commit, outcome) in group.into_iter().zip(outcomes) {
                        let result = match outcome {
                            Outcome::Stored => Committed::Stored(Box::new(commit.doc)),
                            Outcome::Stale => Committed::Stale,
                            Outcome::Failed(reason) => Committed::Failed(reason),
                        };
                        let _ = commit.done.send(result);
                    }
                    return;
                }
                Err(error) => {
                    // Nothing of the transaction holds: what materialisation
                    // believed written is not.
                    for (commit, (revision, header)) in group.iter_mut().zip(before) {
                        commit.doc.revision = revision;
                        commit.doc.header = header;
                        commit.doc.fingerprints = Fingerprints::default();
                    }
                    if started.elapsed() >= RETRY_BUDGET {
                        tracing::error!(%error, "storing changes failed for good");
                        self.fatal.raise(format!("committing changes: {error}"));
                        for commit in group {
                            let _ = commit
                                .done
                                .send(Committed::Failed("storage is unavailable".into()));
                        }
                        return;
                    }
                    tracing::warn!(%error, ?backoff, "committing changes failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn try_group(&self, group: &mut [Commit]) -> Result<Vec<Outcome>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(group.len());
        let mut audited = Vec::new();
        for commit in group.iter_mut() {
            let mut savepoint = (&mut *tx).begin().await?;
            let span = tracing::debug_span!("store", doc_id = %commit.doc_id);
            let mut accepted = None;
            match self
                .store(&mut savepoint, commit, &mut accepted)
                .instrument(span)
                .await
            {
                Ok(outcome @ Outcome::Stored) => {
                    savepoint.commit().await?;
                    audited.extend(accepted);
                    outcomes.push(outcome);
                }
                Ok(outcome) => {
                    savepoint.rollback().await?;
                    outcomes.push(outcome);
                }
                Err(error) => {
                    // A broken connection fails the rollback too, and with it
                    // the whole group (retried); a statement that failed fails
                    // this document only.
                    savepoint.rollback().await?;
                    tracing::error!(doc_id = %commit.doc_id, %error, "storing a document's changes failed");
                    outcomes.push(Outcome::Failed(format!(
                        "the server could not store these changes: {error}"
                    )));
                }
            }
        }
        // The group's accepted changes, queued for the audit trail in one
        // statement: committed with the changes, written out as entries in
        // the background (`audit::trail::write_out`).
        audit::trail::queue(&mut tx, audited).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn store(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        commit: &mut Commit,
        accepted: &mut Option<audit::trail::AcceptedCommit>,
    ) -> Result<Outcome, sqlx::Error> {
        let doc_id = commit.doc_id.as_str();
        sqlx::query(
            "INSERT INTO documents (doc_id, territory_id) VALUES ($1, $2) ON CONFLICT (doc_id) DO NOTHING",
        )
        .bind(doc_id)
        .bind(DEFAULT_TERRITORY)
        .execute(&mut **tx)
        .await?;
        // The row lock serialises writers of this document across server processes.
        let revision: i64 =
            sqlx::query_scalar("SELECT revision FROM documents WHERE doc_id = $1 FOR UPDATE")
                .bind(doc_id)
                .fetch_one(&mut **tx)
                .await?;
        if revision != commit.doc.revision {
            return Ok(Outcome::Stale);
        }
        let key = format!("{doc_id}/incremental/{:x}", Sha256::digest(&commit.chunk));
        sqlx::query(
            "INSERT INTO automerge_chunks (key, doc_id, data) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(&key)
        .bind(doc_id)
        .bind(&commit.chunk)
        .execute(&mut **tx)
        .await?;
        commit.doc.revision = revision + 1;
        materialise::materialise(tx, doc_id, &mut commit.doc).await?;
        store_receipts(tx, doc_id, &commit.receipts).await?;
        if commit.doc.kind == DocumentKind::Notebook && !commit.receipts.is_empty() {
            *accepted = Some(audit::trail::AcceptedCommit {
                territory: commit
                    .doc
                    .header
                    .map_or(DEFAULT_TERRITORY, |header| header.territory_id),
                doc_id: doc_id.to_string(),
                chunk_key: key.clone(),
                heads: commit
                    .doc
                    .doc
                    .get_heads()
                    .iter()
                    .map(|h| h.to_string())
                    .collect(),
                changes: commit
                    .receipts
                    .iter()
                    .map(|(hash, _)| hash.to_string())
                    .collect(),
            });
        }
        if !commit.history.is_empty() {
            crate::history::append(tx, &commit.history).await?;
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(DOCUMENT_COMMITTED_CHANNEL)
            .bind(DocumentCommitted::payload(
                doc_id,
                commit.doc.revision,
                self.process_id,
            ))
            .execute(&mut **tx)
            .await?;
        tracing::debug!(revision = commit.doc.revision, key, "changes stored");
        Ok(Outcome::Stored)
    }
}

enum Outcome {
    Stored,
    Stale,
    Failed(String),
}

/// Records who delivered each stored change.
async fn store_receipts(
    tx: &mut Transaction<'_, Postgres>,
    doc_id: &str,
    receipts: &[(ChangeHash, Delivery)],
) -> Result<(), sqlx::Error> {
    if receipts.is_empty() {
        return Ok(());
    }
    let rows: Vec<Json> = receipts
        .iter()
        .map(|(hash, delivery)| {
            let (device, session) = match delivery.credential {
                Credential::Device { device_id } => (Some(device_id), None),
                Credential::Session { session_id } => (None, Some(session_id)),
            };
            json!({"hash": hash.to_string(), "account": delivery.account_id,
                   "device": device, "session": session})
        })
        .collect();
    sqlx::query(
        "INSERT INTO change_receipts (doc_id, change_hash, account_id, device_id, session_id) \
         SELECT $1, r.hash, r.account, r.device, r.session \
         FROM jsonb_to_recordset($2) AS r(hash text, account uuid, device uuid, session uuid) \
         ON CONFLICT (doc_id, change_hash) DO NOTHING",
    )
    .bind(doc_id)
    .bind(Json::Array(rows))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
