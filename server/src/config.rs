//! Command-line and environment configuration: serving (the default, with no
//! subcommand) and the `create-admin` bootstrap command, which share how the
//! database is found.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

/// The field survey sync server.
// No Debug: the database URL may hold a password.
#[derive(Clone, Parser)]
#[command(name = "fieldnotes-server", version, about)]
pub struct Config {
    /// PostgreSQL (with PostGIS) to use. Without it the server creates and runs
    /// its own cluster under `--data-dir`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Where the embedded PostgreSQL cluster lives when no DATABASE_URL is given.
    #[arg(
        long,
        env = "FIELDNOTES_DATA_DIR",
        default_value = ".fieldnotes-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Address for the HTTP API and the `/sync` WebSocket (port 0 picks a free one).
    #[arg(long, env = "FIELDNOTES_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Connections in the PostgreSQL pool.
    #[arg(
        long,
        env = "FIELDNOTES_DB_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_connections: u32,

    /// Largest photo accepted, in bytes (PUT /api/photos/{sha256}); larger
    /// uploads are refused with 413 before their body is read.
    #[arg(
        long,
        env = "FIELDNOTES_MAX_PHOTO_BYTES",
        default_value_t = 20 * 1024 * 1024,
        // PostgreSQL's bytea holds at most 1 GiB.
        value_parser = clap::value_parser!(u64).range(1..=1 << 30)
    )]
    pub max_photo_bytes: u64,

    /// Seconds a document no sync connection holds stays in memory after
    /// its last message; then it is dropped, and loaded again when needed.
    #[arg(
        long,
        env = "FIELDNOTES_DOCUMENT_IDLE_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub document_idle_secs: u64,

    /// Bytes the changes of one sync message may take once inflated
    /// (compressed automerge chunks are counted as they inflate, before they
    /// are parsed); a message over it is refused with an `error` naming the
    /// limit. Bounds the memory one message can cost.
    #[arg(
        long,
        env = "FIELDNOTES_MAX_INFLATED_BYTES",
        default_value_t = sync::wire::DEFAULT_MAX_INFLATED_BYTES as u64,
        value_parser = clap::value_parser!(u64).range(1024 * 1024..=1 << 32)
    )]
    pub max_inflated_bytes: u64,

    /// Raster map tiles for the web app's maps (`{z}/{x}/{y}`, optionally
    /// `{s}`); empty for no tiles (the maps still show the points, the
    /// territory's outline and its sites). The page may load images from this
    /// origin only.
    #[arg(
        long,
        env = "FIELDNOTES_MAP_TILES_URL",
        default_value = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    )]
    pub map_tiles_url: String,

    /// How logs are written to stderr: `text` for people (coloured only on a
    /// terminal), `json` for log collectors (one object per line). Which
    /// events: RUST_LOG (default `info`).
    #[arg(
        long,
        env = "FIELDNOTES_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,

    /// What to do; without a subcommand, serve.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Subcommand)]
pub enum Command {
    /// Create an admin account (the first one, on a new installation).
    ///
    /// The password is read from standard input, never from the command line
    /// (where `ps` and shell history would show it): on a terminal it is asked
    /// for twice, without echo; otherwise the first line is taken.
    CreateAdmin {
        /// The email the admin logs in with.
        #[arg(long)]
        email: String,
        /// The name shown to other people.
        #[arg(long)]
        display_name: String,
    },
    /// Verify the audit trail's hash chain, every territory's or one's.
    ///
    /// Prints one JSON line per territory (what `GET
    /// /api/territories/{id}/audit/verification` answers) and exits with
    /// status 1 when an entry was edited, deleted or moved.
    VerifyAudit {
        /// Only this territory.
        #[arg(long)]
        territory: Option<uuid::Uuid>,
    },
}
