//! The README's first command: with no DATABASE_URL the server creates, starts
//! and stops its own PostgreSQL cluster (PostGIS enabled) under a data directory.

use std::time::Duration;

use fieldnotes_tests::{eventually, init_test_logging, phones, records, ServerProcess};
use mobile_bridge::Phone;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_database_url_the_server_runs_its_own_cluster_and_keeps_data_across_restarts(
) -> anyhow::Result<()> {
    init_test_logging();
    // Under /tmp: the cluster runs as an unprivileged user when tests run as root,
    // and that user must be able to reach the directory.
    let base = tempfile::Builder::new()
        .prefix("fieldnotes-embedded-")
        .tempdir_in("/tmp")?;
    let data_dir = base.path().join("data");
    let mut server = ServerProcess::start_embedded(&data_dir)?;
    let (status, health) = server.anonymous().get("/health").await?;
    assert_eq!((status, health["database"].as_str()), (200, Some("ok")));

    // The server's own cluster, reached the way the server does (already
    // running, so this process reuses it and leaves it running).
    let cluster = server::embedded_pg::EmbeddedPostgres::start(&data_dir.join("postgres")).await?;
    let pool = sqlx::PgPool::connect(&cluster.database_url()).await?;
    let territory = phones::territory(&pool, "Jardin des Plantes").await?;
    let volunteer = phones::enrol_volunteer(&pool, &territory, "Lou").await?;
    pool.close().await;
    drop(cluster);
    let mut phone =
        Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
    phone.record(&records::sighting(
        volunteer.account_id,
        "Hirundo rustica",
        6,
    ))?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(Duration::from_secs(30)).await?;
    phone.shut_down().await;

    // A clean stop (SIGTERM) stops the cluster too; the next start finds the data.
    let exit = server.terminate()?;
    assert!(exit.success(), "server exited with {exit}");
    assert!(
        !data_dir.join("postgres").join("postmaster.pid").exists(),
        "the embedded cluster was stopped with the server"
    );
    server.restart()?;
    eventually(
        Duration::from_secs(30),
        "the sighting after restart",
        || async {
            let (_, rows) = server
                .as_(&volunteer.device.secret)
                .get("/api/sightings")
                .await?;
            Ok((rows.as_array().map(Vec::len) == Some(1)).then_some(()))
        },
    )
    .await?;
    server.terminate()?;
    Ok(())
}
