//! A JavaScript automerge-repo 2.x client (Node, from npm) creates a sighting
//! offline, connects to the server, and the sighting appears in the inventory.

use std::time::Duration;

use anyhow::Context;
use fieldnotes_tests::{ensure_js_dependencies, eventually, records, world::World};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighting_from_the_javascript_automerge_repo_reaches_the_inventory() -> anyhow::Result<()>
{
    let js = ensure_js_dependencies()?;
    let world = World::builder("Square Sathonay")
        .volunteer("Yanis")
        .build()
        .await?;
    let server = &world.server;
    let volunteer = world.volunteer("Yanis");
    let owner = volunteer.account_id;
    let territory = world.territory.id;
    let sighting = records::sighting_json(owner, "Sciurus vulgaris", 2);
    let id = sighting["id"].as_str().unwrap().to_string();
    let notebook = json!({
        "type": "fieldnotes.notebook",
        "schemaVersion": 1,
        "territoryId": territory.to_string(),
        "ownerId": owner.to_string(),
        "sightings": { id.clone(): sighting },
        "degradationReports": {},
        "timesheetEntries": {},
    });
    let doc_file = tempfile::NamedTempFile::new()?;
    std::fs::write(doc_file.path(), serde_json::to_vec(&notebook)?)?;

    let output = tokio::process::Command::new("node")
        .arg(js.join("offline-sighting-client.mjs"))
        .arg("--url")
        .arg(server.sync_url().as_str())
        .arg("--doc-json")
        .arg(doc_file.path())
        .arg("--token")
        .arg(&volunteer.device.secret)
        .arg("--peer-id")
        .arg(format!("device-{}", volunteer.device.device_id))
        .output()
        .await
        .context("running node")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "JS client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let document_id = lines[0]["documentId"]
        .as_str()
        .context("documentId")?
        .to_string();
    assert_eq!(lines.last().unwrap()["synced"], true);

    let rows = eventually(Duration::from_secs(30), "the JS sighting", || async {
        let (_, rows) = server
            .as_(&volunteer.device.secret)
            .get("/api/sightings")
            .await?;
        Ok((rows.as_array().map(Vec::len) == Some(1)).then_some(rows))
    })
    .await?;
    let row = &rows[0];
    assert_eq!(row["id"], id);
    assert_eq!(row["documentId"], document_id);
    assert_eq!(row["territoryId"], territory.to_string());
    assert_eq!(row["scientificName"], "Sciurus vulgaris");
    assert_eq!(row["individualCount"], 2);
    assert_eq!(row["decimalLatitude"], sighting["decimalLatitude"]);
    Ok(())
}
