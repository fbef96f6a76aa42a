//! `fieldkit`, the volunteer simulator, against the real server: enrol with a
//! real invitation code, record a sighting, a degradation report and volunteer
//! hours offline, sync (without a warning), and see them in the inventory as the
//! enrolled volunteer's; an impossible latitude is refused, naming its field.

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
        // What a volunteer sees by default: warnings and errors.
        .env("RUST_LOG", "warn")
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
    let (status, listed) = server.as_(&secret).get("/api/sightings").await?;
    assert_eq!(status, 200);
    assert!(
        listed
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["id"] == id.to_string())),
        "{listed}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_and_hours_recorded_offline_sync_without_warning_and_are_the_volunteers_own(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Parc de la Tête d'Or").await?;
    let code = phones::invitation_code(&pool, &territory, "Lou").await?;
    let phone = tempfile::tempdir()?;
    let store = phone.path();
    let enrolled: Value = serde_json::from_str(&fieldkit_ok(
        store,
        &["enroll", "--server", &server.http_url(""), &code],
    )?)?;
    let account = enrolled["accountId"].clone();
    let identity: Value =
        serde_json::from_str(&std::fs::read_to_string(store.join("identity.json"))?)?;
    let secret = identity["credential"]["secret"]
        .as_str()
        .context("the identity holds the credential")?
        .to_string();

    // Offline: a report and an entry, each pending.
    let report: Uuid = fieldkit_ok(
        store,
        &[
            "report",
            "add",
            "--category",
            "waste_dumping",
            "--description",
            "builders' rubble along the path",
            "--lat",
            "45.776",
            "--lon",
            "4.853",
            "--accuracy",
            "12",
        ],
    )?
    .trim()
    .parse()?;
    let entry: Uuid = fieldkit_ok(
        store,
        &[
            "hours",
            "add",
            "--activity",
            "clean_up",
            "--date",
            "2025-05-17",
            "--minutes",
            "150",
            "--notes",
            "litter pick with the school",
        ],
    )?
    .trim()
    .parse()?;
    let status: Value = serde_json::from_str(&fieldkit_ok(store, &["status"])?)?;
    assert_eq!(status["pendingRecords"], 2, "{status}");
    let counts = |pending: u64, synced: u64| serde_json::json!({ "records": pending + synced, "pending": pending, "synced": synced });
    assert_eq!(
        status["kinds"]["degradation_report"],
        counts(1, 0),
        "{status}"
    );
    assert_eq!(status["kinds"]["timesheet_entry"], counts(1, 0), "{status}");
    assert_eq!(status["kinds"]["sighting"], counts(0, 0), "{status}");

    // A wrong category is refused naming the field, and nothing is stored.
    let (exit, _, stderr) = fieldkit(
        store,
        &[
            "report",
            "add",
            "--category",
            "graffiti",
            "--description",
            "a tag",
            "--lat",
            "45.776",
            "--lon",
            "4.853",
        ],
    )?;
    assert_eq!(exit, 2, "{stderr}");
    assert!(stderr.contains("category"), "{stderr}");
    assert!(
        stderr.contains("waste_dumping"),
        "lists the allowed values: {stderr}"
    );

    // Signal: the sync succeeds and says nothing alarming.
    let (exit, _, stderr) = fieldkit(store, &["sync", "--timeout", "30"])?;
    assert_eq!(exit, 0, "{stderr}");
    assert!(
        !stderr.contains("WARN"),
        "a successful sync warns: {stderr}"
    );
    assert!(
        !stderr.contains("ERROR"),
        "a successful sync errs: {stderr}"
    );
    let status: Value = serde_json::from_str(&fieldkit_ok(store, &["status"])?)?;
    assert_eq!(
        status["kinds"]["degradation_report"],
        counts(0, 1),
        "{status}"
    );
    assert_eq!(status["kinds"]["timesheet_entry"], counts(0, 1), "{status}");

    // The inventory lists both, written by and for the enrolled account.
    let listed = |path: &'static str, id: Uuid| {
        let (server, secret) = (&server, &secret);
        async move {
            let (status, rows) = server.as_(secret).get(path).await?;
            anyhow::ensure!(status == 200, "{path}: {status} {rows}");
            Ok(rows
                .as_array()
                .and_then(|rows| rows.iter().find(|r| r["id"] == id.to_string()).cloned()))
        }
    };
    let row = eventually(Duration::from_secs(10), "the report row", || {
        listed("/api/degradation-reports", report)
    })
    .await?;
    assert_eq!(row["category"], "waste_dumping", "{row}");
    assert_eq!(row["description"], "builders' rubble along the path");
    assert_eq!(row["coordinateUncertaintyInMeters"], 12.0);
    assert_eq!(row["authorId"], account, "{row}");
    let row = eventually(Duration::from_secs(10), "the timesheet row", || {
        listed("/api/timesheet-entries", entry)
    })
    .await?;
    assert_eq!(row["activity"], "clean_up", "{row}");
    assert_eq!(row["workDate"], "2025-05-17");
    assert_eq!(row["durationMinutes"], 150);
    assert_eq!(row["volunteerId"], account, "{row}");
    assert_eq!(row["authorId"], account, "{row}");
    Ok(())
}
