//! Embedded default database.
//!
//! When `fieldnotes-server` is started without `DATABASE_URL`, it creates and runs its own
//! PostgreSQL cluster under a data directory (by default `./.fieldnotes-data/postgres`), using
//! the PostgreSQL server binaries installed on the system, so that a newcomer on a fresh
//! Debian/Ubuntu machine gets a working service with one command. Nothing is downloaded: if the
//! binaries or PostGIS are missing, the error says which `apt-get install` fixes it.
//!
//! Layout, for a data directory `<parent>/<name>`:
//! - `<parent>/<name>/`: the cluster itself (`initdb` output), mode 0700;
//! - `<parent>/<name>.log`: the server log written by `pg_ctl -l`;
//! - `<parent>/<name>-socket/`: the private directory holding the unix socket, mode 0700
//!   (or `/tmp/fieldnotes-pg-<hash>` when that path would be too long for a unix socket).
//!
//! The server listens on that unix socket only (`listen_addresses=''`), never on TCP, and the
//! cluster uses `trust` authentication: whoever can enter the socket directory (its owner, and
//! root) is a superuser, and nobody else can reach the server at all.
//!
//! # Who owns and runs the cluster
//!
//! `initdb`, `pg_ctl` and `postgres` refuse to run as root, yet the machines this is meant for
//! run everything as root. So when the effective uid is 0, every PostgreSQL program is started
//! as an unprivileged system user (through `CommandExt::{uid, gid}`), and the data directory,
//! socket directory and log file are chowned to it:
//! - the owner of the existing cluster, if the data directory already holds one (so a cluster
//!   created as `nobody` keeps working after the `postgres` user appears);
//! - else the `postgres` user, which exists on Debian/Ubuntu once PostgreSQL is installed;
//! - else `nobody`.
//!
//! That user must be able to enter every parent directory of the data directory: `/root` is
//! mode 0700, so a data directory under it cannot work, and [`EmbeddedPostgres::start`] says so
//! instead of letting `postgres` fail with "Permission denied".
//!
//! When not root, everything runs as the current user.
//!
//! # Files
//! - `mod.rs`: [`EmbeddedPostgres`]: the order of the start, stopping, dropping;
//! - `binaries.rs`: finding `initdb`, `pg_ctl` and `postgres`, and their major version (and,
//!   beside them, `pg_dump` and `pg_restore` for backups: [`program`]);
//! - `postgis.rs`: PostGIS installed for that version, checked before anything starts;
//! - `programs.rs`: running those programs as the right user (`RunAs`), and their output;
//! - `layout.rs`: the log file and the private socket directory beside the data directory;
//! - `cluster.rs`: whether the data directory holds a cluster, and `initdb`;
//! - `postmaster.rs`: a server already running (`postmaster.pid`, crashed or alive),
//!   `pg_ctl start` and `stop`;
//! - `database.rs`: the `fieldnotes` database and its URL;
//! - `error.rs`: [`EmbeddedPgError`];
//! - `tests.rs`: the whole lifecycle on real clusters (the other files test their own parts).

mod binaries;
mod cluster;
mod database;
mod error;
mod layout;
mod postgis;
mod postmaster;
mod programs;
#[cfg(test)]
mod tests;

pub use error::EmbeddedPgError;

use std::fs;
use std::path::{Path, PathBuf};

use binaries::{find_binaries, BinDirs};
use cluster::{ensure_empty, initdb, read_cluster_version};
use error::{io_err, Result};
use layout::{log_file_for, prepare_log_file, prepare_private_dir, socket_dir_for, PORT};
use postgis::{check_postgis, postgis_extension_dirs};
use postmaster::{
    postmaster_status, running_postmaster, start_postmaster, stop_command, PgCtlStatus,
};
use programs::{combined_output, describe, run, RunAs};

/// The path of PostgreSQL's program `name` (`pg_dump`, `pg_restore`) in the bin directory the
/// embedded cluster would use (`PG_BIN_DIR`, else the highest installed version): the backup
/// commands run the same PostgreSQL the embedded cluster runs, and with `DATABASE_URL` the
/// newest one installed, which can read an older server (`pg_dump` refuses a newer one).
pub fn program(name: &str) -> Result<PathBuf, EmbeddedPgError> {
    let binaries = find_binaries(&BinDirs::from_env(), None)?;
    let path = binaries.program(name);
    if !path.is_file() {
        return Err(EmbeddedPgError::Unusable {
            reason: format!(
                "it holds no `{name}`: install PostgreSQL {major}'s client programs with \
                 `sudo apt-get install postgresql-client-{major}`",
                major = binaries.major
            ),
            path: binaries.dir,
        });
    }
    Ok(path)
}

/// A PostgreSQL cluster this process created (or found) under a data directory and started;
/// stopped on `stop` or drop.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    pg_ctl: PathBuf,
    run_as: RunAs,
    /// True while a server that this value started is (believed to be) running. A server that
    /// was already running when we came (another process started it) is left alone.
    owns_server: bool,
}

impl EmbeddedPostgres {
    /// Find binaries, initdb if the directory is empty, start on a private unix socket (no TCP),
    /// wait until ready, create database `fieldnotes` if missing.
    ///
    /// `PG_BIN_DIR`, when set, names the directory holding `initdb`, `pg_ctl` and `postgres`.
    pub async fn start(data_dir: &Path) -> Result<EmbeddedPostgres, EmbeddedPgError> {
        Self::start_with(data_dir, BinDirs::from_env()).await
    }

    /// [`start`](Self::start) with the binary lookup made explicit, so tests need not set
    /// process-wide environment variables (which would race with other tests).
    async fn start_with(data_dir: &Path, bin_dirs: BinDirs) -> Result<EmbeddedPostgres> {
        let data_dir = std::path::absolute(data_dir).map_err(io_err(format!(
            "resolve data directory {}",
            data_dir.display()
        )))?;
        let cluster_major = read_cluster_version(&data_dir)?;

        // Everything that can be checked without touching the disk comes first, so a missing
        // package leaves no half-made state behind.
        let binaries = find_binaries(&bin_dirs, cluster_major.as_deref())?;
        if let Some(cluster_major) = &cluster_major {
            if *cluster_major != binaries.major {
                return Err(EmbeddedPgError::VersionMismatch {
                    data_dir,
                    cluster_major: cluster_major.clone(),
                    bin_dir: binaries.dir.clone(),
                    binaries_major: binaries.major.clone(),
                });
            }
        }
        check_postgis(&binaries.major, &postgis_extension_dirs(&binaries))?;

        let cluster_exists = cluster_major.is_some();
        let run_as = RunAs::for_data_dir(&data_dir, cluster_exists)?;
        run_as.check_can_reach(&data_dir)?;

        fs::create_dir_all(&data_dir).map_err(io_err(format!(
            "create data directory {}",
            data_dir.display()
        )))?;
        // Checked again on the real path, in case a symlink led somewhere else.
        let data_dir = fs::canonicalize(&data_dir).map_err(io_err(format!(
            "resolve data directory {}",
            data_dir.display()
        )))?;
        run_as.check_can_reach(&data_dir)?;
        if !cluster_exists {
            ensure_empty(&data_dir)?;
            run_as.hand_over(&data_dir, 0o700)?;
        }
        let socket_dir = socket_dir_for(&data_dir);
        run_as.check_can_reach(&socket_dir)?;
        prepare_private_dir(&socket_dir, &run_as)?;
        let log = log_file_for(&data_dir);
        prepare_log_file(&log, &run_as)?;

        if !cluster_exists {
            initdb(&binaries, &run_as, &data_dir).await?;
        }

        let pg_ctl = binaries.program("pg_ctl");
        let server = match running_postmaster(&pg_ctl, &run_as, &data_dir).await? {
            Some(running) => {
                tracing::info!(
                    data_dir = %data_dir.display(),
                    pid = %running.pid,
                    "PostgreSQL is already running on this data directory: using it, and leaving it running on exit"
                );
                EmbeddedPostgres {
                    data_dir,
                    socket_dir: running.socket_dir,
                    port: running.port,
                    pg_ctl,
                    run_as,
                    owns_server: false,
                }
            }
            None => {
                start_postmaster(&pg_ctl, &run_as, &data_dir, &socket_dir, &log).await?;
                EmbeddedPostgres {
                    data_dir,
                    socket_dir,
                    port: PORT,
                    pg_ctl,
                    run_as,
                    owns_server: true,
                }
            }
        };
        // On error `server` is dropped here, which stops a server we started.
        database::create_database(&server.socket_dir, server.port, &server.data_dir).await?;
        Ok(server)
    }

    /// sqlx-compatible URL, e.g. postgres://postgres@localhost/fieldnotes?host=/abs/socket/dir&port=NNNN
    pub fn database_url(&self) -> String {
        database::database_url(&self.socket_dir, self.port)
    }

    /// The URL the service logs in with: the `fieldnotes_app` role, a member
    /// of `fieldnotes_service` only ([`database_url`](Self::database_url),
    /// the superuser's, runs the migrations).
    pub fn service_url(&self) -> String {
        database::url_as(database::SERVICE_LOGIN, &self.socket_dir, self.port)
    }

    /// pg_ctl stop -m fast, awaited.
    ///
    /// A server this process did not start (it was already running) is left running.
    pub async fn stop(mut self) -> Result<(), EmbeddedPgError> {
        if !std::mem::replace(&mut self.owns_server, false) {
            tracing::info!(
                data_dir = %self.data_dir.display(),
                "leaving PostgreSQL running: this process did not start it"
            );
            return Ok(());
        }
        tracing::info!(data_dir = %self.data_dir.display(), "stopping PostgreSQL");
        let cmd = stop_command(&self.pg_ctl, &self.run_as, &self.data_dir);
        let command = describe(&cmd);
        let (status, output) = run(cmd).await?;
        if status.success() {
            tracing::info!(data_dir = %self.data_dir.display(), "PostgreSQL stopped");
            return Ok(());
        }
        // Stopping a server that is gone (it crashed, or someone stopped it) is not an error.
        if postmaster_status(&self.pg_ctl, &self.run_as, &self.data_dir).await?
            == PgCtlStatus::NotRunning
        {
            tracing::warn!(data_dir = %self.data_dir.display(), "PostgreSQL was already stopped");
            return Ok(());
        }
        Err(EmbeddedPgError::CommandFailed {
            command,
            status: status.to_string(),
            output,
            data_dir: self.data_dir.clone(),
        })
    }
}

impl Drop for EmbeddedPostgres {
    /// Best effort: a server this value started is stopped synchronously (`pg_ctl stop -m fast`),
    /// so an early return or a panic does not leave a postmaster behind.
    fn drop(&mut self) {
        if !std::mem::replace(&mut self.owns_server, false) {
            return;
        }
        tracing::info!(data_dir = %self.data_dir.display(), "stopping PostgreSQL");
        match stop_command(&self.pg_ctl, &self.run_as, &self.data_dir).output() {
            Ok(out) if out.status.success() => {
                tracing::info!(data_dir = %self.data_dir.display(), "PostgreSQL stopped")
            }
            Ok(out) => tracing::warn!(
                data_dir = %self.data_dir.display(),
                output = %combined_output(&out.stdout, &out.stderr),
                "pg_ctl stop failed"
            ),
            Err(e) => {
                tracing::warn!(data_dir = %self.data_dir.display(), error = %e, "could not run pg_ctl stop")
            }
        }
    }
}
