//! What PostgreSQL holds for each document, as this process last committed or read it.
//!
//! Two parts of the server need the committed state of a document, not samod's
//! in-memory one: materialisation (to know which records changed since the
//! inventory was last written) and the acknowledgement gate (to let a sync
//! message leave only when the changes it acknowledges are committed). Both work
//! on a [`CommittedDoc`] behind a per-document async mutex, which also serialises
//! this process's writes to one document before they reach the database lock.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use automerge::Automerge;
use sqlx::{PgConnection, PgPool};
use sync::NotebookHeader;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::materialise::Fingerprints;

/// A document as committed in PostgreSQL at `revision`.
pub struct CommittedDoc {
    pub doc: Automerge,
    /// `documents.revision` this state corresponds to. A different revision in
    /// the database means another server process wrote: reload before use.
    pub revision: i64,
    /// What the inventory holds for each record, so only changed records are rewritten.
    pub fingerprints: Fingerprints,
    /// The header established when the notebook was first seen, if any.
    pub header: Option<NotebookHeader>,
}

/// One document's slot: the committed state (None until loaded, or after a
/// failed write left it unknown) and a signal raised at every commit.
#[derive(Default)]
pub struct DocSlot {
    pub state: tokio::sync::Mutex<Option<CommittedDoc>>,
    pub committed: Notify,
}

/// All slots of this process. Cloning shares them.
#[derive(Clone)]
pub struct CommittedDocs {
    pool: PgPool,
    /// A std mutex: it is held only to look up or insert an `Arc`, never across an await.
    slots: Arc<Mutex<HashMap<String, Arc<DocSlot>>>>,
    /// Territory and owner of documents, for the share policy, which samod
    /// asks about every (document, peer) pair: 40 000 of them when 200 phones
    /// reconnect at once. A std mutex, as `slots`.
    owners: Arc<Mutex<HashMap<String, Arc<OwnerSlot>>>>,
}

/// A document's row as the share policy reads it: None if the server has no
/// such document, else its territory and, once it is a notebook, its owner.
pub type DocumentRow = Option<(Uuid, Option<Uuid>)>;

/// What is known of one document's owner.
#[derive(Default)]
pub struct OwnerSlot {
    /// Fixed once the notebook is stored (its header cannot change), so kept
    /// for good; set by materialisation or by the first read that finds it.
    /// (A std mutex, not an async once-cell: its waiters would queue, see
    /// [`lock_unqueued`].)
    notebook: Mutex<Option<(Uuid, Uuid)>>,
    /// The last read that found no owner, and when: reused for
    /// [`UNKNOWN_OWNER_REUSE`], so that a storm of new notebooks costs about
    /// one read per notebook and second, not one per (notebook, peer) pair.
    unknown: Mutex<Option<(Instant, DocumentRow)>>,
}

/// How often a connection's future tries again for a busy document lock.
const LOCK_POLL: Duration = Duration::from_millis(2);
/// How often [`CommittedDocs::wait_for`] looks again without a commit.
const RECHECK: Duration = Duration::from_secs(1);
/// How long a read that found no owner answers for all peers.
const UNKNOWN_OWNER_REUSE: Duration = Duration::from_secs(1);
/// How often a share decision waiting for a notebook's owner looks again, for
/// notebooks another server process stores (this one's commits wake it at once).
const OWNER_RECHECK: Duration = Duration::from_secs(30);
/// Pauses between attempts to read a document's owner: sharing waits for the
/// answer, and a denial would stand until the peer reconnects.
const OWNER_READ_RETRIES: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

impl CommittedDocs {
    pub fn new(pool: PgPool) -> Self {
        CommittedDocs {
            pool,
            slots: Arc::default(),
            owners: Arc::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn slot(&self, doc_id: &str) -> Arc<DocSlot> {
        let mut slots = self.slots.lock().expect("doc slot map poisoned");
        slots.entry(doc_id.to_string()).or_default().clone()
    }

    /// Number of documents whose committed state this process keeps in memory.
    pub fn len(&self) -> usize {
        self.slots.lock().expect("doc slot map poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `check` on the committed state of `doc_id` (loading it when this
    /// process holds none), and again after each commit and every [`RECHECK`],
    /// until it answers `Some`; `Ok(None)` once `timeout` has passed.
    pub async fn wait_for<T>(
        &self,
        doc_id: &str,
        timeout: std::time::Duration,
        mut check: impl FnMut(&Automerge) -> Option<T>,
    ) -> Result<Option<T>, sqlx::Error> {
        let slot = self.slot(doc_id);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so a commit in between is not missed.
            let notified = slot.committed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let answer = {
                let state = lock_unqueued(slot.as_ref()).await;
                state.as_ref().map(|committed| check(&committed.doc))
            };
            match answer {
                Some(Some(answer)) => return Ok(Some(answer)),
                Some(None) => {}
                None => {
                    self.install_loaded(doc_id, &slot).await?;
                    continue;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            // Woken by a commit, or at least every RECHECK: `check` may depend
            // on more than this document's commits.
            let wake = deadline.min(tokio::time::Instant::now() + RECHECK);
            let _ = tokio::time::timeout_at(wake, notified).await;
        }
    }

    fn owner_slot(&self, doc_id: &str) -> Arc<OwnerSlot> {
        let mut owners = self.owners.lock().expect("owner map poisoned");
        owners.entry(doc_id.to_string()).or_default().clone()
    }

    /// Records the owner of a notebook this process just committed.
    pub fn remember_owner(&self, doc_id: &str, header: &NotebookHeader) {
        *self
            .owner_slot(doc_id)
            .notebook
            .lock()
            .expect("owner slot poisoned") = Some((header.territory_id, header.owner_id));
    }

    /// Territory and owner of `doc_id`, from memory for a known notebook. A
    /// failed read is retried a few times before the error is returned.
    pub async fn document_row(&self, doc_id: &str) -> Result<DocumentRow, sqlx::Error> {
        let slot = self.owner_slot(doc_id);
        let mut retries = OWNER_READ_RETRIES.iter();
        loop {
            if let Some((territory, owner)) = *slot.notebook.lock().expect("owner slot poisoned") {
                return Ok(Some((territory, Some(owner))));
            }
            let recent = *slot.unknown.lock().expect("owner slot poisoned");
            if let Some((at, row)) = recent {
                if at.elapsed() < UNKNOWN_OWNER_REUSE {
                    return Ok(row);
                }
            }
            let read: Result<DocumentRow, sqlx::Error> =
                sqlx::query_as("SELECT territory_id, owner_id FROM documents WHERE doc_id = $1")
                    .bind(doc_id)
                    .fetch_optional(&self.pool)
                    .await;
            match read {
                Ok(Some((territory, Some(owner)))) => {
                    *slot.notebook.lock().expect("owner slot poisoned") = Some((territory, owner));
                    return Ok(Some((territory, Some(owner))));
                }
                Ok(row) => {
                    *slot.unknown.lock().expect("owner slot poisoned") =
                        Some((Instant::now(), row));
                    return Ok(row);
                }
                Err(error) => match retries.next() {
                    Some(pause) => {
                        tracing::warn!(doc_id, %error, "could not read the document's owner; retrying");
                        tokio::time::sleep(*pause).await;
                    }
                    None => return Err(error),
                },
            }
        }
    }

    /// Returns once `doc_id` is a stored notebook with an owner: at once after
    /// this process commits it, within [`OWNER_RECHECK`] after another does.
    pub async fn wait_for_owner(&self, doc_id: &str) {
        let slot = self.slot(doc_id);
        loop {
            let committed = slot.committed.notified();
            tokio::pin!(committed);
            committed.as_mut().enable();
            if let Ok(Some((_, Some(_)))) = self.document_row(doc_id).await {
                return;
            }
            tokio::select! {
                () = committed => {}
                () = tokio::time::sleep(OWNER_RECHECK) => {}
            }
        }
    }

    /// Reloads the committed state of `doc_id` if another server process has
    /// committed to it since this one last read it.
    pub async fn refresh(&self, doc_id: &str) -> Result<(), sqlx::Error> {
        let slot = self.slot(doc_id);
        let cached = lock_unqueued(slot.as_ref())
            .await
            .as_ref()
            .map(|c| c.revision);
        let Some(cached) = cached else {
            return Ok(()); // loaded fresh at its next use
        };
        let revision: i64 = sqlx::query_scalar("SELECT revision FROM documents WHERE doc_id = $1")
            .bind(doc_id)
            .fetch_optional(&self.pool)
            .await?
            .unwrap_or(0);
        if revision != cached {
            self.install_loaded(doc_id, &slot).await?;
        }
        Ok(())
    }

    /// Reads the committed state of `doc_id` and installs it in `slot` unless
    /// the slot already holds a state as recent. The read happens without the
    /// slot's lock: the futures that call this (a connection's incoming-change
    /// judge, its reply gate) may stop being polled without being dropped,
    /// and must never hold the lock across an await that could leave it held.
    async fn install_loaded(&self, doc_id: &str, slot: &DocSlot) -> Result<(), sqlx::Error> {
        let loaded = {
            let mut conn = self.pool.acquire().await?;
            load_committed(&mut conn, doc_id).await?
        };
        let mut state = lock_unqueued(slot).await;
        let newer = state
            .as_ref()
            .is_none_or(|current| current.revision < loaded.revision);
        if newer {
            *state = Some(loaded);
            drop(state);
            slot.committed.notify_waiters();
        }
        Ok(())
    }
}

/// Takes `slot`'s lock without joining its wait queue. tokio's mutex hands
/// the lock to the first queued waiter when it is released, even if that
/// waiter's future is never polled again; a connection's incoming stream or
/// reply sink can be left unpolled but alive when the connection dies, and a
/// queued lock request inside it would then keep the lock from everyone
/// (samod's storage writes and every later reply for that document). So the
/// futures of connections poll for the lock instead; storage writes, which
/// run in their own tasks, queue.
async fn lock_unqueued(slot: &DocSlot) -> tokio::sync::MutexGuard<'_, Option<CommittedDoc>> {
    loop {
        if let Ok(guard) = slot.state.try_lock() {
            return guard;
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// Reads a document's committed chunks and revision inside `conn`'s transaction.
pub async fn load_committed(
    conn: &mut PgConnection,
    doc_id: &str,
) -> Result<CommittedDoc, sqlx::Error> {
    let (revision, owner, territory): (i64, Option<uuid::Uuid>, uuid::Uuid) =
        sqlx::query_as("SELECT revision, owner_id, territory_id FROM documents WHERE doc_id = $1")
            .bind(doc_id)
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or((0, None, crate::materialise::DEFAULT_TERRITORY));
    let chunks: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT data FROM automerge_chunks WHERE doc_id = $1 ORDER BY key")
            .bind(doc_id)
            .fetch_all(&mut *conn)
            .await?;
    let mut doc = Automerge::new();
    for (data,) in chunks {
        if let Err(error) = doc.load_incremental(&data) {
            // Stored chunks came from samod, which only stores what automerge
            // produced; a chunk that does not load is reported, not fatal.
            tracing::error!(doc_id, %error, "a stored chunk does not load");
        }
    }
    Ok(CommittedDoc {
        doc,
        revision,
        fingerprints: Fingerprints::default(),
        header: owner.map(|owner_id| NotebookHeader {
            territory_id: territory,
            owner_id,
        }),
    })
}
