//! `fieldkit`, the volunteer simulator, against the real server: enrol with a
//! real invitation code, record a sighting offline, sync, and see it in the
//! inventory; an impossible latitude is refused, naming its field.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{ensure, Context};
use fieldnotes_tests::{
    eventually, fieldkit_binary, init_test_logging, phones, ServerProcess, TestDatabase,
};
use serde_json::Value;
use uuid::Uuid;

/// Runs `fieldkit --store <store> <args>`; returns its exit code, stdout, stderr.
fn fieldkit(store: &Path, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let output = Command::new(fieldkit_binary()?)
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .context("running fieldkit")?;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout)?,
        String::from_utf8(output.stderr)?,
    ))
}

fn fieldkit_ok(store: &Path, args: &[&str]) -> anyhow::Result<String> {
    let (code, stdout, stderr) = fieldkit(store, args)?;
    ensure!(code == 0, "fieldkit {args:?} exited {code}: {stderr}");
    Ok(stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteer_enrols_records_offline_syncs_and_the_sighting_reaches_the_inventory(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Berges du Rhône").await?;
    let code = phones::invitation_code(&pool, &territory, "Camille").await?;
    let phone = tempfile::tempdir()?;
    let store = phone.path();

    let enrolled: Value = serde_json::from_str(&fieldkit_ok(
        store,
        &[
            "enroll",
            "--server",
            &server.http_url(""),
            "--name",
            "Camille Martin",
            &code,
        ],
    )?)?;
    assert_eq!(enrolled["territoryId"], territory.id.to_string());
    let identity = std::fs::read_to_string(store.join("identity.json"))?;
    let credential: Value = serde_json::from_str(&identity)?;
    let secret = credential["credential"]["secret"]
        .as_str()
        .context("the identity holds the credential")?
        .to_string();
    assert!(
        !enrolled.to_string().contains(&secret),
        "enroll never prints the credential"
    );

    // Offline: the sighting is recorded and pending.
    let id: Uuid = fieldkit_ok(
        store,
        &[
            "sighting",
            "add",
            "--name",
            "Parus major",
            "--lat",
            "45.7",
            "--lon",
            "4.8",
            "--accuracy",
            "10",
            "--count",
            "2",
            "--notes",
            "in the plane tree",
        ],
    )?
    .trim()
    .parse()?;
    let status: Value = serde_json::from_str(&fieldkit_ok(store, &["status"])?)?;
    assert_eq!(status["pendingRecords"], 1);
    assert_eq!(status["pending"][0]["key"], id.to_string());
    assert_eq!(status["lastSync"], Value::Null);

    // An impossible latitude is refused, naming the field, and nothing is stored.
    let (code, _, stderr) = fieldkit(
        store,
        &[
            "sighting",
            "add",
            "--name",
            "Parus major",
            "--lat",
            "123",
            "--lon",
            "4.8",
        ],
    )?;
    assert_eq!(code, 2, "a refused record exits with status 2: {stderr}");
    assert!(stderr.contains("decimalLatitude"), "{stderr}");
    let listed: Value = serde_json::from_str(&fieldkit_ok(store, &["list"])?)?;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    // Signal: sync, then nothing is pending and the last sync is recorded.
    fieldkit_ok(store, &["sync", "--timeout", "30"])?;
    let status: Value = serde_json::from_str(&fieldkit_ok(store, &["status"])?)?;
    assert_eq!(status["pendingRecords"], 0, "{status}");
    assert!(status["lastSync"].is_string(), "{status}");

    // The inventory holds the sighting as recorded, GPS accuracy included.
    let row = eventually(Duration::from_secs(10), "the sighting row", || async {
        Ok(
            sqlx::query_as::<_, (String, Option<i64>, Option<f64>, String)>(
                "SELECT scientific_name, individual_count, coordinate_uncertainty_m, \
             recorded_by FROM sightings WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&pool)
            .await?,
        )
    })
    .await?;
    assert_eq!(
        row,
        (
            "Parus major".to_string(),
            Some(2),
            Some(10.0),
            "Camille Martin".to_string()
        )
    );
    let (status, listed) = server.get_json_as("/api/sightings", &secret).await?;
    assert_eq!(status, 200);
    assert!(
        listed
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["id"] == id.to_string())),
        "{listed}"
    );
    Ok(())
}
