//! What a newcomer hit on the server side (issue 24, item 5), each fixed and
//! checked here through the API: conflict values dated by their change, in
//! RFC 3339; bookkeeping fields (`modifiedAt`) never offered as conflicts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fieldnotes_tests::{eventually, world::World};
use schemas::RecordKind;
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The conflict queue's entry for `record`, as the coordinator reads it.
async fn queued(world: &World, record: uuid::Uuid) -> anyhow::Result<Value> {
    let t = world.territory.id;
    let (status, page) = world
        .server
        .as_(&world.coordinator().token)
        .get(&format!(
            "/api/territories/{t}/review/conflicts?kind=sighting"
        ))
        .await?;
    assert_eq!(status, 200, "{page}");
    Ok(page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == record.to_string()))
        .cloned()
        .unwrap_or_else(|| panic!("record {record} in the conflict queue: {page}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_values_are_dated_when_their_phone_wrote_them_in_rfc_3339() -> anyhow::Result<()>
{
    let started = Utc::now();
    let mut world = World::builder("Prairie des Saules")
        .coordinator("Marie")
        .volunteer("Camille")
        .second_device("Camille")
        .two_phone_conflict("Camille")
        .build()
        .await?;
    let record = world.take_conflict().record;
    let finished = Utc::now();

    let item = queued(&world, record).await?;
    let count = item["conflicts"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["field"] == "individualCount"))
        .unwrap_or_else(|| panic!("individualCount in conflict: {item}"));
    let values = count["values"].as_array().expect("values");
    assert_eq!(values.len(), 2, "{count}");
    let a_few_minutes = chrono::Duration::minutes(5);
    for value in values {
        let written = value["writtenAt"]
            .as_str()
            .unwrap_or_else(|| panic!("writtenAt as a string: {value}"));
        let at: DateTime<Utc> = DateTime::parse_from_rfc3339(written)
            .unwrap_or_else(|e| panic!("writtenAt {written} in RFC 3339: {e}"))
            .into();
        assert!(
            started - a_few_minutes <= at && at <= finished + a_few_minutes,
            "{written} is when the phone wrote it, between {started} and {finished}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_list_only_the_fields_in_disagreement_not_modified_at(
) -> anyhow::Result<()> {
    let mut world = World::builder("Prairie des Saules")
        .coordinator("Marie")
        .volunteer("Camille")
        .second_device("Camille")
        .two_phone_conflict("Camille")
        .build()
        .await?;
    let mut conflict = world.take_conflict();
    let record = conflict.record;
    let url = world.server.sync_url();

    // A second offline round, as phones edit: the field and `modifiedAt`.
    conflict.phone_a.go_offline();
    conflict.phone_b.go_offline();
    for (phone, notes) in [
        (&conflict.phone_a, "deux adultes"),
        (&conflict.phone_b, "un adulte, un jeune"),
    ] {
        let now = Utc::now().to_rfc3339();
        phone.edit(RecordKind::Sighting, record, "notes", &json!(notes))?;
        phone.edit(RecordKind::Sighting, record, "modifiedAt", &json!(now))?;
    }
    for phone in [&mut conflict.phone_a, &mut conflict.phone_b] {
        phone.go_online(&url).await?;
        phone.wait_synced(TIMEOUT).await?;
    }
    let stored: Value = eventually(TIMEOUT, "both rounds in the inventory", || async {
        let conflicts: Option<Value> =
            sqlx::query_scalar("SELECT conflicts FROM sightings WHERE id = $1 AND has_conflicts")
                .bind(record)
                .fetch_optional(&world.pool)
                .await?;
        let notes_in = conflicts
            .as_ref()
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["field"] == "notes"));
        Ok(conflicts.filter(|_| notes_in))
    })
    .await?;
    let fields = |conflicts: &Value| -> Vec<String> {
        let mut fields: Vec<String> = conflicts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["field"].as_str().map(str::to_string))
            .collect();
        fields.sort();
        fields
    };
    assert_eq!(fields(&stored), ["individualCount", "notes"], "{stored}");
    let item = queued(&world, record).await?;
    assert_eq!(
        fields(&item["conflicts"]),
        ["individualCount", "notes"],
        "{item}"
    );

    // Resolving a bookkeeping field is refused, naming it.
    let t = world.territory.id;
    let (status, body) = world
        .server
        .as_(&world.coordinator().token)
        .post(
            &format!("/api/territories/{t}/review/conflicts/{record}/resolution"),
            &json!({"field": "modifiedAt", "value": Utc::now().to_rfc3339()}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "field", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("modifiedAt")),
        "{body}"
    );
    Ok(())
}
