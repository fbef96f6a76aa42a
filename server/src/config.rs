//! Command-line and environment configuration: serving (the default, with no
//! subcommand), the `create-admin` bootstrap command, `verify-audit`, and
//! `backup` / `restore`, which all share how the database is found.

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

    /// The role that owns the schema, to run the migrations at start. Then
    /// DATABASE_URL should log in as a role that is a member of
    /// `fieldnotes_service` and nothing else, so that the running service
    /// cannot take the owner's rights (docs/DEPLOYMENT.md). Without it, the
    /// migrations run as DATABASE_URL's role.
    #[arg(
        long,
        env = "DATABASE_OWNER_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_owner_url: Option<String>,

    /// A read replica of that database (PostgreSQL streaming replication),
    /// for the review table and the exports: their long scans then leave the
    /// primary to the sync. Without it, they read DATABASE_URL.
    #[arg(long, env = "DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<String>,

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
        default_value_t = sync::documents::wire::DEFAULT_MAX_INFLATED_BYTES as u64,
        value_parser = clap::value_parser!(u64).range(1024 * 1024..=1 << 32)
    )]
    pub max_inflated_bytes: u64,
    /// Client connections (HTTP, server-sent events and `/sync` WebSockets)
    /// held open at once. Each costs a file descriptor and its buffers; a
    /// territory's phones and pages use a few hundred. At the cap, a new
    /// connection takes the place of the one idle longest (no request in
    /// progress), or is refused with 503 when none is idle. Lowered at start
    /// to stay below the process's file descriptor limit (raised to its hard
    /// limit first), so that the database pool and files always find one.
    #[arg(
        long,
        env = "FIELDNOTES_MAX_CONNECTIONS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_connections: u64,

    /// Seconds a new connection has to send its first request's headers
    /// (a few hundred bytes: one or two round trips even on a poor mobile
    /// link); then it is closed. Holding connections open without a request
    /// is how a client exhausts the server's file descriptors.
    #[arg(
        long,
        env = "FIELDNOTES_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub header_read_timeout_secs: u64,

    /// Seconds a kept-alive connection may wait for its next request after
    /// an answer; then it is closed (its client opens another when needed).
    /// A page's calls come in bursts: a minute keeps its connection between
    /// them.
    #[arg(
        long,
        env = "FIELDNOTES_IDLE_TIMEOUT_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub idle_timeout_secs: u64,

    /// Seconds a `/sync` peer may stay silent before it is sent a WebSocket
    /// ping; a peer that then sends nothing (not even the pong) for as long
    /// again is closed. 30 s also keeps mobile networks' NAT mappings open,
    /// and a phone that lost its network is let go within a minute.
    #[arg(
        long,
        env = "FIELDNOTES_SYNC_PING_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub sync_ping_secs: u64,

    /// Live-event streams (`GET /api/territories/{id}/events`) the process
    /// serves at once, every credential together: one per open review page;
    /// a territory has a few coordinators, a server a few hundred at most.
    /// Beyond it a new stream is refused with 429. Kept well below
    /// `--max-connections`, so streams cannot take every connection.
    #[arg(
        long,
        env = "FIELDNOTES_MAX_EVENT_STREAMS",
        default_value_t = 1_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_event_streams: u64,

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

    /// The address people and phones reach the server at, as they type it
    /// (`https://terrain.example.org`, behind a proxy its public one):
    /// written into the invitations' QR codes, so the field app enrols with
    /// this server, and into the exports' photo links. Without it, the
    /// address each request came to (its `Host`, or a proxy's
    /// `X-Forwarded-Host` and `X-Forwarded-Proto`).
    #[arg(long, env = "FIELDNOTES_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<url::Url>,

    /// Address to serve Prometheus metrics on (`GET /metrics`), apart from
    /// the public one so that only the operator's network reaches it (e.g.
    /// `127.0.0.1:9464`; port 0 picks a free one). Without it, no metrics
    /// are kept.
    #[arg(long, env = "FIELDNOTES_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Stored chunks (one per sync that changed it) a document may have
    /// before its chunks are compacted into one snapshot: storage and load
    /// time stay bounded. Checked every `--compact-every-secs`.
    #[arg(
        long,
        env = "FIELDNOTES_COMPACT_AFTER_CHUNKS",
        default_value_t = crate::sync::compaction::COMPACT_AFTER_CHUNKS,
        value_parser = clap::value_parser!(i64).range(2..)
    )]
    pub compact_after_chunks: i64,

    /// Seconds between two looks for documents to compact (each process
    /// looks; a document is compacted by one at a time, under its row lock).
    #[arg(
        long,
        env = "FIELDNOTES_COMPACT_EVERY_SECS",
        default_value_t = crate::sync::compaction::COMPACT_EVERY.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub compact_every_secs: u64,

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
    /// Write a backup of the whole database to a file: documents, inventory,
    /// photos, accounts and audit trail, as of one instant (`pg_dump
    /// --format=custom`), while phones go on syncing.
    ///
    /// See docs/OPERATIONS.md for how often, and what a restore loses.
    Backup {
        /// The file to write (replaced if it exists, once the backup is whole).
        #[arg(long)]
        output: PathBuf,
    },
    /// Restore a backup into an empty database (`pg_restore`, in one
    /// transaction); then start the server on it. A database that holds
    /// tables is refused, and left as it was.
    Restore {
        /// The file `backup` wrote.
        #[arg(long)]
        input: PathBuf,
    },
}

/// An http(s) URL with a host and no query: the server's public address.
fn public_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|error| format!("{text}: {error}"))?;
    if !["http", "https"].contains(&url.scheme()) || url.host().is_none() {
        return Err(format!(
            "{text}: an http:// or https:// address with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text}: an address without a query or fragment"));
    }
    Ok(url)
}
