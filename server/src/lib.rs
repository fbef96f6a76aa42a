//! The field survey sync server: automerge-repo over WebSocket, documents
//! persisted in PostgreSQL, and every stored change materialised — in the same
//! transaction — into the PostGIS inventory coordinators and régies read.
//!
//! Data path (see `docs/ARCHITECTURE.md`): phone → `/sync` WebSocket
//! ([`http::sync`]) → samod repo ([`repo`]) → [`storage::PgStorage`] → one
//! transaction storing the chunk and updating the inventory ([`materialise`]) →
//! the acknowledgement leaves only once that transaction committed
//! ([`durability`]).

pub mod auth;
pub mod committed;
pub mod config;
pub mod deliveries;
pub mod durability;
pub mod embedded_pg;
pub mod http;
pub mod materialise;
pub mod repo;
pub mod storage;
pub mod sync_auth;

use std::net::SocketAddr;

use anyhow::Context;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::net::TcpListener;

pub use config::Config;

/// Migrations embedded in the binary: a deployed server upgrades its own schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to PostgreSQL and brings the schema up to date.
pub async fn connect_database(database_url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(database_url)
        .await
        .context("connecting to PostgreSQL (is DATABASE_URL right and the server running?)")?;
    MIGRATOR
        .run(&pool)
        .await
        .context("applying database migrations (PostGIS must be installed on the server)")?;
    Ok(pool)
}

/// Runs the service on `listener` until `shutdown` resolves or storage fails
/// for good; returns an error in the latter case so the process exits non-zero.
/// Photos larger than `max_photo_bytes` are refused.
pub async fn serve(
    pool: PgPool,
    listener: TcpListener,
    max_photo_bytes: u64,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (fatal, mut fatal_rx) = storage::FatalStorageError::channel();
    let committed = committed::CommittedDocs::new(pool.clone());
    let access = sync_auth::SyncAccess::new(pool.clone(), committed.clone());
    let storage =
        storage::PgStorage::new(pool.clone(), committed.clone(), access.deliveries(), fatal);
    let stop_background = tokio_util::sync::CancellationToken::new();
    tokio::spawn(
        access
            .clone()
            .watch_revocations(stop_background.child_token()),
    );
    let sync_repo = repo::SyncRepo::start(storage, access, committed.clone()).await?;
    let state = http::AppState {
        pool,
        sync: sync_repo.clone(),
        committed,
        max_photo_bytes,
    };
    let app = http::router(state);
    let local: SocketAddr = listener.local_addr()?;
    tracing::info!(%local, "serving HTTP API and /sync");

    let storage_failed = async move {
        let reason = fatal_rx.wait().await;
        tracing::error!(%reason, "storage failed permanently; stopping so nothing is acknowledged unsaved");
        reason
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server =
        axum::serve(listener, app.into_make_service()).with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
    let server = tokio::spawn(async move { server.await });

    let outcome = tokio::select! {
        _ = shutdown => Ok(()),
        reason = storage_failed => Err(anyhow::anyhow!("storage failed: {reason}")),
    };
    let _ = stop_tx.send(());
    stop_background.cancel();
    sync_repo.stop().await;
    // Open WebSockets keep axum's graceful shutdown waiting; the repo has stopped
    // and flushed, so what is left to wait for holds nothing worth keeping.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    outcome
}
