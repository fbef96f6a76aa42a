//! Two phones record offline, edit the same record, reconnect: the inventory
//! holds every record once and flags the concurrently edited field with both values.

use std::time::Duration;

use fieldnotes_tests::{eventually, records, world::World};
use mobile_bridge::Phone;
use schemas::{FieldRecord, RecordKind};
use serde_json::{json, Value};
use uuid::Uuid;

const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_phones_merge_into_one_inventory_and_concurrent_edits_are_flagged(
) -> anyhow::Result<()> {
    let world = World::builder("Friche Saint-Vincent")
        .volunteer("Camille")
        .second_device("Camille")
        .build()
        .await?;
    let (server, pool) = (&world.server, &world.pool);
    let url = server.sync_url();
    let camille = world.volunteer("Camille");
    let second_device = world.second_device("Camille").clone();
    let volunteer = camille.account_id;

    // Phone A starts the notebook with one shared sighting and syncs it.
    let mut phone_a = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    let shared = records::sighting(volunteer, "Erinaceus europaeus", 1);
    phone_a.record(&shared)?;
    phone_a.go_online(&url).await?;
    phone_a.wait_synced(SYNC_TIMEOUT).await?;

    // Phone B (the volunteer's second phone) fetches the notebook, then both go offline.
    let mut phone_b =
        Phone::fetch_notebook(&url, Some(second_device), phone_a.notebook_id()).await?;
    phone_a.go_offline();
    phone_b.go_offline();

    let mut expected = vec![shared.id()];
    for i in 0..3 {
        let a = records::sighting(volunteer, "Pipistrellus pipistrellus", 10 + i);
        let b = records::sighting(volunteer, "Bufo bufo", 20 + i);
        expected.extend([a.id(), b.id()]);
        phone_a.record(&a)?;
        phone_b.record(&b)?;
    }
    phone_a.edit(
        RecordKind::Sighting,
        shared.id(),
        "individualCount",
        &json!(3),
    )?;
    phone_b.edit(
        RecordKind::Sighting,
        shared.id(),
        "individualCount",
        &json!(5),
    )?;

    phone_a.go_online(&url).await?;
    phone_b.go_online(&url).await?;
    phone_a.wait_synced(SYNC_TIMEOUT).await?;
    phone_b.wait_synced(SYNC_TIMEOUT).await?;

    let ids: Vec<Uuid> = eventually(SYNC_TIMEOUT, "all sightings in the inventory", || async {
        let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM sightings ORDER BY id")
            .fetch_all(pool)
            .await?;
        let conflicted: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sightings WHERE has_conflicts")
                .fetch_one(pool)
                .await?;
        Ok((ids.len() == expected.len() && conflicted == 1).then_some(ids))
    })
    .await?;
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(ids, expected_sorted, "every record exactly once");

    let (count, conflicts): (Option<i64>, Value) =
        sqlx::query_as("SELECT individual_count, conflicts FROM sightings WHERE id = $1")
            .bind(shared.id())
            .fetch_one(pool)
            .await?;
    let conflict = &conflicts[0];
    assert_eq!(conflict["field"], "individualCount");
    let mut values: Vec<i64> = conflict["values"]
        .as_array()
        .expect("values is a list")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    values.sort();
    assert_eq!(values, vec![3, 5], "both concurrent values are kept");
    assert_eq!(
        Some(conflict["winner"].as_i64().unwrap()),
        count,
        "the row holds the winner"
    );

    // Nothing else was flagged, and the HTTP API shows the same.
    let (status, listed) = server
        .as_(&camille.device.secret)
        .get("/api/sightings?conflicts=true")
        .await?;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], shared.id().to_string());

    phone_a.shut_down().await;
    phone_b.shut_down().await;
    Ok(())
}
