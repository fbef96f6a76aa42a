//! The on-device store: the phone's source of truth, crash-safe at every instant.
//!
//! ```text
//! <dir>/identity.json                      who this phone is (0600; holds the credential)
//! <dir>/notebooks/<document id>/
//!     snapshot.v1.automerge                a full `Automerge::save()`, replaced atomically
//!     changes.v1.log                       append-only frames: [len u32 LE][crc32 u32 LE][chunk]
//!     sync.v1.json                         heads the server acknowledged, last successful sync
//! ```
//!
//! Decisions:
//! - **An append-only log of change chunks**, not a rewritten document: recording a
//!   sighting costs one small append and one `fsync`, whatever the notebook's size.
//!   Each frame carries its length and a CRC32, so a frame cut by a crash (or
//!   damaged on flash) is recognised. On open, the log is read up to the first bad
//!   frame and truncated there: a frame is acknowledged to the caller only after its
//!   `fsync`, and appends are sequential, so a bad *tail* was never acknowledged.
//! - **Compaction** writes the whole document to a temporary file, `fsync`s it,
//!   renames it over the snapshot, `fsync`s the directory, and only then empties the
//!   log. A crash between any two steps leaves either the old snapshot with the full
//!   log or the new snapshot with (part of) the log, and automerge ignores changes
//!   it already has: every state loads, with nothing missing.
//! - **The store implements samod's [`Storage`]**, so the sync client loads the
//!   notebook by its document id from here and every change received from the server
//!   lands here too. samod's own compaction (a snapshot `put` followed by `delete`s)
//!   is folded in as "append the changes we do not have"; deletes are ignored, since
//!   compaction is the store's business. Changes are deduplicated by hash, so a
//!   change written by the capture API and then `put` by samod is stored once.
//! - Small files that change whole (identity, sync state) are replaced with
//!   write-temp, `fsync`, rename, `fsync` directory.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
};

use automerge::{Automerge, Change, ChangeHash, ReadDoc};
use chrono::{DateTime, Utc};
use samod::{
    storage::{Storage, StorageKey},
    DocumentId,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sync::documents::{read::value_to_json, NotebookHeader};
use tokio::sync::watch;
use url::Url;
use uuid::Uuid;

use crate::credential::DeviceCredential;

const IDENTITY_FILE: &str = "identity.json";
const NOTEBOOKS_DIR: &str = "notebooks";
const SNAPSHOT_FILE: &str = "snapshot.v1.automerge";
const LOG_FILE: &str = "changes.v1.log";
const SYNC_FILE: &str = "sync.v1.json";
/// Bytes before each chunk in the log: its length and its CRC32.
const FRAME_HEADER: usize = 8;
/// The log is folded into the snapshot past this many frames: loading stays
/// fast (one snapshot, a short log) and compaction stays rare.
const COMPACT_AFTER_FRAMES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} cannot be read as {what}: {reason}")]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("notebook {0} is not in this store")]
    UnknownNotebook(DocumentId),
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Who this phone is: written once at enrolment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Base URL of the server (`https://…`); sync goes to its `/sync`.
    pub server: Url,
    pub account_id: Uuid,
    pub territory_id: Uuid,
    pub device_name: String,
    /// Fills a sighting's `recordedBy` when the form leaves it out.
    pub volunteer_name: Option<String>,
    pub credential: DeviceCredential,
}

/// What the server is known to hold of one notebook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncState {
    /// Heads the server acknowledged (committed to its database); every change
    /// they cover is on the server.
    pub acknowledged_heads: Vec<ChangeHash>,
    /// When the server last acknowledged everything this phone held.
    pub last_sync: Option<DateTime<Utc>>,
}

/// The phone's store. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct Store {
    dir: Arc<PathBuf>,
    notebooks: Arc<Mutex<HashMap<DocumentId, NotebookFiles>>>,
    /// Keys samod keeps besides documents (its storage id): losing them costs
    /// nothing, so they live in memory.
    other_keys: Arc<Mutex<HashMap<StorageKey, Vec<u8>>>>,
    /// Bumped after every append, so the sync client can re-check what the
    /// server acknowledged against what is stored.
    appended: Arc<watch::Sender<u64>>,
}

struct NotebookFiles {
    dir: PathBuf,
    /// Whose notebook this is, read once when the store opens.
    header: Option<NotebookHeader>,
    log: File,
    frames: usize,
    /// Hashes of every change held by snapshot and log.
    known: HashSet<ChangeHash>,
    /// The heads of what is held, sorted as automerge sorts them.
    heads: BTreeSet<ChangeHash>,
}

impl Store {
    /// Opens (or creates) the store in `dir`, loading every notebook: a store that
    /// opens is a store that loads. A torn log tail is truncated.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let notebooks_dir = dir.join(NOTEBOOKS_DIR);
        create_dir_durably(dir)?;
        create_dir_durably(&notebooks_dir)?;
        let mut notebooks = HashMap::new();
        let entries = fs::read_dir(&notebooks_dir).map_err(io_error("listing", &notebooks_dir))?;
        for entry in entries {
            let entry = entry.map_err(io_error("listing", &notebooks_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // A directory whose name is no document id is not ours (e.g. a temp
            // file left by another tool); ignore it rather than refuse to open.
            let Ok(id) = name.parse::<DocumentId>() else {
                continue;
            };
            let (files, _) = NotebookFiles::open(entry.path())?;
            notebooks.insert(id, files);
        }
        Ok(Store {
            dir: Arc::new(dir.to_path_buf()),
            notebooks: Arc::new(Mutex::new(notebooks)),
            other_keys: Arc::default(),
            appended: Arc::new(watch::channel(0).0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The phone's identity, if it has been enrolled.
    pub fn identity(&self) -> Result<Option<Identity>, StoreError> {
        let path = self.dir.join(IDENTITY_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        path,
                        what: "an identity",
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading", &path)(e)),
        }
    }

    /// Saves the identity, readable by this user only: it holds the credential.
    pub fn save_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(identity).expect("an identity serialises");
        replace_file(&self.dir, IDENTITY_FILE, &bytes, 0o600)
    }

    /// The notebooks held, in no particular order.
    pub fn notebooks(&self) -> Vec<DocumentId> {
        self.lock().keys().cloned().collect()
    }

    /// Stores a new notebook under a fresh document id, durably, before any
    /// sync client sees it.
    pub fn create_notebook(&self, doc: &mut Automerge) -> Result<DocumentId, StoreError> {
        let id = DocumentId::try_from(Uuid::new_v4().as_bytes().to_vec())
            .expect("16 bytes make a document id");
        let mut notebooks = self.lock();
        let files = self.notebook_files(&mut notebooks, &id)?;
        let hashes: Vec<ChangeHash> = doc.get_changes_meta(&[]).iter().map(|c| c.hash).collect();
        replace_file(&files.dir, SNAPSHOT_FILE, &doc.save(), 0o600)?;
        files.known.extend(hashes);
        files.heads = doc.get_heads().into_iter().collect();
        files.header = header_of(doc);
        drop(notebooks);
        self.appended.send_modify(|n| *n += 1);
        Ok(id)
    }

    /// The notebook of this volunteer in this territory, if the store has it.
    pub fn find_notebook(&self, header: NotebookHeader) -> Option<DocumentId> {
        self.lock()
            .iter()
            .find(|(_, files)| files.header == Some(header))
            .map(|(id, _)| id.clone())
    }

    /// Reads a notebook whole from disk.
    pub fn load_notebook(&self, id: &DocumentId) -> Result<Automerge, StoreError> {
        let notebooks = self.lock();
        let files = notebooks
            .get(id)
            .ok_or_else(|| StoreError::UnknownNotebook(id.clone()))?;
        let (doc, _) = load_doc(&files.dir)?;
        Ok(doc)
    }

    /// Appends `changes` durably: when this returns `Ok`, they survive a crash.
    /// Changes the store already holds are skipped.
    pub fn append_changes(
        &self,
        id: &DocumentId,
        changes: impl IntoIterator<Item = Change>,
    ) -> Result<(), StoreError> {
        let mut notebooks = self.lock();
        let files = self.notebook_files(&mut notebooks, id)?;
        let mut new = Vec::new();
        let mut buffer = Vec::new();
        for change in changes {
            let hash = change.hash();
            if files.known.contains(&hash) || new.iter().any(|c: &Change| c.hash() == hash) {
                continue;
            }
            buffer.extend_from_slice(&frame(change.raw_bytes()));
            new.push(change);
        }
        if new.is_empty() {
            return Ok(());
        }
        files.append(&buffer, new.len())?;
        for change in &new {
            files.known.insert(change.hash());
            for dep in change.deps() {
                files.heads.remove(dep);
            }
            files.heads.insert(change.hash());
        }
        if files.frames > COMPACT_AFTER_FRAMES {
            // The append is durable already; a failed compaction only leaves a
            // longer log, so it is reported and not returned as a failure.
            if let Err(error) = files.compact() {
                tracing::warn!(%error, "compacting the notebook log failed; will retry later");
            }
        }
        drop(notebooks);
        self.appended.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Whether every change named by `heads` is stored.
    pub fn holds(&self, id: &DocumentId, heads: &[ChangeHash]) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|files| heads.iter().all(|h| files.known.contains(h)))
    }

    /// What the server is known to hold of this notebook.
    pub fn sync_state(&self, id: &DocumentId) -> Result<SyncState, StoreError> {
        let notebooks = self.lock();
        let files = notebooks
            .get(id)
            .ok_or_else(|| StoreError::UnknownNotebook(id.clone()))?;
        let path = files.dir.join(SYNC_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path,
                what: "a sync state",
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(SyncState::default()),
            Err(e) => Err(io_error("reading", &path)(e)),
        }
    }

    pub fn save_sync_state(&self, id: &DocumentId, state: &SyncState) -> Result<(), StoreError> {
        let notebooks = self.lock();
        let files = notebooks
            .get(id)
            .ok_or_else(|| StoreError::UnknownNotebook(id.clone()))?;
        let bytes = serde_json::to_vec(state).expect("a sync state serialises");
        replace_file(&files.dir, SYNC_FILE, &bytes, 0o600)
    }

    /// Changes whenever something was appended.
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DocumentId, NotebookFiles>> {
        // A panic while holding the lock cannot leave the files inconsistent
        // (every step on disk is crash-safe), so a poisoned lock is still usable.
        self.notebooks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notebook_files<'m>(
        &self,
        notebooks: &'m mut HashMap<DocumentId, NotebookFiles>,
        id: &DocumentId,
    ) -> Result<&'m mut NotebookFiles, StoreError> {
        if !notebooks.contains_key(id) {
            let dir = self.dir.join(NOTEBOOKS_DIR).join(id.to_string());
            create_dir_durably(&dir)?;
            let (files, _) = NotebookFiles::open(dir)?;
            notebooks.insert(id.clone(), files);
        }
        Ok(notebooks.get_mut(id).expect("inserted above"))
    }

    /// The snapshot and log of a notebook as samod chunks.
    fn chunks(&self, id: &DocumentId, snapshot: bool) -> Result<Vec<Vec<u8>>, StoreError> {
        let notebooks = self.lock();
        let Some(files) = notebooks.get(id) else {
            return Ok(Vec::new());
        };
        if snapshot {
            read_optional(&files.dir.join(SNAPSHOT_FILE)).map(|s| s.into_iter().collect())
        } else {
            let bytes = read_optional(&files.dir.join(LOG_FILE))?.unwrap_or_default();
            Ok(read_frames(&bytes)
                .chunks
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect())
        }
    }

    /// A chunk samod wants stored under `name`: one change (`incremental`,
    /// named by its hash) or a whole document (`snapshot`, named by a hash of its
    /// heads); either way only changes not held yet are appended. Both names
    /// are checked first, so the common case (samod storing what the capture
    /// API stored already) costs no parsing.
    fn put_chunk(
        &self,
        id: &DocumentId,
        incremental: bool,
        name: &str,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let corrupt = |what: &'static str, reason: String| StoreError::Corrupt {
            path: self.dir.join(NOTEBOOKS_DIR).join(id.to_string()),
            what,
            reason,
        };
        if incremental {
            if let Ok(hash) = name.parse::<ChangeHash>() {
                if self.holds(id, &[hash]) {
                    return Ok(());
                }
            }
            let change = Change::from_bytes(data.to_vec())
                .map_err(|e| corrupt("a change from the sync client", e.to_string()))?;
            return self.append_changes(id, [change]);
        }
        if self.heads_hash(id).is_some_and(|hash| hash == name) {
            return Ok(());
        }
        let mut scratch = Automerge::new();
        scratch
            .load_incremental(data)
            .map_err(|e| corrupt("a snapshot from the sync client", e.to_string()))?;
        self.append_changes(id, scratch.get_changes(&[]))
    }

    /// samod's name for a snapshot of exactly what the store holds: the hex
    /// SHA-256 of the sorted heads' bytes.
    fn heads_hash(&self, id: &DocumentId) -> Option<String> {
        let notebooks = self.lock();
        let files = notebooks.get(id)?;
        let mut hasher = Sha256::new();
        for head in &files.heads {
            hasher.update(head.as_ref());
        }
        Some(
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

impl NotebookFiles {
    /// Opens a notebook directory, truncating a torn or corrupt log tail;
    /// returns the loaded document too.
    fn open(dir: PathBuf) -> Result<(NotebookFiles, Automerge), StoreError> {
        let (doc, frames) = load_doc(&dir)?;
        let log_path = dir.join(LOG_FILE);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(io_error("opening", &log_path))?;
        // The log may have just been created: make its directory entry durable.
        sync_dir(&dir)?;
        let known = doc.get_changes_meta(&[]).iter().map(|c| c.hash).collect();
        let heads = doc.get_heads().into_iter().collect();
        Ok((
            NotebookFiles {
                dir,
                header: header_of(&doc),
                log,
                frames,
                known,
                heads,
            },
            doc,
        ))
    }

    fn append(&mut self, buffer: &[u8], frames: usize) -> Result<(), StoreError> {
        let path = self.dir.join(LOG_FILE);
        let before = self
            .log
            .metadata()
            .map_err(io_error("reading the size of", &path))?
            .len();
        let written = self
            .log
            .write_all(buffer)
            .and_then(|()| self.log.sync_data());
        if let Err(error) = written {
            // A partial frame would be dropped at the next open anyway; cutting it
            // now keeps later appends readable in this session too.
            let _ = self.log.set_len(before);
            return Err(io_error("appending to", &path)(error));
        }
        self.frames += frames;
        Ok(())
    }

    /// Folds the log into the snapshot (see the module documentation for why
    /// each step is crash-safe).
    fn compact(&mut self) -> Result<(), StoreError> {
        let (doc, _) = load_doc(&self.dir)?;
        replace_file(&self.dir, SNAPSHOT_FILE, &doc.save(), 0o600)?;
        let path = self.dir.join(LOG_FILE);
        self.log
            .set_len(0)
            .and_then(|()| self.log.sync_all())
            .map_err(io_error("emptying", &path))?;
        self.frames = 0;
        Ok(())
    }
}

/// The notebook header, read without reading the records.
fn header_of(doc: &Automerge) -> Option<NotebookHeader> {
    let uuid = |name: &str| -> Option<Uuid> {
        let (value, obj) = doc.get(automerge::ROOT, name).ok()??;
        value_to_json(doc, &value, &obj).as_str()?.parse().ok()
    };
    Some(NotebookHeader {
        territory_id: uuid("territoryId")?,
        owner_id: uuid("ownerId")?,
    })
}

/// Loads snapshot + log; truncates the log after its last good frame.
/// Returns the document and the number of good frames.
fn load_doc(dir: &Path) -> Result<(Automerge, usize), StoreError> {
    let snapshot_path = dir.join(SNAPSHOT_FILE);
    let mut doc = match read_optional(&snapshot_path)? {
        Some(bytes) => Automerge::load(&bytes).map_err(|e| StoreError::Corrupt {
            path: snapshot_path.clone(),
            what: "an automerge document",
            reason: e.to_string(),
        })?,
        None => Automerge::new(),
    };
    let log_path = dir.join(LOG_FILE);
    let bytes = read_optional(&log_path)?.unwrap_or_default();
    let frames = read_frames(&bytes);
    for chunk in &frames.chunks {
        doc.load_incremental(chunk)
            .map_err(|e| StoreError::Corrupt {
                path: log_path.clone(),
                what: "automerge changes",
                reason: e.to_string(),
            })?;
    }
    if let Some(problem) = frames.tail {
        tracing::warn!(
            log = %log_path.display(),
            %problem,
            dropped_bytes = bytes.len() - frames.valid_len,
            "truncating the change log after its last good frame"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(&log_path)
            .map_err(io_error("opening", &log_path))?;
        file.set_len(frames.valid_len as u64)
            .and_then(|()| file.sync_all())
            .map_err(io_error("truncating", &log_path))?;
    }
    Ok((doc, frames.chunks.len()))
}

/// Why the log stops before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TailProblem {
    /// Fewer bytes than a frame header or than the length it announces: a
    /// write cut short.
    Torn,
    /// The frame's bytes do not match its CRC32.
    ChecksumMismatch,
}

impl std::fmt::Display for TailProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TailProblem::Torn => "the last frame is incomplete",
            TailProblem::ChecksumMismatch => "a frame does not match its checksum",
        })
    }
}

/// The good frames of a log, and where and why it stops being good.
#[derive(Debug)]
pub(crate) struct Frames<'a> {
    pub chunks: Vec<&'a [u8]>,
    pub valid_len: usize,
    pub tail: Option<TailProblem>,
}

pub(crate) fn frame(chunk: &[u8]) -> Vec<u8> {
    let len = u32::try_from(chunk.len()).expect("an automerge change is far below 4 GiB");
    let mut framed = Vec::with_capacity(FRAME_HEADER + chunk.len());
    framed.extend_from_slice(&len.to_le_bytes());
    framed.extend_from_slice(&crc32fast::hash(chunk).to_le_bytes());
    framed.extend_from_slice(chunk);
    framed
}

/// Reads frames up to the first bad one. Nothing after a bad frame is trusted:
/// its length field cannot be believed, so frame boundaries are lost.
pub(crate) fn read_frames(bytes: &[u8]) -> Frames<'_> {
    let mut chunks = Vec::new();
    let mut at = 0;
    let tail = loop {
        let rest = &bytes[at..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() < FRAME_HEADER {
            break Some(TailProblem::Torn);
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let Some(chunk) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
            break Some(TailProblem::Torn);
        };
        if crc32fast::hash(chunk) != crc {
            break Some(TailProblem::ChecksumMismatch);
        }
        chunks.push(chunk);
        at += FRAME_HEADER + len;
    };
    Frames {
        chunks,
        valid_len: at,
        tail,
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("opening", path)(e)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(io_error("reading", path))?;
    Ok(Some(bytes))
}

/// Replaces `dir/name` atomically and durably: a crash leaves the old file or
/// the new one, never a mix.
fn replace_file(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let path = dir.join(name);
    let temp = dir.join(format!("{name}.tmp"));
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(&temp)
        .map_err(io_error("creating", &temp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error("writing", &temp))?;
    fs::rename(&temp, &path).map_err(io_error("renaming into place", &path))?;
    sync_dir(dir)
}

fn create_dir_durably(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Makes creations and renames inside `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing", dir))
}

/// samod keys of a notebook: `<doc>/snapshot/…` and `<doc>/incremental/…`.
fn doc_key(key: &StorageKey) -> Option<(DocumentId, String, Option<String>)> {
    let parts: Vec<String> = key.clone().into_iter().collect();
    match parts.as_slice() {
        [doc, kind] => Some((doc.parse().ok()?, kind.clone(), None)),
        [doc, kind, name] => Some((doc.parse().ok()?, kind.clone(), Some(name.clone()))),
        _ => None,
    }
}

/// File I/O and `fsync` block: they run off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Cancelled: the runtime is shutting down (an app closing the device)
        // and drops this task with it; a write already under way still ran to
        // its fsync on the blocking thread, one not started never was promised.
        Err(_) => std::future::pending().await,
    }
}

impl Storage for Store {
    async fn load(&self, key: StorageKey) -> Option<Vec<u8>> {
        let other = self.other_keys.lock().unwrap_or_else(|p| p.into_inner());
        other.get(&key).cloned()
    }

    async fn load_range(&self, prefix: StorageKey) -> HashMap<StorageKey, Vec<u8>> {
        let Some((id, kind, None)) = doc_key(&prefix) else {
            let other = self.other_keys.lock().unwrap_or_else(|p| p.into_inner());
            return other
                .iter()
                .filter(|(key, _)| prefix.is_prefix_of(key))
                .map(|(key, data)| (key.clone(), data.clone()))
                .collect();
        };
        let snapshot = kind == "snapshot";
        let store = self.clone();
        let doc = id.clone();
        let chunks = match blocking(move || store.chunks(&doc, snapshot)).await {
            Ok(chunks) => chunks,
            Err(error) => {
                // The store opened, so this is a disk failing under us; samod
                // cannot take an error here, and an empty answer would make it
                // fetch the notebook from the server instead, which is safe.
                tracing::error!(%error, "reading a notebook for the sync client");
                Vec::new()
            }
        };
        // One key for the whole snapshot and one for the whole log (automerge
        // loads concatenated chunks): samod compacts once it tracks more than
        // ten keys, so one key per frame would make it compact at every change.
        if chunks.is_empty() {
            return HashMap::new();
        }
        StorageKey::from_parts([id.to_string(), kind, "store".to_string()])
            .map(|key| HashMap::from([(key, chunks.concat())]))
            .unwrap_or_default()
    }

    async fn put(&self, key: StorageKey, data: Vec<u8>) {
        let Some((id, kind, Some(name))) = doc_key(&key) else {
            let mut other = self.other_keys.lock().unwrap_or_else(|p| p.into_inner());
            other.insert(key, data);
            return;
        };
        let store = self.clone();
        let incremental = kind == "incremental";
        if let Err(error) = blocking(move || store.put_chunk(&id, incremental, &name, &data)).await
        {
            // Local changes reached the store through the capture API before
            // samod saw them; what arrives here came from the server, which keeps
            // it. Acknowledged heads are only recorded for stored changes, so
            // nothing is reported synced that is not on disk.
            tracing::error!(%error, "storing changes received from the server");
        }
    }

    async fn delete(&self, key: StorageKey) {
        if doc_key(&key).is_none() {
            let mut other = self.other_keys.lock().unwrap_or_else(|p| p.into_inner());
            other.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_with_changes(n: usize) -> Automerge {
        let mut doc = Automerge::new();
        for i in 0..n {
            doc.transact::<_, _, automerge::AutomergeError>(|tx| {
                use automerge::transaction::Transactable;
                tx.put(automerge::ROOT, format!("key{i}"), i as i64)?;
                Ok(())
            })
            .unwrap();
        }
        doc
    }

    #[test]
    fn a_torn_last_frame_is_cut_and_the_frames_before_it_are_kept() {
        let mut log = frame(b"first");
        log.extend(frame(b"second"));
        let whole = log.len();
        log.extend(&frame(b"third")[..6]);
        let frames = read_frames(&log);
        assert_eq!(frames.chunks, vec![&b"first"[..], &b"second"[..]]);
        assert_eq!(frames.valid_len, whole);
        assert_eq!(frames.tail, Some(TailProblem::Torn));

        // A header announcing more bytes than were written is torn too.
        let mut short = frame(b"complete");
        short.extend(&frame(b"cut in the middle")[..12]);
        assert_eq!(read_frames(&short).tail, Some(TailProblem::Torn));
        assert_eq!(read_frames(&short).chunks.len(), 1);
    }

    #[test]
    fn a_frame_whose_bytes_do_not_match_its_crc_ends_the_log() {
        let mut log = frame(b"good");
        let good = log.len();
        let mut bad = frame(b"flipped bit");
        bad[FRAME_HEADER + 3] ^= 0x10;
        log.extend(bad);
        log.extend(frame(b"after the damage"));
        let frames = read_frames(&log);
        assert_eq!(frames.chunks, vec![&b"good"[..]]);
        assert_eq!(frames.valid_len, good);
        assert_eq!(frames.tail, Some(TailProblem::ChecksumMismatch));
    }

    #[test]
    fn opening_a_store_truncates_a_torn_log_and_keeps_every_whole_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut doc = doc_with_changes(0);
        let id = store.create_notebook(&mut doc).unwrap();
        let doc = doc_with_changes(3);
        store.append_changes(&id, doc.get_changes(&[])).unwrap();
        drop(store);

        let log = dir
            .path()
            .join(NOTEBOOKS_DIR)
            .join(id.to_string())
            .join(LOG_FILE);
        let before = fs::metadata(&log).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(&frame(b"never acknowledged")[..10]).unwrap();
        drop(file);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(fs::metadata(&log).unwrap().len(), before, "torn tail cut");
        let loaded = store.load_notebook(&id).unwrap();
        assert_eq!(loaded.get_heads(), doc.get_heads());
    }

    #[test]
    fn compaction_replaces_the_snapshot_atomically_and_loses_nothing_at_any_step() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = store.create_notebook(&mut Automerge::new()).unwrap();
        let doc = doc_with_changes(COMPACT_AFTER_FRAMES + 5);
        for change in doc.get_changes(&[]) {
            store.append_changes(&id, [change]).unwrap();
        }
        let notebook = dir.path().join(NOTEBOOKS_DIR).join(id.to_string());
        // Compaction ran once, past the threshold: the log restarted.
        let frames_left = read_frames(&fs::read(notebook.join(LOG_FILE)).unwrap())
            .chunks
            .len();
        assert!(
            frames_left < COMPACT_AFTER_FRAMES,
            "{frames_left} frames left"
        );
        assert!(!notebook.join(format!("{SNAPSHOT_FILE}.tmp")).exists());
        assert_eq!(
            store.load_notebook(&id).unwrap().get_heads(),
            doc.get_heads()
        );

        // A crash after the rename but before the log was emptied: the snapshot
        // and the old log overlap, and the notebook still loads whole.
        let full_log: Vec<u8> = doc
            .get_changes(&[])
            .iter()
            .flat_map(|c| frame(c.raw_bytes()))
            .collect();
        fs::write(notebook.join(LOG_FILE), &full_log).unwrap();
        // A crash while the temporary snapshot was being written: it is ignored.
        fs::write(
            notebook.join(format!("{SNAPSHOT_FILE}.tmp")),
            b"half a snap",
        )
        .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.load_notebook(&id).unwrap().get_heads(),
            doc.get_heads()
        );
    }

    #[test]
    fn the_identity_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let identity = Identity {
            server: "https://fieldnotes.example.org".parse().unwrap(),
            account_id: Uuid::new_v4(),
            territory_id: Uuid::new_v4(),
            device_name: "test phone".into(),
            volunteer_name: None,
            credential: DeviceCredential {
                device_id: Uuid::new_v4(),
                secret: "fnd_secret".into(),
            },
        };
        store.save_identity(&identity).unwrap();
        let mode = fs::metadata(dir.path().join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.identity().unwrap(), Some(identity));
    }
}
