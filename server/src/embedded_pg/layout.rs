//! Where the cluster's companions live next to the data directory (the log, the socket
//! directory), made private to the user PostgreSQL runs as, and reading the log back.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::{io_err, EmbeddedPgError, Result};
use super::programs::RunAs;

/// With no TCP listener the port only names the socket file (`.s.PGSQL.5432`), so the
/// standard port is fine even when the system's own PostgreSQL also uses it.
pub(super) const PORT: u16 = 5432;

/// `sun_path` holds 108 bytes including the terminating NUL, and PostgreSQL refuses longer
/// socket paths.
const MAX_SOCKET_PATH: usize = 107;

fn sibling(data_dir: &Path, suffix: &str) -> PathBuf {
    let name = data_dir
        .file_name()
        .map_or_else(|| "postgres".into(), |n| n.to_string_lossy());
    data_dir
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!("{name}{suffix}"))
}

pub(super) fn log_file_for(data_dir: &Path) -> PathBuf {
    sibling(data_dir, ".log")
}

/// `<data dir>-socket` next to the data directory, unless the socket path inside it would
/// exceed the unix socket limit: then `/tmp/fieldnotes-pg-<hash of the data dir>`, stable
/// across restarts.
pub(super) fn socket_dir_for(data_dir: &Path) -> PathBuf {
    let beside = sibling(data_dir, "-socket");
    let socket_file_len = format!("/.s.PGSQL.{PORT}").len();
    if beside.as_os_str().len() + socket_file_len <= MAX_SOCKET_PATH {
        return beside;
    }
    PathBuf::from(format!(
        "/tmp/fieldnotes-pg-{:016x}",
        fnv1a(data_dir.as_os_str().as_encoded_bytes())
    ))
}

/// FNV-1a: tiny and, unlike std's `DefaultHasher`, stable across Rust releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Creates (or re-uses) a directory only the run-as user may enter. A directory that someone
/// else already owns (possible in /tmp) is refused, since they could then watch the socket.
pub(super) fn prepare_private_dir(dir: &Path, run_as: &RunAs) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) => {
            let ours = meta.uid() == nix::unistd::geteuid().as_raw()
                || run_as
                    .ids
                    .is_some_and(|(uid, _)| meta.uid() == uid.as_raw());
            if !meta.is_dir() || !ours {
                return Err(EmbeddedPgError::Unusable {
                    path: dir.to_path_buf(),
                    reason: "it should be a directory owned by this user or the PostgreSQL user, \
                             for the server's unix socket: remove it and start again"
                        .into(),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)
                .map_err(io_err(format!("create socket directory {}", dir.display())))?;
        }
        Err(e) => {
            return Err(io_err(format!(
                "inspect socket directory {}",
                dir.display()
            ))(e))
        }
    }
    run_as.hand_over(dir, 0o700)
}

/// `pg_ctl -l` opens the log as the run-as user, who may not be allowed to create files in
/// the data directory's parent: so the file is made here and handed over.
pub(super) fn prepare_log_file(log: &Path, run_as: &RunAs) -> Result<()> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(io_err(format!("create log file {}", log.display())))?;
    run_as.hand_over(log, 0o600)
}

pub(super) fn log_len(log: &Path) -> u64 {
    fs::metadata(log).map_or(0, |m| m.len())
}

/// The last `lines` lines written to the log after byte `from`, so that old runs' messages
/// neither show up in an error nor steer the retry decision.
pub(super) fn log_tail(log: &Path, from: u64, lines: usize) -> String {
    let bytes = fs::read(log).unwrap_or_default();
    let start = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_data_dirs_get_a_short_socket_dir() {
        let short = socket_dir_for(Path::new("/srv/fieldnotes/postgres"));
        assert_eq!(short, Path::new("/srv/fieldnotes/postgres-socket"));
        let long_dir = PathBuf::from(format!("/srv/{}/postgres", "x".repeat(120)));
        let long = socket_dir_for(&long_dir);
        assert!(
            long.to_string_lossy().starts_with("/tmp/fieldnotes-pg-"),
            "{}",
            long.display()
        );
        assert_eq!(
            long,
            socket_dir_for(&long_dir),
            "must be stable across restarts"
        );
        assert!(long.as_os_str().len() + "/.s.PGSQL.5432".len() <= MAX_SOCKET_PATH);
    }
}
