//! The running server: asking `pg_ctl` whether one serves the data directory, finding a
//! left-behind one through `postmaster.pid` (and telling a crashed one from a live one), and
//! starting a new one on the private socket.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::error::{io_err, EmbeddedPgError, Result};
use super::layout::{log_len, log_tail, PORT};
use super::programs::{describe, run, RunAs};

/// How long `pg_ctl` may wait for the server to start or stop.
const PG_CTL_TIMEOUT_SECS: &str = "60";

#[derive(Debug, PartialEq, Eq)]
pub(super) enum PgCtlStatus {
    Running,
    NotRunning,
}

/// `pg_ctl status`: 0 = running, 3 = not running (even with a stale `postmaster.pid`).
pub(super) async fn postmaster_status(
    pg_ctl: &Path,
    run_as: &RunAs,
    data_dir: &Path,
) -> Result<PgCtlStatus> {
    let mut cmd = run_as.command(pg_ctl);
    cmd.arg("status").arg("-D").arg(data_dir);
    let command = describe(&cmd);
    let (status, output) = run(cmd).await?;
    match status.code() {
        Some(0) => Ok(PgCtlStatus::Running),
        Some(3) => Ok(PgCtlStatus::NotRunning),
        _ => Err(EmbeddedPgError::CommandFailed {
            command,
            status: status.to_string(),
            output,
            data_dir: data_dir.to_path_buf(),
        }),
    }
}

pub(super) struct RunningPostmaster {
    pub(super) pid: String,
    pub(super) port: u16,
    pub(super) socket_dir: PathBuf,
}

/// A postmaster already serving this data directory (a previous run of the server that was
/// killed leaves one behind), with where it listens, read from `postmaster.pid`.
pub(super) async fn running_postmaster(
    pg_ctl: &Path,
    run_as: &RunAs,
    data_dir: &Path,
) -> Result<Option<RunningPostmaster>> {
    let pid_file = data_dir.join("postmaster.pid");
    if !pid_file.exists()
        || postmaster_status(pg_ctl, run_as, data_dir).await? == PgCtlStatus::NotRunning
    {
        return Ok(None);
    }
    let text =
        fs::read_to_string(&pid_file).map_err(io_err(format!("read {}", pid_file.display())))?;
    let lines: Vec<&str> = text.lines().collect();
    // Lines: pid, data dir, start time, port, first socket directory, listen address, ...
    let pid = lines.first().copied().unwrap_or("?").trim().to_string();
    // `pg_ctl status` calls a zombie alive: a killed postmaster stays one until init reaps it.
    if is_zombie(&pid) {
        tracing::warn!(data_dir = %data_dir.display(), pid = %pid, "the previous PostgreSQL crashed; starting a new one");
        return Ok(None);
    }
    let port = lines.get(3).and_then(|p| p.trim().parse().ok());
    let socket_dir = lines.get(4).map(|s| s.trim()).filter(|s| !s.is_empty());
    match (port, socket_dir) {
        (Some(port), Some(dir)) => Ok(Some(RunningPostmaster {
            pid,
            port,
            socket_dir: PathBuf::from(dir),
        })),
        _ => Err(EmbeddedPgError::RunningWithoutSocket {
            data_dir: data_dir.to_path_buf(),
            pid,
        }),
    }
}

/// Whether `pid` has exited but not been reaped yet (Linux `/proc`; elsewhere: never).
pub(super) fn is_zombie(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        // "pid (command) S ...": the state follows the last ')', as the command may hold one.
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Quotes for the `/bin/sh` that `pg_ctl` runs the `-o` options through.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub(super) async fn start_postmaster(
    pg_ctl: &Path,
    run_as: &RunAs,
    data_dir: &Path,
    socket_dir: &Path,
    log: &Path,
) -> Result<()> {
    tracing::info!(data_dir = %data_dir.display(), socket_dir = %socket_dir.display(), "starting PostgreSQL");
    let options = format!(
        "-k {} -c listen_addresses='' -p {PORT}",
        shell_quote(&socket_dir.to_string_lossy())
    );
    // After a crash, the new postmaster refuses to start while the old one is an unreaped
    // zombie ("lock file postmaster.pid already exists") or its children still hold its shared
    // memory. Both clear up within moments, so retry briefly for those two.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut cmd = run_as.command(pg_ctl);
        // `-l` matters beyond logging: without it the postmaster would inherit our output
        // pipes and `output()` would wait for it to exit.
        cmd.arg("start")
            .arg("-D")
            .arg(data_dir)
            .arg("-l")
            .arg(log)
            .args(["-w", "-t", PG_CTL_TIMEOUT_SECS, "-o"])
            .arg(&options);
        let log_start = log_len(log);
        let (status, output) = run(cmd).await?;
        if status.success() {
            tracing::info!(data_dir = %data_dir.display(), "PostgreSQL is ready");
            return Ok(());
        }
        let log_tail = log_tail(log, log_start, 20);
        let old_server_exiting = log_tail.contains("pre-existing shared memory block")
            || log_tail.contains("lock file \"postmaster.pid\" already exists");
        if old_server_exiting && Instant::now() < deadline {
            tracing::warn!(data_dir = %data_dir.display(), "processes of a previous PostgreSQL are still exiting; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        return Err(EmbeddedPgError::StartFailed {
            data_dir: data_dir.to_path_buf(),
            output,
            log: log.to_path_buf(),
            log_tail,
        });
    }
}

/// `pg_ctl stop -m fast`, waiting for the server to be gone.
pub(super) fn stop_command(pg_ctl: &Path, run_as: &RunAs, data_dir: &Path) -> Command {
    let mut cmd = run_as.command(pg_ctl);
    cmd.arg("stop")
        .arg("-D")
        .arg(data_dir)
        .args(["-m", "fast", "-w", "-t", PG_CTL_TIMEOUT_SECS]);
    cmd
}
