//! Killing the server (SIGKILL) after it acknowledged changes loses none of them.

use std::time::Duration;

use fieldnotes_tests::{init_test_logging, phones, records, ServerProcess, TestDatabase};
use mobile_bridge::Phone;
use schemas::FieldRecord;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_a_sigkill() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let mut server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Étang de la Doua").await?;
    let volunteer = phones::enrol_volunteer(&pool, &territory, "Noé").await?;
    let second_device = phones::enrol_second_device(&pool, &territory, &volunteer).await?;
    let mut phone =
        Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
    phone.go_online(&server.sync_url()).await?;

    let mut acknowledged = Vec::new();
    for round in 0..5 {
        // Several records per round, so both incremental chunks and samod's
        // compacted snapshots are exercised.
        for i in 0..4 {
            let sighting = records::sighting(volunteer.account_id, "Apus apus", round * 10 + i);
            phone.record(&sighting)?;
            acknowledged.push(sighting.id());
        }
        phone.wait_synced(Duration::from_secs(30)).await?;
    }
    // The moment the phone holds the acknowledgement, the server dies.
    server.kill();

    let mut stored: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM sightings ORDER BY id")
        .fetch_all(&pool)
        .await?;
    acknowledged.sort();
    stored.sort();
    assert_eq!(
        stored, acknowledged,
        "every acknowledged record is in the inventory"
    );

    // And the restarted server has the document itself: a second device fetches it whole.
    server.restart()?;
    phone.go_offline();
    let second =
        Phone::fetch_notebook(&server.sync_url(), Some(second_device), phone.notebook_id()).await?;
    assert_eq!(
        second.heads(),
        phone.heads(),
        "the restarted server holds every change"
    );
    second.shut_down().await;
    phone.shut_down().await;
    Ok(())
}
