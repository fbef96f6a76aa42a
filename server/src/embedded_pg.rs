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

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::{chown, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::Connection;

/// The database the server uses; created on first start.
const DATABASE: &str = "fieldnotes";
/// The superuser `initdb -U` creates; with `trust` auth it needs no password.
const SUPERUSER: &str = "postgres";
/// With no TCP listener the port only names the socket file (`.s.PGSQL.5432`), so the
/// standard port is fine even when the system's own PostgreSQL also uses it.
const PORT: u16 = 5432;
/// `sun_path` holds 108 bytes including the terminating NUL, and PostgreSQL refuses longer
/// socket paths.
const MAX_SOCKET_PATH: usize = 107;
/// The programs a usable bin directory must contain.
const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
/// Where Debian/Ubuntu install the server binaries, one directory per major version.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";
/// How long `pg_ctl` may wait for the server to start or stop.
const PG_CTL_TIMEOUT_SECS: &str = "60";

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

/// Why the embedded database could not be set up. Every message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    #[error(
        "PostgreSQL server binaries not found: install them with `sudo apt-get install postgresql` \
         (Debian/Ubuntu), or set DATABASE_URL to use an existing server (looked in: {searched})"
    )]
    BinariesNotFound { searched: String },

    #[error(
        "PostGIS is not installed for PostgreSQL {major}: install it with \
         `sudo apt-get install postgresql-{major}-postgis-3` (looked for postgis.control in: {searched})"
    )]
    PostgisMissing { major: String, searched: String },

    #[error(
        "the database in {data_dir} was created by PostgreSQL {cluster_major}, but the server \
         binaries in {bin_dir} are PostgreSQL {binaries_major}: install the matching ones with \
         `sudo apt-get install postgresql-{cluster_major}` (or set PG_BIN_DIR to their bin \
         directory), or move {data_dir} away to start with an empty database"
    )]
    VersionMismatch {
        data_dir: PathBuf,
        cluster_major: String,
        bin_dir: PathBuf,
        binaries_major: String,
    },

    #[error(
        "running as root, but there is neither a `postgres` nor a `nobody` user to run PostgreSQL \
         as (initdb and postgres refuse to run as root): install PostgreSQL with \
         `sudo apt-get install postgresql`, which creates the `postgres` user, or set DATABASE_URL \
         to use an existing server"
    )]
    NoUnprivilegedUser,

    #[error(
        "PostgreSQL has to run as user `{user}` (it refuses to run as root), but that user cannot \
         enter {blocked}, which contains {path}: choose a data directory elsewhere (for example \
         under /var/lib or /srv), or let other users enter it with `chmod o+x {blocked}`"
    )]
    NotReachable {
        user: String,
        blocked: PathBuf,
        path: PathBuf,
    },

    #[error("{path} cannot be used for the embedded PostgreSQL: {reason}")]
    Unusable { path: PathBuf, reason: String },

    #[error("could not {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },

    #[error("could not look up system user `{name}`: {source}")]
    UserLookup {
        name: String,
        #[source]
        source: nix::Error,
    },

    #[error(
        "initdb could not create a PostgreSQL cluster in {data_dir}:\n{output}\n\
         fix the cause above and start again, or set DATABASE_URL to use an existing server"
    )]
    InitdbFailed { data_dir: PathBuf, output: String },

    #[error(
        "PostgreSQL did not start on {data_dir}:\n{output}\nlast lines of {log}:\n{log_tail}\n\
         fix the cause above and start again, or set DATABASE_URL to use an existing server"
    )]
    StartFailed {
        data_dir: PathBuf,
        output: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error(
        "`{command}` failed ({status}):\n{output}\nsee the server log next to {data_dir} \
         (`<data dir>.log`)"
    )]
    CommandFailed {
        command: String,
        status: String,
        output: String,
        data_dir: PathBuf,
    },

    #[error(
        "PostgreSQL is running on {data_dir} (pid {pid}), but not on a unix socket this process \
         can use: stop it with `pg_ctl -D {data_dir} stop` and start again"
    )]
    RunningWithoutSocket { data_dir: PathBuf, pid: String },

    #[error(
        "could not {action} on the embedded PostgreSQL (socket in {socket_dir}): {source}; \
         its log is next to the data directory (`<data dir>.log`)"
    )]
    Database {
        action: &'static str,
        socket_dir: PathBuf,
        #[source]
        source: sqlx::Error,
    },
}

type Result<T, E = EmbeddedPgError> = std::result::Result<T, E>;

fn io_err(action: impl Into<String>) -> impl FnOnce(io::Error) -> EmbeddedPgError {
    let action = action.into();
    move |source| EmbeddedPgError::Io { action, source }
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
        server.create_database().await?;
        Ok(server)
    }

    /// sqlx-compatible URL, e.g. postgres://postgres@localhost/fieldnotes?host=/abs/socket/dir&port=NNNN
    ///
    /// `sslmode=disable` is added because there is no TLS on a unix socket, and a `PGSSLMODE`
    /// in the environment would otherwise make sqlx insist on it.
    pub fn database_url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost/{DATABASE}?host={}&port={}&sslmode=disable",
            encode_query_value(&self.socket_dir.to_string_lossy()),
            self.port
        )
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
        let cmd = self.stop_command();
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

    fn stop_command(&self) -> Command {
        let mut cmd = self.run_as.command(&self.pg_ctl);
        cmd.arg("stop").arg("-D").arg(&self.data_dir).args([
            "-m",
            "fast",
            "-w",
            "-t",
            PG_CTL_TIMEOUT_SECS,
        ]);
        cmd
    }

    /// Connects to the `postgres` maintenance database and creates `fieldnotes` if missing.
    async fn create_database(&self) -> Result<()> {
        let db_err = |action| {
            let socket_dir = self.socket_dir.clone();
            move |source| EmbeddedPgError::Database {
                action,
                socket_dir,
                source,
            }
        };
        let options = PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(self.port)
            .username(SUPERUSER)
            .database("postgres")
            .ssl_mode(PgSslMode::Disable);
        let mut conn = connect_with_retry(&options, Duration::from_secs(30))
            .await
            .map_err(db_err("connect"))?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await
                .map_err(db_err("look up database `fieldnotes`"))?;
        if !exists {
            match sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
                .execute(&mut conn)
                .await
            {
                Ok(_) => {
                    tracing::info!(data_dir = %self.data_dir.display(), "created database {DATABASE}")
                }
                // 42P04 duplicate_database: another process created it in the meantime.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(db_err("create database `fieldnotes`")(e)),
            }
        }
        let _ = conn.close().await;
        Ok(())
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
        match self.stop_command().output() {
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

// ---------------------------------------------------------------------------------------------
// Binaries

/// Where to look for the PostgreSQL server binaries.
#[derive(Debug, Clone)]
enum BinDirs {
    /// `PG_BIN_DIR` was set: use exactly this directory and nothing else, so a wrong setting is
    /// reported rather than silently bypassed.
    Explicit(PathBuf),
    /// `/usr/lib/postgresql/<version>/bin` (preferring the version of an existing cluster,
    /// else the highest), then `pg_config --bindir`.
    Search,
}

impl BinDirs {
    fn from_env() -> Self {
        match std::env::var_os("PG_BIN_DIR") {
            Some(dir) if !dir.is_empty() => BinDirs::Explicit(dir.into()),
            _ => BinDirs::Search,
        }
    }
}

#[derive(Debug)]
struct Binaries {
    dir: PathBuf,
    /// Major version, e.g. "15", as PostgreSQL writes it into `PG_VERSION`.
    major: String,
}

impl Binaries {
    fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn has_server_programs(dir: &Path) -> bool {
    SERVER_PROGRAMS.iter().all(|p| dir.join(p).is_file())
}

fn find_binaries(bin_dirs: &BinDirs, cluster_major: Option<&str>) -> Result<Binaries> {
    let mut searched = Vec::new();
    let dir = match bin_dirs {
        BinDirs::Explicit(dir) => {
            searched.push(format!("PG_BIN_DIR={}", dir.display()));
            has_server_programs(dir).then(|| dir.clone())
        }
        BinDirs::Search => {
            searched.push(format!("{DEBIAN_PG_ROOT}/*/bin"));
            let mut candidates = debian_bin_dirs();
            // An existing cluster can only be run by its own major version.
            if let Some(major) = cluster_major {
                if let Some(i) = candidates.iter().position(|(v, _)| v == major) {
                    let wanted = candidates.remove(i);
                    candidates.insert(0, wanted);
                }
            }
            candidates
                .into_iter()
                .map(|(_, dir)| dir)
                .next()
                .or_else(|| {
                    searched.push("`pg_config --bindir`".into());
                    let dir = PathBuf::from(pg_config(Path::new("pg_config"), "--bindir")?);
                    has_server_programs(&dir).then_some(dir)
                })
        }
    };
    let Some(dir) = dir else {
        return Err(EmbeddedPgError::BinariesNotFound {
            searched: searched.join(", "),
        });
    };
    let major = server_major_version(&dir.join("postgres"))?;
    tracing::debug!(bin_dir = %dir.display(), major = %major, "found PostgreSQL server binaries");
    Ok(Binaries { dir, major })
}

/// Complete `/usr/lib/postgresql/<version>/bin` directories, highest version first.
fn debian_bin_dirs() -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(DEBIAN_PG_ROOT) else {
        return Vec::new();
    };
    let mut dirs: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path().join("bin"),
            )
        })
        .filter(|(_, bin)| has_server_programs(bin))
        .collect();
    // Numerically, so that 15 sorts above 9.6.
    dirs.sort_by_key(|(version, _)| std::cmp::Reverse(version_key(version)));
    dirs
}

fn version_key(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

/// Runs `<pg_config> <arg>`, returning its trimmed output if it succeeded.
fn pg_config(pg_config: &Path, arg: &str) -> Option<String> {
    let out = Command::new(pg_config)
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Major version from `postgres --version` ("postgres (PostgreSQL) 15.20 (Debian ...)" → "15").
/// `--version` is answered before postgres' refusal to run as root, so no user switch is needed.
fn server_major_version(postgres: &Path) -> Result<String> {
    let out = Command::new(postgres)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(format!("run `{} --version`", postgres.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_major_version(&text).ok_or_else(|| EmbeddedPgError::Unusable {
        path: postgres.to_path_buf(),
        reason: format!(
            "`--version` printed {:?}, which is not a PostgreSQL version: point PG_BIN_DIR to a \
             PostgreSQL bin directory",
            text.trim()
        ),
    })
}

/// Also reads `pg_config --version` ("PostgreSQL 15.20 (Debian ...)").
fn parse_major_version(version_output: &str) -> Option<String> {
    let after = version_output
        .split_once("PostgreSQL")?
        .1
        .trim_start_matches(')');
    let version = after.split_whitespace().next()?;
    let mut parts = version.split('.');
    let first: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let first_num: u32 = first.parse().ok()?;
    // Before PostgreSQL 10 the major version had two parts (9.6).
    if first_num < 10 {
        let second: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(format!("{first}.{second}"))
    } else {
        Some(first)
    }
}

/// Places where `postgis.control` may be for these binaries: the share directory reported by a
/// `pg_config` of the same major version, the Debian layout, and a source install's layout.
fn postgis_extension_dirs(binaries: &Binaries) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let own_pg_config = binaries.dir.join("pg_config");
    if own_pg_config.is_file() {
        if let Some(share) = pg_config(&own_pg_config, "--sharedir") {
            dirs.push(PathBuf::from(share).join("extension"));
        }
    }
    // The `pg_config` on PATH may belong to another major version (Debian's wrapper reports the
    // newest one), so it only counts when its version matches.
    let path_pg_config = Path::new("pg_config");
    if pg_config(path_pg_config, "--version")
        .and_then(|v| parse_major_version(&v))
        .as_deref()
        == Some(binaries.major.as_str())
    {
        if let Some(share) = pg_config(path_pg_config, "--sharedir") {
            dirs.push(PathBuf::from(share).join("extension"));
        }
    }
    dirs.push(PathBuf::from(format!(
        "/usr/share/postgresql/{}/extension",
        binaries.major
    )));
    if let Some(prefix) = binaries.dir.parent() {
        dirs.push(prefix.join("share/postgresql/extension"));
        dirs.push(prefix.join("share/extension"));
    }
    dirs.dedup();
    dirs
}

/// PostGIS is checked before anything starts: the server's migrations need it, and a clear
/// `apt-get install` line beats a failed `CREATE EXTENSION` later.
fn check_postgis(major: &str, extension_dirs: &[PathBuf]) -> Result<()> {
    if extension_dirs
        .iter()
        .any(|d| d.join("postgis.control").is_file())
    {
        return Ok(());
    }
    Err(EmbeddedPgError::PostgisMissing {
        major: major.to_string(),
        searched: extension_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

// ---------------------------------------------------------------------------------------------
// The user PostgreSQL runs as

#[derive(Debug, Clone)]
struct RunAs {
    /// For messages only.
    name: String,
    /// `Some` when we are root and must switch to this user for every PostgreSQL program.
    ids: Option<(Uid, Gid)>,
}

impl RunAs {
    fn for_data_dir(data_dir: &Path, cluster_exists: bool) -> Result<RunAs> {
        let euid = nix::unistd::geteuid();
        if !euid.is_root() {
            let name = User::from_uid(euid)
                .ok()
                .flatten()
                .map_or_else(|| euid.to_string(), |u| u.name);
            return Ok(RunAs { name, ids: None });
        }
        if cluster_exists {
            let meta = fs::metadata(data_dir).map_err(io_err(format!(
                "inspect data directory {}",
                data_dir.display()
            )))?;
            if meta.uid() == 0 {
                return Err(EmbeddedPgError::Unusable {
                    path: data_dir.to_path_buf(),
                    reason:
                        "the PostgreSQL cluster in it is owned by root, and PostgreSQL refuses \
                             to run as root: give it to the postgres user with \
                             `chown -R postgres: <data dir>` and start again"
                            .into(),
                });
            }
            let uid = Uid::from_raw(meta.uid());
            let user = User::from_uid(uid).ok().flatten();
            return Ok(RunAs {
                name: user
                    .as_ref()
                    .map_or_else(|| uid.to_string(), |u| u.name.clone()),
                ids: Some((uid, user.map_or(Gid::from_raw(meta.gid()), |u| u.gid))),
            });
        }
        for name in ["postgres", "nobody"] {
            let user = User::from_name(name).map_err(|source| EmbeddedPgError::UserLookup {
                name: name.into(),
                source,
            })?;
            if let Some(user) = user {
                return Ok(RunAs {
                    name: user.name,
                    ids: Some((user.uid, user.gid)),
                });
            }
        }
        Err(EmbeddedPgError::NoUnprivilegedUser)
    }

    /// A command for a PostgreSQL program, run as this user.
    ///
    /// The working directory is `/` because the caller's (often under `/root`) may be closed to
    /// the unprivileged user, and initdb calls `getcwd`. `LC_ALL=C` keeps messages in English,
    /// which the initdb locale fallback relies on. PG* variables that could redirect the
    /// programs elsewhere are removed.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir("/")
            .stdin(Stdio::null())
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .env_remove("PGOPTIONS");
        if let Some((uid, gid)) = self.ids {
            // std clears supplementary groups when root switches uid, so only these two count.
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }

    /// Fails with a clear message if this user cannot enter every ancestor of `path`.
    /// Only needed when switching users; ACLs are ignored.
    fn check_can_reach(&self, path: &Path) -> Result<()> {
        let Some((uid, gid)) = self.ids else {
            return Ok(());
        };
        for dir in path.ancestors().skip(1) {
            let Ok(meta) = fs::metadata(dir) else {
                continue;
            };
            let bits = if meta.uid() == uid.as_raw() {
                0o100
            } else if meta.gid() == gid.as_raw() {
                0o010
            } else {
                0o001
            };
            if meta.mode() & bits == 0 {
                return Err(EmbeddedPgError::NotReachable {
                    user: self.name.clone(),
                    blocked: dir.to_path_buf(),
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(())
    }

    /// Gives `path` to this user (when switching users) and sets its mode.
    fn hand_over(&self, path: &Path, mode: u32) -> Result<()> {
        if let Some((uid, gid)) = self.ids {
            chown(path, Some(uid.as_raw()), Some(gid.as_raw())).map_err(io_err(format!(
                "give {} to user {}",
                path.display(),
                self.name
            )))?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(io_err(format!("set permissions of {}", path.display())))
    }
}

// ---------------------------------------------------------------------------------------------
// Files and directories

/// `PG_VERSION` is what makes a directory a cluster; `None` if there is none yet.
fn read_cluster_version(data_dir: &Path) -> Result<Option<String>> {
    match fs::read_to_string(data_dir.join("PG_VERSION")) {
        Ok(v) => Ok(Some(v.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(format!("read {}/PG_VERSION", data_dir.display()))(e)),
    }
}

/// initdb would refuse a non-empty directory anyway; saying so up front is clearer and never
/// risks mixing a cluster into someone's files.
fn ensure_empty(data_dir: &Path) -> Result<()> {
    let mut entries = fs::read_dir(data_dir).map_err(io_err(format!(
        "read data directory {}",
        data_dir.display()
    )))?;
    if entries.next().is_some() {
        return Err(EmbeddedPgError::Unusable {
            path: data_dir.to_path_buf(),
            reason: "it is not empty and holds no PostgreSQL cluster (no PG_VERSION): choose an \
                     empty or new data directory"
                .into(),
        });
    }
    Ok(())
}

fn sibling(data_dir: &Path, suffix: &str) -> PathBuf {
    let name = data_dir
        .file_name()
        .map_or_else(|| "postgres".into(), |n| n.to_string_lossy());
    data_dir
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!("{name}{suffix}"))
}

fn log_file_for(data_dir: &Path) -> PathBuf {
    sibling(data_dir, ".log")
}

/// `<data dir>-socket` next to the data directory, unless the socket path inside it would
/// exceed the unix socket limit: then `/tmp/fieldnotes-pg-<hash of the data dir>`, stable
/// across restarts.
fn socket_dir_for(data_dir: &Path) -> PathBuf {
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
fn prepare_private_dir(dir: &Path, run_as: &RunAs) -> Result<()> {
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
fn prepare_log_file(log: &Path, run_as: &RunAs) -> Result<()> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(io_err(format!("create log file {}", log.display())))?;
    run_as.hand_over(log, 0o600)
}

fn log_len(log: &Path) -> u64 {
    fs::metadata(log).map_or(0, |m| m.len())
}

/// The last `lines` lines written to the log after byte `from`, so that old runs' messages
/// neither show up in an error nor steer the retry decision.
fn log_tail(log: &Path, from: u64, lines: usize) -> String {
    let bytes = fs::read(log).unwrap_or_default();
    let start = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Running PostgreSQL programs

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let _ = write!(s, " {}", arg.to_string_lossy());
    }
    s
}

fn combined_output(stdout: &[u8], stderr: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(stdout).trim_end().to_string();
    let err = String::from_utf8_lossy(stderr);
    if !err.trim().is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(err.trim_end());
    }
    text
}

/// Runs a command to completion, returning its status and stdout+stderr.
async fn run(cmd: Command) -> Result<(ExitStatus, String)> {
    let what = describe(&cmd);
    let out = tokio::process::Command::from(cmd)
        .output()
        .await
        .map_err(io_err(format!("run `{what}`")))?;
    Ok((out.status, combined_output(&out.stdout, &out.stderr)))
}

async fn initdb(binaries: &Binaries, run_as: &RunAs, data_dir: &Path) -> Result<()> {
    tracing::info!(data_dir = %data_dir.display(), user = %run_as.name, "creating a new PostgreSQL cluster (initdb)");
    let mut outputs = Vec::new();
    // C.UTF-8 sorts by code point yet knows Unicode character classes; some systems lack it,
    // and then plain C still works with UTF8 encoding.
    for locale in ["C.UTF-8", "C"] {
        let mut cmd = run_as.command(&binaries.program("initdb"));
        cmd.arg("-D")
            .arg(data_dir)
            .args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"])
            .arg(format!("--locale={locale}"));
        let (status, output) = run(cmd).await?;
        if status.success() {
            tracing::info!(data_dir = %data_dir.display(), locale, "PostgreSQL cluster created");
            return Ok(());
        }
        // initdb empties the directory again when it fails, so the retry starts clean.
        let locale_refused = output.contains("locale");
        outputs.push(output);
        if !locale_refused {
            break;
        }
        tracing::warn!(data_dir = %data_dir.display(), "initdb refused locale {locale}; trying the next one");
    }
    Err(EmbeddedPgError::InitdbFailed {
        data_dir: data_dir.to_path_buf(),
        output: outputs.join("\n"),
    })
}

#[derive(Debug, PartialEq, Eq)]
enum PgCtlStatus {
    Running,
    NotRunning,
}

/// `pg_ctl status`: 0 = running, 3 = not running (even with a stale `postmaster.pid`).
async fn postmaster_status(pg_ctl: &Path, run_as: &RunAs, data_dir: &Path) -> Result<PgCtlStatus> {
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

struct RunningPostmaster {
    pid: String,
    port: u16,
    socket_dir: PathBuf,
}

/// A postmaster already serving this data directory (a previous run of the server that was
/// killed leaves one behind), with where it listens, read from `postmaster.pid`.
async fn running_postmaster(
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
fn is_zombie(pid: &str) -> bool {
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

async fn start_postmaster(
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

/// Connects, retrying while the server is not accepting connections yet (a server we found
/// running may still be starting up).
async fn connect_with_retry(
    options: &PgConnectOptions,
    patience: Duration,
) -> Result<PgConnection, sqlx::Error> {
    let deadline = Instant::now() + patience;
    loop {
        match PgConnection::connect_with(options).await {
            Ok(conn) => return Ok(conn),
            Err(e) => {
                let transient = match &e {
                    sqlx::Error::Io(_) => true,
                    // 57P03 cannot_connect_now: starting up or recovering.
                    sqlx::Error::Database(db) => db.code().as_deref() == Some("57P03"),
                    _ => false,
                };
                if !transient || Instant::now() >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Percent-encodes a URL query value, keeping `/` readable.
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    /// A temporary directory the PostgreSQL user can enter: tempfile makes it 0700, which is
    /// fine for ourselves but not for `postgres` when the tests run as root.
    fn temp_dir() -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("fieldnotes-pg-test-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    async fn connect(url: &str) -> PgConnection {
        PgConnection::connect(url)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
    }

    fn postmaster_pid(data_dir: &Path) -> i32 {
        let text = fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    async fn wait_for_exit(pid: Pid) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while kill(pid, None).is_ok() {
            assert!(Instant::now() < deadline, "postmaster {pid} did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn starts_a_fresh_cluster_and_serves_postgis() {
        let tmp = temp_dir();
        let data_dir = tmp.path().join("postgres");
        let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
            .await
            .unwrap();
        let url = pg.database_url();
        assert!(
            url.starts_with("postgres://postgres@localhost/fieldnotes?host=/"),
            "{url}"
        );

        let mut conn = connect(&url).await;
        sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis")
            .execute(&mut conn)
            .await
            .unwrap();
        let version: String = sqlx::query_scalar("SELECT postgis_version()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(version.starts_with('3'), "{version}");
        let db: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(db, "fieldnotes");
        // No TCP listener at all.
        let listen: String = sqlx::query_scalar("SHOW listen_addresses")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(listen, "");
        conn.close().await.unwrap();

        pg.stop().await.unwrap();
        assert!(
            !data_dir.join("postmaster.pid").exists(),
            "server still running after stop"
        );
    }

    #[tokio::test]
    async fn restarts_on_an_existing_data_dir_and_keeps_data() {
        let tmp = temp_dir();
        let data_dir = tmp.path().join("postgres");
        let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
            .await
            .unwrap();
        let mut conn = connect(&pg.database_url()).await;
        sqlx::query("CREATE TABLE notes (id int PRIMARY KEY, body text)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO notes VALUES (1, 'kept')")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        pg.stop().await.unwrap();

        let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
            .await
            .unwrap();
        let mut conn = connect(&pg.database_url()).await;
        let body: String = sqlx::query_scalar("SELECT body FROM notes WHERE id = 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(body, "kept");
        conn.close().await.unwrap();
        pg.stop().await.unwrap();
    }

    #[tokio::test]
    async fn recovers_after_the_owner_process_was_killed() {
        let tmp = temp_dir();
        let data_dir = tmp.path().join("postgres");
        let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
            .await
            .unwrap();
        let mut conn = connect(&pg.database_url()).await;
        sqlx::query("CREATE TABLE notes (id int PRIMARY KEY)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO notes VALUES (7)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();

        // Crash: the owner never runs its drop, and the postmaster dies without cleaning up,
        // leaving a stale postmaster.pid behind.
        std::mem::forget(pg);
        let pid = Pid::from_raw(postmaster_pid(&data_dir));
        kill(pid, Signal::SIGKILL).unwrap();
        // Dead, but (depending on how fast init reaps it) possibly still a zombie whose pid
        // `pg_ctl status` and the new postmaster take for a live server.
        let deadline = Instant::now() + Duration::from_secs(10);
        while kill(pid, None).is_ok() && !is_zombie(&pid.to_string()) {
            assert!(Instant::now() < deadline, "postmaster {pid} did not die");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            data_dir.join("postmaster.pid").exists(),
            "expected a stale postmaster.pid"
        );

        let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
            .await
            .unwrap();
        assert!(
            pg.owns_server,
            "a crashed server must be started anew, not reused"
        );
        let mut conn = connect(&pg.database_url()).await;
        let id: i32 = sqlx::query_scalar("SELECT id FROM notes")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(id, 7);
        conn.close().await.unwrap();
        pg.stop().await.unwrap();
    }

    #[tokio::test]
    async fn reuses_a_running_server_and_leaves_it_running() {
        let tmp = temp_dir();
        let data_dir = tmp.path().join("postgres");
        let first = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
            .await
            .unwrap();
        let pid = postmaster_pid(&data_dir);

        let second = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
            .await
            .unwrap();
        assert!(!second.owns_server);
        assert_eq!(second.database_url(), first.database_url());
        connect(&second.database_url()).await.close().await.unwrap();
        drop(second);

        // Still the same server, still serving.
        assert_eq!(postmaster_pid(&data_dir), pid);
        connect(&first.database_url()).await.close().await.unwrap();
        first.stop().await.unwrap();
        assert!(!data_dir.join("postmaster.pid").exists());
    }

    #[tokio::test]
    async fn drop_stops_the_server() {
        let tmp = temp_dir();
        let data_dir = tmp.path().join("postgres");
        let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
            .await
            .unwrap();
        let pid = Pid::from_raw(postmaster_pid(&data_dir));
        drop(pg);
        assert!(!data_dir.join("postmaster.pid").exists());
        // `pg_ctl stop -w` returns once postmaster.pid is gone, a moment before the process exits.
        wait_for_exit(pid).await;
    }

    #[tokio::test]
    async fn missing_binaries_are_reported_with_the_install_command() {
        let tmp = temp_dir();
        let empty = tmp.path().join("bin");
        fs::create_dir(&empty).unwrap();
        let err =
            EmbeddedPostgres::start_with(&tmp.path().join("postgres"), BinDirs::Explicit(empty))
                .await
                .unwrap_err();
        assert!(
            matches!(err, EmbeddedPgError::BinariesNotFound { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("apt-get install postgresql"),
            "{err}"
        );
        // Nothing was created for a setup that cannot work.
        assert!(!tmp.path().join("postgres").exists());
    }

    #[test]
    fn missing_postgis_is_reported_with_the_install_command() {
        let tmp = temp_dir();
        let err = check_postgis("15", &[tmp.path().to_path_buf()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("sudo apt-get install postgresql-15-postgis-3"),
            "{err}"
        );
    }

    #[test]
    fn a_non_empty_directory_is_not_turned_into_a_cluster() {
        let tmp = temp_dir();
        fs::write(tmp.path().join("something"), "x").unwrap();
        let err = ensure_empty(tmp.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("choose an empty or new data directory"),
            "{err}"
        );
    }

    #[test]
    fn unreachable_parents_are_reported() {
        let tmp = temp_dir();
        let closed = tmp.path().join("closed");
        fs::create_dir(&closed).unwrap();
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
        // A user that owns nothing here and is in no group that does.
        let run_as = RunAs {
            name: "nobody".into(),
            ids: Some((Uid::from_raw(65534), Gid::from_raw(65534))),
        };
        let err = run_as
            .check_can_reach(&closed.join("postgres"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("chmod o+x {}", closed.display())),
            "{err}"
        );
        run_as
            .check_can_reach(&tmp.path().join("postgres"))
            .unwrap();
    }

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

    #[test]
    fn versions_are_parsed_and_ordered() {
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)").as_deref(),
            Some("15")
        );
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 17beta1").as_deref(),
            Some("17")
        );
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 9.6.24").as_deref(),
            Some("9.6")
        );
        assert_eq!(
            parse_major_version("PostgreSQL 15.2 (Debian 15.2-1)").as_deref(),
            Some("15")
        );
        assert_eq!(parse_major_version("something else 15.2").as_deref(), None);
        assert!(version_key("15") > version_key("9.6"));
    }

    #[test]
    fn socket_paths_are_encoded_in_the_url() {
        assert_eq!(encode_query_value("/tmp/a b&c"), "/tmp/a%20b%26c");
    }
}
