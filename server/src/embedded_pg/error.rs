//! Why the embedded database could not be set up; every message says what to do about it.

use std::io;
use std::path::PathBuf;

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

pub(super) type Result<T, E = EmbeddedPgError> = std::result::Result<T, E>;

/// Maps an I/O error to [`EmbeddedPgError::Io`], naming what was being done.
pub(super) fn io_err(action: impl Into<String>) -> impl FnOnce(io::Error) -> EmbeddedPgError {
    let action = action.into();
    move |source| EmbeddedPgError::Io { action, source }
}
