//! samod's storage in PostgreSQL.
//!
//! samod stores a document as chunks under keys like `<doc>/incremental/<hash>`;
//! they live in `automerge_chunks`. A document chunk is stored in one transaction
//! with the inventory rows it changes (see [`crate::materialise`]): the inventory
//! never shows a record that is not stored, nor misses one that is.
//!
//! samod's `Storage` trait cannot return errors: if `put` returns, samod believes
//! the data is stored. So a failing write is retried with backoff; if the
//! database stays unreachable the future never returns, and the server is told
//! to stop (via [`FatalStorageError`]) rather than acknowledge what it could not keep.

use std::{collections::HashMap, future::Future, time::Duration};

use samod::storage::{Storage, StorageKey};
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::Instrument;

use crate::{committed::CommittedDocs, deliveries::Deliveries, materialise};

/// How long storage keeps retrying before the server gives up and stops.
const RETRY_BUDGET: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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
            // All senders gone: storage is dropped, nothing can fail any more.
            Err(_) => std::future::pending().await,
        }
    }
}

/// samod [`Storage`] backed by PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct PgStorage {
    pool: PgPool,
    committed: CommittedDocs,
    /// Who delivered the changes being stored, for their receipts.
    deliveries: Deliveries,
    fatal: FatalStorageError,
}

impl PgStorage {
    pub fn new(
        pool: PgPool,
        committed: CommittedDocs,
        deliveries: Deliveries,
        fatal: FatalStorageError,
    ) -> Self {
        PgStorage {
            pool,
            committed,
            deliveries,
            fatal,
        }
    }

    /// Runs `attempt` until it succeeds; past the retry budget, raises the fatal
    /// error and never returns (samod must not believe a failed write succeeded).
    async fn retrying<T, F, Fut>(&self, what: &str, key: &str, mut attempt: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let started = tokio::time::Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            match attempt().await {
                Ok(value) => return value,
                Err(error) if started.elapsed() < RETRY_BUDGET => {
                    tracing::warn!(what, key, %error, ?backoff, "storage operation failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(error) => {
                    tracing::error!(what, key, %error, "storage operation failed for good");
                    self.fatal.raise(format!("{what} {key}: {error}"));
                    return std::future::pending().await;
                }
            }
        }
    }
}

/// Keys are stored as their components joined by `/` (samod guarantees no
/// component contains one).
fn key_string(key: &StorageKey) -> String {
    key.clone().into_iter().collect::<Vec<_>>().join("/")
}

fn key_from_string(key: &str) -> Option<StorageKey> {
    StorageKey::from_parts(key.split('/')).ok()
}

/// The document a chunk key belongs to: `<doc>/incremental/<hash>` or
/// `<doc>/snapshot/<hash>`.
fn chunk_doc_id(key: &StorageKey) -> Option<String> {
    let parts: Vec<String> = key.clone().into_iter().collect();
    match parts.as_slice() {
        [doc, kind, _] if kind == "incremental" || kind == "snapshot" => Some(doc.clone()),
        _ => None,
    }
}

impl Storage for PgStorage {
    async fn load(&self, key: StorageKey) -> Option<Vec<u8>> {
        let key = key_string(&key);
        self.retrying("load", &key, || async {
            sqlx::query_scalar::<_, Vec<u8>>("SELECT data FROM automerge_chunks WHERE key = $1")
                .bind(&key)
                .fetch_optional(&self.pool)
                .await
        })
        .await
    }

    async fn load_range(&self, prefix: StorageKey) -> HashMap<StorageKey, Vec<u8>> {
        let prefix = key_string(&prefix);
        // Every key under `prefix/` sorts between "prefix/" and "prefix0" in the C
        // collation ('0' follows '/'), so this is an index range scan.
        let (low, high) = if prefix.is_empty() {
            (String::new(), "\u{10FFFF}".to_string())
        } else {
            (format!("{prefix}/"), format!("{prefix}0"))
        };
        let rows: Vec<(String, Vec<u8>)> = self
            .retrying("load_range", &prefix, || async {
                sqlx::query_as(
                    "SELECT key, data FROM automerge_chunks \
                     WHERE (key >= $1 AND key < $2) OR key = $3",
                )
                .bind(&low)
                .bind(&high)
                .bind(&prefix)
                .fetch_all(&self.pool)
                .await
            })
            .await;
        rows.into_iter()
            .filter_map(|(key, data)| key_from_string(&key).map(|key| (key, data)))
            .collect()
    }

    async fn put(&self, key: StorageKey, data: Vec<u8>) {
        let key_text = key_string(&key);
        match chunk_doc_id(&key) {
            Some(doc_id) => {
                let span = tracing::info_span!("store_chunk", doc_id = %doc_id, key = %key_text);
                let storage = self.clone();
                // Materialisation is CPU work on the document; run it as its own
                // task rather than on samod's single storage loop.
                let task = tokio::spawn(
                    async move {
                        storage
                            .retrying("put", &key_text, || {
                                materialise::store_chunk(
                                    &storage.committed,
                                    &storage.deliveries,
                                    &doc_id,
                                    &key_text,
                                    &data,
                                )
                            })
                            .await
                    }
                    .instrument(span),
                );
                task.await.expect("storing a chunk panicked");
            }
            None => {
                self.retrying("put", &key_text, || async {
                    sqlx::query(
                        "INSERT INTO automerge_chunks (key, data) VALUES ($1, $2) \
                         ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data",
                    )
                    .bind(&key_text)
                    .bind(&data)
                    .execute(&self.pool)
                    .await
                })
                .await;
            }
        }
    }

    async fn delete(&self, key: StorageKey) {
        // samod deletes incremental chunks only after the snapshot that contains
        // them is stored, so the document's content is unchanged by this.
        let key = key_string(&key);
        self.retrying("delete", &key, || async {
            sqlx::query("DELETE FROM automerge_chunks WHERE key = $1")
                .bind(&key)
                .execute(&self.pool)
                .await
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_name_their_document() {
        let key = StorageKey::from_parts(["4Nx", "incremental", "abc"]).unwrap();
        assert_eq!(chunk_doc_id(&key).as_deref(), Some("4Nx"));
        let key = StorageKey::from_parts(["4Nx", "snapshot", "abc"]).unwrap();
        assert_eq!(chunk_doc_id(&key).as_deref(), Some("4Nx"));
        let key = StorageKey::from_parts(["storage-adapter-id"]).unwrap();
        assert_eq!(chunk_doc_id(&key), None);
    }

    #[test]
    fn keys_round_trip_through_their_text_form() {
        let key = StorageKey::from_parts(["doc", "incremental", "hash"]).unwrap();
        assert_eq!(key_string(&key), "doc/incremental/hash");
        assert_eq!(key_from_string("doc/incremental/hash"), Some(key));
    }
}
