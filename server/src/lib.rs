//! The field survey sync server: automerge-repo over WebSocket, documents
//! persisted in PostgreSQL, and every stored change materialised — in the same
//! transaction — into the PostGIS inventory coordinators and régies read.
//!
//! Data path (see `docs/ARCHITECTURE.md`): phone → `/sync` WebSocket
//! ([`http::sync`]) → the sync core ([`sync`]): the connection checks each
//! message, the document's owner judges its changes, a committer stores them
//! with the inventory rows they change ([`inventory::materialise`]) in one transaction,
//! and only then does the reply announcing them leave.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod config;
pub mod connections;
pub mod database_roles;
pub mod embedded_pg;
pub mod export;
pub mod history;
pub mod http;
pub mod inventory;
pub mod live;
pub mod markup;
pub mod memory;
pub mod notifications;
pub mod personal_data;
pub mod photos;
pub mod reports;
pub mod retention;
pub mod review;
pub mod species;
pub mod sync;
pub mod telemetry;

use std::{net::SocketAddr, str::FromStr};

use anyhow::Context;
use sqlx::{
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
    Connection, Executor, PgConnection,
};
use tokio::net::TcpListener;

pub use config::Config;

/// Migrations embedded in the binary: a deployed server upgrades its own schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to PostgreSQL and brings the schema up to date.
///
/// The migrations run as `owner_url`'s role when given (the schema's owner,
/// `DATABASE_OWNER_URL`), else as `database_url`'s; the service's
/// connections log in with `database_url` and take `fieldnotes_service`
/// (its rights come from the migrations) when their role may. Logging in as
/// a member of `fieldnotes_service` only is what keeps a compromised process
/// from rewriting the audit trail (docs/SECURITY.md).
///
/// JIT compilation is turned off for the service's sessions: the planner's
/// cost estimates for the review queries over millions of rows (a `LIMIT`
/// over a correlated probe) cross `jit_above_cost` although they read a few
/// hundred index entries, and compiling then takes ~600 ms of a 70 ms query
/// (docs/PERFORMANCE.md, "Review queries"). Every statement here is short.
pub async fn connect_database(
    database_url: &str,
    owner_url: Option<&str>,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url)
        .context("DATABASE_URL is not a PostgreSQL URL")?
        .options([("jit", "off")]);
    let owner_options = match owner_url {
        Some(url) => {
            PgConnectOptions::from_str(url).context("DATABASE_OWNER_URL is not a PostgreSQL URL")?
        }
        None => options.clone(),
    };
    let mut setup = PgConnection::connect_with(&owner_options).await.context(
        "connecting to PostgreSQL to migrate (is the URL right and the server running?)",
    )?;
    MIGRATOR
        .run(&mut setup)
        .await
        .context("applying database migrations (PostGIS must be installed on the server)")?;
    setup.close().await.ok();
    service_pool(options, max_connections)
        .await
        .context("connecting to PostgreSQL (is DATABASE_URL right and the server running?)")
}

/// Connects to a read replica of the service's database (`DATABASE_READ_URL`,
/// PostgreSQL streaming replication): the pool the review table and the
/// exports read from, so their long scans leave the primary to the sync.
/// Nothing is migrated or granted there (a standby is read-only; it gets
/// both from the primary); the connections take `fieldnotes_service` when
/// the login role may, as on the primary.
pub async fn connect_read_replica(
    database_url: &str,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url)
        .context("DATABASE_READ_URL is not a PostgreSQL URL")?
        .options([("jit", "off"), ("default_transaction_read_only", "on")]);
    service_pool(options, max_connections)
        .await
        .context("connecting to the read replica (is DATABASE_READ_URL right and it running?)")
}

const SET_SERVICE_ROLE: &str = "SET ROLE fieldnotes_service";
/// Whether the login role may take `fieldnotes_service`.
const SERVICE_ROLE_AVAILABLE: &str =
    "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldnotes_service') \
       AND pg_has_role(current_user, 'fieldnotes_service', 'MEMBER')";

/// A pool whose connections take `fieldnotes_service` when their login role
/// may (a member of it, or the owner that created it); otherwise the service
/// runs as its login role, said once here.
async fn service_pool(
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let mut probe = PgConnection::connect_with(&options).await?;
    let service_role: bool = sqlx::query_scalar(SERVICE_ROLE_AVAILABLE)
        .fetch_one(&mut probe)
        .await?;
    probe.close().await.ok();
    if !service_role {
        tracing::warn!("role fieldnotes_service is missing or not available to the login role: the service runs as its login role");
    }
    PgPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if service_role {
                    conn.execute(SET_SERVICE_ROLE).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
}

/// Runs `work` every `period` until `stop`: the database's upkeep each
/// process takes its share of (each `work` takes its own lock, so processes
/// never do it twice at once). A failure is logged and the next round tries
/// again.
async fn every<F, Fut>(
    period: std::time::Duration,
    what: &'static str,
    stop: tokio_util::sync::CancellationToken,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<u64>>,
{
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        match work().await {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "{what}"),
            Err(error) => tracing::warn!(%error, "{what}"),
        }
    }
}

/// What the service is told at start beyond its database and socket.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Photos larger than this are refused.
    pub max_photo_bytes: u64,
    pub sync: sync::SyncSettings,
    /// What the web app's page is told (the map's tiles).
    pub web: http::web::WebSettings,
    /// The connection cap and timeouts.
    pub connections: connections::ConnectionLimits,
    /// Live-event streams the process serves at once.
    pub max_event_streams: usize,
    /// The server's address for people and phones (`--public-url`), if set.
    pub public_url: Option<String>,
    /// Whether the process's metrics are served (`--metrics-listen`): the
    /// states they hold are then sampled.
    pub metrics: bool,
    /// A read replica for the review table and the exports
    /// (`DATABASE_READ_URL`); None: they read the primary.
    pub read_pool: Option<PgPool>,
    /// Chunks a document may have before it is compacted into one snapshot.
    pub compact_after_chunks: i64,
    /// How often the process looks for documents to compact.
    pub compact_every: std::time::Duration,
}

/// Runs the service on `listener` until `shutdown` resolves or storage fails
/// for good; returns an error in the latter case so the process exits non-zero.
pub async fn serve(
    pool: PgPool,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (fatal, mut fatal_rx) = sync::store::FatalStorageError::channel();
    let stop_background = tokio_util::sync::CancellationToken::new();
    // Stopped however `serve` returns.
    let _stop_background = stop_background.clone().drop_guard();
    let notifications =
        notifications::Notifications::start(&pool, stop_background.child_token()).await;
    let core = sync::SyncCore::start(pool.clone(), options.sync, fatal, &notifications).await?;
    tokio::spawn(core.access().clone().watch_revocations(
        notifications.credentials_ended(),
        stop_background.child_token(),
    ));
    let publisher = review::publish::Publisher::start(
        pool.clone(),
        core.clone(),
        stop_background.child_token(),
    );
    tokio::spawn(every(
        audit::chain::CHAIN_EVERY,
        "writing out and chaining the audit trail",
        stop_background.child_token(),
        {
            let pool = pool.clone();
            let core = core.clone();
            let mut pacer = audit::chain::Pacer::default();
            move || {
                let pool = pool.clone();
                let core = core.clone();
                let activity = core.activity();
                let turn = pacer.turn(activity, audit::chain::CHAIN_EVERY);
                async move {
                    match turn {
                        audit::chain::Turn::StandAside => Ok(0),
                        audit::chain::Turn::UntilActivity => {
                            let interrupted = || core.activity().busy_since(activity);
                            audit::chain::catch_up_unless(&pool, &interrupted).await
                        }
                        audit::chain::Turn::ToTheEnd => audit::chain::catch_up(&pool).await,
                    }
                }
            }
        },
    ));
    tokio::spawn(memory::return_freed_memory_when_quiet(
        core.clone(),
        stop_background.child_token(),
    ));
    let compact_after_chunks = options.compact_after_chunks;
    tokio::spawn(every(
        options.compact_every,
        "compacting documents' chunks",
        stop_background.child_token(),
        {
            let pool = pool.clone();
            move || {
                let pool = pool.clone();
                async move { sync::compaction::compact_due(&pool, compact_after_chunks).await }
            }
        },
    ));
    tokio::spawn(every(
        retention::PURGE_EVERY,
        "purging personal data kept long enough",
        stop_background.child_token(),
        {
            let pool = pool.clone();
            move || {
                let pool = pool.clone();
                async move { retention::purge(&pool).await }
            }
        },
    ));
    tokio::spawn(every(
        review::counts::FOLD_EVERY,
        "folding the review counts",
        stop_background.child_token(),
        {
            let pool = pool.clone();
            move || {
                let pool = pool.clone();
                async move { review::counts::fold(&pool).await }
            }
        },
    ));
    if options.metrics {
        tokio::spawn(telemetry::sample(
            pool.clone(),
            core.clone(),
            stop_background.child_token(),
        ));
    }
    let draining = tokio_util::sync::CancellationToken::new();
    let live = live::Live::new(
        notifications,
        options.max_event_streams,
        stop_background.child_token(),
    );
    let state = http::AppState {
        read_pool: options.read_pool.unwrap_or_else(|| pool.clone()),
        pool,
        sync: core.clone(),
        publisher,
        max_photo_bytes: options.max_photo_bytes,
        live,
        public_url: options.public_url,
        draining: draining.clone(),
    };
    let app = http::router(state, &options.web);
    let local: SocketAddr = listener.local_addr()?;
    tracing::info!(%local, "serving HTTP API and /sync");

    let storage_failed = async move {
        let reason = fatal_rx.wait().await;
        tracing::error!(%reason, "storage failed permanently; stopping");
        reason
    };
    let stop_serving = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(connections::serve(
        listener,
        app,
        options.connections,
        stop_serving.clone(),
    ));

    let outcome = tokio::select! {
        _ = shutdown => Ok(()),
        reason = storage_failed => Err(anyhow::anyhow!("storage failed: {reason}")),
    };
    // `/ready` says so to whoever still asks on an open connection.
    draining.cancel();
    stop_serving.cancel();
    stop_background.cancel();
    core.stop();
    // Connections finish their requests; open streams and WebSockets end
    // with the core (told to close, nothing unstored was acknowledged).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    outcome
}
