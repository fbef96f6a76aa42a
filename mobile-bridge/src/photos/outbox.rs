//! The photo outbox: processed photos wait on the device's storage until the
//! server confirms it holds them, then are moved out of the queue.
//!
//! Layout under the outbox directory, one file per photo named by its SHA-256:
//! `pending/<sha256>.jpg` waits for upload; `uploaded/<sha256>.jpg` is held by
//! the server (kept for the app to show; the app may delete it when space is
//! short); `rejected/<sha256>.jpg` (with `<sha256>.txt`, the server's reason)
//! was refused for good, so it is not sent again on every sync. A file enters
//! `pending/` by write-to-temporary, fsync, rename, fsync of the directory:
//! after a crash it is either whole or absent. Moves between the directories
//! are renames, atomic on one filesystem.
//!
//! The upload protocol (server side: `server/src/http/photos.rs`): `HEAD
//! /api/photos/{sha256}` says whether the server holds the photo (200) or how
//! many bytes of it it already received (404 with `Upload-Offset`); `PUT` sends
//! the rest in chunks with `Content-Range`, each appended at the server's
//! offset. A connection cut mid-upload loses at most the chunk in flight.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use reqwest::{header, Method, StatusCode};
use url::Url;

use super::{sha256_hex, PhotoError, ProcessedPhoto};

/// Small enough that a cut on a weak signal costs little to resend, large
/// enough that a 0.5 MB photo takes two requests.
const CHUNK_SIZE: usize = 256 * 1024;
/// A server whose offset keeps moving under us (another device of the same
/// account uploading the same photo) is left alone after this many tries.
const MAX_OFFSET_CONFLICTS: u32 = 3;

/// The queue of photos waiting for upload, in one directory of the device.
pub struct PhotoOutbox {
    dir: PathBuf,
    client: reqwest::Client,
}

/// What one [`PhotoOutbox::upload_all`] did, photo by photo (by SHA-256).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UploadReport {
    /// Sent (or finished sending) and stored by the server.
    pub uploaded: Vec<String>,
    /// The server already held them: nothing sent.
    pub already_on_server: Vec<String>,
    /// Refused for good (too large, not an image, damaged), with the reason;
    /// moved to `rejected/`.
    pub rejected: Vec<(String, String)>,
    /// Not uploaded this time (no network, server error, credential refused),
    /// with the reason; still pending. The first network failure ends the
    /// round: the other photos are left for the next one.
    pub failed: Vec<(String, String)>,
    /// Photo bytes the server accepted during this round.
    pub bytes_sent: u64,
}

enum Outcome {
    Uploaded {
        sent: u64,
    },
    AlreadyThere {
        sent: u64,
    },
    Rejected(String),
    Failed(String),
    /// The network or the server is unreachable: stop the round.
    Unreachable(String),
}

impl PhotoOutbox {
    /// The outbox kept in `dir`, created if needed.
    pub fn new(dir: impl Into<PathBuf>) -> Result<PhotoOutbox, PhotoError> {
        let dir = dir.into();
        for sub in ["pending", "uploaded", "rejected"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|source| PhotoError::Storage { path, source })?;
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            // One chunk on a 2G connection (~5 KB/s) takes under a minute.
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|error| PhotoError::Http(error.to_string()))?;
        Ok(PhotoOutbox { dir, client })
    }

    /// Queues `photo` for upload, durably: when this returns Ok the photo
    /// survives a crash. Adding a photo already queued or uploaded does nothing.
    pub fn add(&self, photo: &ProcessedPhoto) -> Result<(), PhotoError> {
        // The name is the promise made to the server; a photo whose bytes do
        // not match it would only be refused there.
        if sha256_hex(&photo.jpeg) != photo.sha256 {
            return Err(PhotoError::Mismatch(photo.sha256.clone()));
        }
        let name = format!("{}.jpg", photo.sha256);
        let target = self.dir.join("pending").join(&name);
        if target.exists() || self.dir.join("uploaded").join(&name).exists() {
            return Ok(());
        }
        let temporary = self.dir.join("pending").join(format!(".{name}.tmp"));
        let storage = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PhotoError::Storage { path, source }
        };
        let mut file = fs::File::create(&temporary).map_err(storage(&temporary))?;
        file.write_all(&photo.jpeg).map_err(storage(&temporary))?;
        file.sync_all().map_err(storage(&temporary))?;
        drop(file);
        fs::rename(&temporary, &target).map_err(storage(&target))?;
        sync_dir(&self.dir.join("pending"))
    }

    /// The photos waiting for upload, by SHA-256, sorted.
    pub fn pending(&self) -> Result<Vec<String>, PhotoError> {
        let dir = self.dir.join("pending");
        let storage = |source| PhotoError::Storage {
            path: dir.clone(),
            source,
        };
        let mut pending = Vec::new();
        for entry in fs::read_dir(&dir).map_err(storage)? {
            let name = entry.map_err(storage)?.file_name();
            // Temporary files of an interrupted `add` end in `.tmp`: not queued.
            if let Some(sha) = name.to_str().and_then(|name| name.strip_suffix(".jpg")) {
                pending.push(sha.to_string());
            }
        }
        pending.sort();
        Ok(pending)
    }

    /// Uploads every pending photo to the server at `base_url` with the
    /// device `credential`, resuming partial uploads where the server left
    /// them and skipping photos the server already holds.
    pub async fn upload_all(&self, base_url: &Url, credential: &str) -> UploadReport {
        let mut report = UploadReport::default();
        let pending = match self.pending() {
            Ok(pending) => pending,
            Err(error) => {
                report.failed.push((String::new(), error.to_string()));
                return report;
            }
        };
        for sha in pending {
            let outcome = self.upload_one(base_url, credential, &sha).await;
            let settled = match &outcome {
                Outcome::Uploaded { .. } | Outcome::AlreadyThere { .. } => Some("uploaded"),
                Outcome::Rejected(_) => Some("rejected"),
                Outcome::Failed(_) | Outcome::Unreachable(_) => None,
            };
            if let Some(destination) = settled {
                if let Err(error) = self.settle(&sha, destination, &outcome) {
                    report.failed.push((sha, error.to_string()));
                    continue;
                }
            }
            match outcome {
                Outcome::Uploaded { sent } => {
                    report.bytes_sent += sent;
                    report.uploaded.push(sha);
                }
                Outcome::AlreadyThere { sent } => {
                    report.bytes_sent += sent;
                    report.already_on_server.push(sha);
                }
                Outcome::Rejected(reason) => report.rejected.push((sha, reason)),
                Outcome::Failed(reason) => report.failed.push((sha, reason)),
                Outcome::Unreachable(reason) => {
                    report.failed.push((sha, reason));
                    break;
                }
            }
        }
        report
    }

    /// Moves a photo the server has settled out of `pending/`; a rejected
    /// one gets the server's reason beside it.
    fn settle(&self, sha: &str, destination: &str, outcome: &Outcome) -> Result<(), PhotoError> {
        let target_dir = self.dir.join(destination);
        if let Outcome::Rejected(reason) = outcome {
            let path = target_dir.join(format!("{sha}.txt"));
            fs::write(&path, reason).map_err(|source| PhotoError::Storage { path, source })?;
        }
        let target = target_dir.join(format!("{sha}.jpg"));
        fs::rename(self.dir.join("pending").join(format!("{sha}.jpg")), &target).map_err(
            |source| PhotoError::Storage {
                path: target,
                source,
            },
        )?;
        sync_dir(&target_dir)?;
        sync_dir(&self.dir.join("pending"))
    }

    async fn upload_one(&self, base_url: &Url, credential: &str, sha: &str) -> Outcome {
        let path = self.dir.join("pending").join(format!("{sha}.jpg"));
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => return Outcome::Failed(format!("reading {}: {error}", path.display())),
        };
        if sha256_hex(&bytes) != sha {
            return Outcome::Rejected(
                "the stored file was damaged on the device (its bytes no longer match its hash)"
                    .to_string(),
            );
        }
        let url = match base_url.join(&format!("/api/photos/{sha}")) {
            Ok(url) => url,
            Err(error) => return Outcome::Failed(format!("server address: {error}")),
        };

        let status = self
            .client
            .request(Method::HEAD, url.clone())
            .bearer_auth(credential)
            .send()
            .await;
        let response = match status {
            Ok(response) => response,
            Err(error) => return Outcome::Unreachable(error.to_string()),
        };
        let mut offset = match response.status() {
            StatusCode::OK => return Outcome::AlreadyThere { sent: 0 },
            StatusCode::NOT_FOUND => upload_offset(&response).unwrap_or(0),
            status => return Outcome::Failed(format!("asking for the upload offset: {status}")),
        };

        let total = bytes.len();
        let mut sent = 0u64;
        let mut conflicts = 0;
        while offset < total as u64 {
            let start = offset as usize;
            let end = (start + CHUNK_SIZE).min(total);
            let response = self
                .client
                .put(url.clone())
                .bearer_auth(credential)
                .header(
                    header::CONTENT_RANGE,
                    format!("bytes {start}-{}/{total}", end - 1),
                )
                .header(header::CONTENT_TYPE, "image/jpeg")
                .body(bytes[start..end].to_vec())
                .send()
                .await;
            let response = match response {
                Ok(response) => response,
                Err(error) => return Outcome::Unreachable(error.to_string()),
            };
            match response.status() {
                StatusCode::CREATED => {
                    return Outcome::Uploaded {
                        sent: sent + (end - start) as u64,
                    }
                }
                // Someone (another phone of this person) finished it first.
                StatusCode::OK => return Outcome::AlreadyThere { sent },
                StatusCode::NO_CONTENT => {
                    sent += (end - start) as u64;
                    offset = upload_offset(&response).unwrap_or(end as u64);
                }
                StatusCode::CONFLICT => {
                    conflicts += 1;
                    match upload_offset(&response) {
                        Some(server_offset) if conflicts <= MAX_OFFSET_CONFLICTS => {
                            offset = server_offset
                        }
                        _ => return Outcome::Failed(error_message(response).await),
                    }
                }
                StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNSUPPORTED_MEDIA_TYPE
                | StatusCode::UNPROCESSABLE_ENTITY => {
                    return Outcome::Rejected(error_message(response).await)
                }
                _ => return Outcome::Failed(error_message(response).await),
            }
        }
        // The server's offset already covered the photo but it did not hold it:
        // only a server that lost the end of an upload says so; start over next round.
        Outcome::Failed(format!(
            "the server reports {offset} of {total} bytes received but no photo"
        ))
    }
}

/// The sync status shows how many photos wait (`Device::set_pending_photos`).
impl crate::sync_client::PendingPhotos for PhotoOutbox {
    fn pending_photos(&self) -> u64 {
        match self.pending() {
            Ok(pending) => pending.len() as u64,
            Err(error) => {
                // The count is a display; the next upload round reports the error.
                tracing::warn!(%error, "counting the photos waiting for upload");
                0
            }
        }
    }
}

fn upload_offset(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("upload-offset")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The server's `{"error": {"message": …}}`, with the status.
async fn error_message(response: reqwest::Response) -> String {
    let status = response.status();
    let message = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|body| body["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_default();
    format!("{status}: {message}")
}

/// Makes a rename in `dir` durable (POSIX: the directory entry is data of the directory).
fn sync_dir(dir: &Path) -> Result<(), PhotoError> {
    fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| PhotoError::Storage {
            path: dir.to_path_buf(),
            source,
        })
}
