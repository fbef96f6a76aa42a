//! A record that violates its schema never enters the inventory as if valid:
//! what the volunteer typed is kept and listed, over HTTP, with field and reason.

use std::time::Duration;

use fieldnotes_tests::{
    eventually, init_test_logging, phones, records, ServerProcess, TestDatabase,
};
use mobile_bridge::Phone;
use schemas::RecordKind;
use serde_json::{json, Value};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_sighting_is_kept_and_listed_with_field_and_reason() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Parc de Gerland").await?;
    let volunteer = phones::enrol_volunteer(&pool, &territory, "Inès").await?;
    let header = volunteer.notebook();
    let mut phone = Phone::new_notebook(header, Some(volunteer.device.clone())).await?;
    let token = volunteer.device.secret.as_str();

    let mut typed = records::sighting_json(header.owner_id, "", 3);
    typed["decimalLatitude"] = json!(123.0);
    let key = typed["id"].as_str().unwrap().to_string();
    phone.record_raw(RecordKind::Sighting, &key, &typed)?;
    let valid = records::sighting(header.owner_id, "Parus major", 2);
    phone.record(&valid)?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;

    let listed = eventually(TIMEOUT, "the invalid record listed", || async {
        let (status, body) = server
            .get_json_as("/api/invalid-records?kind=sighting", token)
            .await?;
        assert_eq!(status, 200);
        Ok((body.as_array().map(Vec::len) == Some(1)).then_some(body))
    })
    .await?;
    let record = &listed[0];
    assert_eq!(record["recordKey"], key);
    assert_eq!(record["territoryId"], header.territory_id.to_string());
    assert_eq!(
        record["raw"], typed,
        "what the volunteer typed is kept whole"
    );
    let problems: Vec<(String, String)> = record["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["field"].as_str().unwrap().to_string(),
                p["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        problems
            .iter()
            .any(|(f, r)| f == "decimalLatitude" && r.contains("123")),
        "latitude named with its reason: {problems:?}"
    );
    assert!(
        problems.iter().any(|(f, _)| f == "scientificName"),
        "empty name named: {problems:?}"
    );

    // Only the valid record is in the inventory.
    let (_, sightings) = server.get_json_as("/api/sightings", token).await?;
    let ids: Vec<&str> = sightings
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, vec![valid_id(&valid)]);

    // The volunteer fixes both fields: the record moves into the inventory.
    let id = Uuid::parse_str(&key)?;
    phone.edit(RecordKind::Sighting, id, "decimalLatitude", &json!(45.76))?;
    phone.edit(
        RecordKind::Sighting,
        id,
        "scientificName",
        &json!("Parus major"),
    )?;
    phone.wait_synced(TIMEOUT).await?;
    eventually(TIMEOUT, "the corrected record in the inventory", || async {
        let (_, invalid) = server.get_json_as("/api/invalid-records", token).await?;
        let (_, sightings) = server.get_json_as("/api/sightings", token).await?;
        Ok((invalid.as_array().map(Vec::len) == Some(0)
            && sightings.as_array().map(Vec::len) == Some(2))
        .then_some(()))
    })
    .await?;
    phone.shut_down().await;
    Ok(())
}

fn valid_id(sighting: &schemas::Sighting) -> &'static str {
    use schemas::FieldRecord;
    Box::leak(sighting.id().to_string().into_boxed_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_are_refused_naming_the_parameter() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Parc de Gerland").await?;
    let volunteer = phones::enrol_volunteer(&pool, &territory, "Inès").await?;
    let token = volunteer.device.secret.as_str();
    for (path, field) in [
        ("/api/sightings?limit=0", "limit"),
        ("/api/sightings?offset=-3", "offset"),
        ("/api/invalid-records?kind=bird", "kind"),
        ("/api/sightings?territory=not-a-uuid", "query"),
    ] {
        let (status, body): (u16, Value) = server.get_json_as(path, token).await?;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let (status, _) = server
        .get_json_as("/api/documents/unknown-doc", token)
        .await?;
    assert_eq!(status, 404);
    Ok(())
}
