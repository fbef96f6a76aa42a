//! The review's sync path: a coordinator's conflict resolution is written into
//! the volunteer's notebook through the sync core and reaches both of the
//! volunteer's phones (Rust clients) and the JS automerge-repo client, also
//! when the JS client is one of the two phones that made the conflict;
//! decisions reach their volunteer's phone, and only theirs, through the
//! review document, which no phone can write.

use std::time::Duration;

use anyhow::{bail, Context};
use fieldnotes_tests::{
    ensure_js_dependencies, eventually,
    raw_peer::RawPeer,
    records,
    world::{TwoPhoneConflict, World},
};
use mobile_bridge::{DeviceCredential, Phone};
use schemas::{FieldRecord, RecordKind};
use serde_json::{json, Value};
use sync::documents::{read_notebook, review::read_decisions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use url::Url;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The record's `field` as the phone holds it, and whether it is still in conflict.
fn field_on_phone(phone: &Phone, record: Uuid, field: &str) -> (Value, bool) {
    phone.read(|doc| {
        let read = read_notebook(doc);
        let state = read
            .records
            .iter()
            .find(|r| r.key == record.to_string())
            .expect("the phone holds the record");
        (
            state.raw[field].clone(),
            state.conflicts.iter().any(|c| c.field == field),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_conflict_reaches_both_phones_and_the_js_client_and_leaves_the_queue(
) -> anyhow::Result<()> {
    let mut world = World::builder("Prairie des Gorges")
        .coordinator("Marie")
        .auditor("Régie")
        .volunteer("Camille")
        .second_device("Camille")
        .second_device("Camille")
        .two_phone_conflict("Camille")
        .build()
        .await?;
    let TwoPhoneConflict {
        phone_a,
        phone_b,
        record,
    } = world.take_conflict();
    let (server, pool, t) = (&world.server, &world.pool, world.territory.id);
    let url = server.sync_url();
    let (coordinator, auditor) = (world.coordinator(), world.auditor());
    let camille = world.volunteer("Camille");
    let (second_device, js_device) = match world.second_devices("Camille")[..] {
        [second, js] => (second, js),
        _ => unreachable!("two second devices were asked for"),
    };

    // The queue shows both values, each with the phone that wrote it.
    let queue = format!("/api/territories/{t}/review/conflicts");
    let (status, page) = server.as_(&auditor.token).get(&queue).await?;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    let conflict = &page["items"][0]["conflicts"][0];
    assert_eq!(conflict["field"], "individualCount", "{page}");
    let mut written: Vec<(i64, String)> = conflict["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert_eq!(v["writtenBy"]["displayName"], "Camille", "{v}");
            assert!(v["writtenBy"]["receivedAt"].is_string(), "{v}");
            (
                v["value"].as_i64().unwrap(),
                v["writtenBy"]["deviceId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    written.sort();
    assert_eq!(
        written,
        vec![
            (3, camille.device.device_id.to_string()),
            (5, second_device.device_id.to_string())
        ]
    );

    // Refusals first: the auditor decides nothing; a value that makes the
    // record invalid is named; a record of no territory of theirs is not found.
    let resolution = format!("/api/territories/{t}/review/conflicts/{record}/resolution");
    let (status, _) = server
        .as_(&auditor.token)
        .post(
            &resolution,
            &json!({"field": "individualCount", "value": 4}),
        )
        .await?;
    assert_eq!(status, 403);
    let (status, body) = server
        .as_(&coordinator.token)
        .post(
            &resolution,
            &json!({"field": "individualCount", "value": -2}),
        )
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("value")),
        "{body}"
    );
    let (status, body) = server
        .as_(&coordinator.token)
        .post(
            &resolution,
            &json!({"field": "scientificName", "value": "Vulpes vulpes"}),
        )
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (409, Some("field")),
        "{body}"
    );
    let elsewhere = format!(
        "/api/territories/{t}/review/conflicts/{}/resolution",
        Uuid::new_v4()
    );
    let (status, _) = server
        .as_(&coordinator.token)
        .post(&elsewhere, &json!({"field": "individualCount", "value": 4}))
        .await?;
    assert_eq!(status, 404);

    // The coordinator types a value neither phone had.
    let (status, body) = server
        .as_(&coordinator.token)
        .post(
            &resolution,
            &json!({"field": "individualCount", "value": 4, "reason": "counted on the photo"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");

    for (name, phone) in [("phone A", &phone_a), ("phone B", &phone_b)] {
        eventually(TIMEOUT, &format!("{name} holds the resolution"), || async {
            Ok(
                (field_on_phone(phone, record, "individualCount") == (json!(4), false))
                    .then_some(()),
            )
        })
        .await?;
    }
    let js = fieldnotes_tests::ensure_js_dependencies()?;
    let output = tokio::process::Command::new("node")
        .arg(js.join("read-document.mjs"))
        .args([
            "--url",
            url.as_str(),
            "--doc-id",
            &phone_a.notebook_id().to_string(),
        ])
        .args([
            "--token",
            &js_device.secret,
            "--peer-id",
            &format!("device-{}", js_device.device_id),
        ])
        .args([
            "--path-json",
            &json!(["sightings", record.to_string(), "individualCount"]).to_string(),
        ])
        .args(["--expect-json", "4"])
        .output()
        .await
        .context("running node")?;
    assert!(
        output.status.success(),
        "the JS client did not read the resolved value: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let (count, conflicted): (Option<i64>, bool) =
        sqlx::query_as("SELECT individual_count, has_conflicts FROM sightings WHERE id = $1")
            .bind(record)
            .fetch_one(pool)
            .await?;
    assert_eq!((count, conflicted), (Some(4), false));
    let (_, page) = server.as_(&coordinator.token).get(&queue).await?;
    assert_eq!(page["items"], json!([]), "the conflict queue is empty");
    let (status, body) = server
        .as_(&coordinator.token)
        .post(
            &resolution,
            &json!({"field": "individualCount", "value": 6}),
        )
        .await?;
    assert_eq!(status, 409, "no longer in conflict: {body}");

    // Kept in history, with the values it replaced; the change is receipted
    // to the coordinator's session.
    let (_, history) = server
        .as_(&auditor.token)
        .get(&format!(
            "/api/territories/{t}/review/records/{record}/history"
        ))
        .await?;
    let step = &history["history"][0];
    assert_eq!(step["action"], "conflict_resolution", "{history}");
    assert_eq!(step["decidedBy"], coordinator.account_id.to_string());
    assert_eq!(step["detail"]["value"], 4);
    let mut replaced: Vec<i64> = step["detail"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    replaced.sort();
    assert_eq!(replaced, vec![3, 5]);
    let by_coordinator: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM change_receipts WHERE account_id = $1 AND session_id IS NOT NULL",
    )
    .bind(coordinator.account_id)
    .fetch_one(pool)
    .await?;
    assert_eq!(by_coordinator, 1);

    phone_a.shut_down().await;
    phone_b.shut_down().await;
    Ok(())
}

/// A phone on the JS automerge-repo client (`tests/js/offline-editor.mjs`, a
/// Node child process with its own in-memory copy of the notebook), driven
/// one JSON command per line.
struct JsPhone {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl JsPhone {
    /// Connects as `device` (peer id `device-<id>`, as the server requires),
    /// fetches `doc` and waits until it is in sync with the server.
    async fn fetch(url: &Url, device: &DeviceCredential, doc: &str) -> anyhow::Result<JsPhone> {
        let js = ensure_js_dependencies()?;
        let mut child = tokio::process::Command::new("node")
            .arg(js.join("offline-editor.mjs"))
            .args(["--url", url.as_str(), "--doc-id", doc])
            .args(["--token", &device.secret])
            .args(["--peer-id", &format!("device-{}", device.device_id)])
            .args(["--timeout-ms", &TIMEOUT.as_millis().to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("running node")?;
        let mut phone = JsPhone {
            stdin: child.stdin.take().context("node's stdin")?,
            stdout: BufReader::new(child.stdout.take().context("node's stdout")?).lines(),
            child,
        };
        let fetched = phone.answer("fetching the notebook").await?;
        assert_eq!(
            (&fetched["documentId"], &fetched["online"]),
            (&json!(doc), &json!(true)),
            "{fetched}"
        );
        Ok(phone)
    }

    /// Sends one command and returns its answer.
    async fn send(&mut self, command: Value) -> anyhow::Result<Value> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        self.answer(&command.to_string()).await
    }

    /// The next line the client prints. It bounds each of its own waits by
    /// TIMEOUT and then exits with the reason; the margin lets that reason
    /// arrive rather than a bare timeout here.
    async fn answer(&mut self, what: &str) -> anyhow::Result<Value> {
        let line = tokio::time::timeout(TIMEOUT + Duration::from_secs(5), self.stdout.next_line())
            .await
            .with_context(|| format!("no answer from the JS client to {what}"))??;
        match line {
            Some(line) => serde_json::from_str(&line)
                .with_context(|| format!("the JS client's answer to {what}: {line}")),
            None => {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    pipe.read_to_string(&mut stderr).await?;
                }
                let status = self.child.wait().await?;
                bail!("the JS client exited ({status}) during {what}: {stderr}")
            }
        }
    }

    async fn exit(mut self) -> anyhow::Result<()> {
        self.stdin.write_all(b"{\"do\":\"exit\"}\n").await?;
        self.stdin.flush().await?;
        let status = tokio::time::timeout(TIMEOUT, self.child.wait()).await??;
        assert!(status.success(), "the JS client exited with {status}");
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_between_a_rust_phone_and_the_js_client_is_resolved_on_both(
) -> anyhow::Result<()> {
    let world = World::builder("Plaine des Chères")
        .coordinator("Marie")
        .volunteer("Camille")
        .second_device("Camille")
        .build()
        .await?;
    let (server, pool, t) = (&world.server, &world.pool, world.territory.id);
    let url = server.sync_url();
    let coordinator = world.coordinator();
    let camille = world.volunteer("Camille");
    let js_device = world.second_device("Camille");

    // The Rust phone records a sighting and syncs; the JS client (Camille's
    // second device) fetches the notebook.
    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    let sighting = records::sighting(camille.account_id, "Lepus europaeus", 1);
    let record = sighting.id();
    phone.record(&sighting)?;
    phone.go_online(&url).await?;
    phone.wait_synced(TIMEOUT).await?;
    let notebook = phone.notebook_id().to_string();
    let mut js_phone = JsPhone::fetch(&url, js_device, &notebook).await?;
    let count = json!(["sightings", record.to_string(), "individualCount"]);
    js_phone
        .send(json!({"do": "read", "path": count, "value": 1, "conflicts": null}))
        .await?;

    // Both go offline and each counts differently there.
    phone.go_offline();
    let offline = js_phone.send(json!({"do": "offline"})).await?;
    assert_eq!(
        (&offline["online"], &offline["peers"]),
        (&json!(false), &json!([])),
        "{offline}"
    );
    phone.edit(RecordKind::Sighting, record, "individualCount", &json!(3))?;
    let edited = js_phone
        .send(json!({"do": "edit", "path": count, "value": 5}))
        .await?;
    assert_eq!(
        (&edited["edited"], &edited["online"]),
        (&json!(true), &json!(false)),
        "the JS client edits while it has no connection: {edited}"
    );

    // Both come back and sync.
    phone.go_online(&url).await?;
    let online = js_phone.send(json!({"do": "online"})).await?;
    assert_eq!(online["online"], true, "{online}");
    phone.wait_synced(TIMEOUT).await?;
    eventually(TIMEOUT, "the conflict in the inventory", || async {
        let conflicted: bool =
            sqlx::query_scalar("SELECT has_conflicts FROM sightings WHERE id = $1")
                .bind(record)
                .fetch_one(pool)
                .await?;
        Ok(conflicted.then_some(()))
    })
    .await?;

    // The coordinator's queue shows both values, each with the device that wrote it.
    let queue = format!("/api/territories/{t}/review/conflicts");
    let (status, page) = server.as_(&coordinator.token).get(&queue).await?;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["items"][0]["id"], record.to_string(), "{page}");
    let conflicts = page["items"][0]["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{page}");
    let conflict = &conflicts[0];
    assert_eq!(conflict["field"], "individualCount", "{page}");
    let mut written: Vec<(i64, String)> = conflict["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert_eq!(v["writtenBy"]["displayName"], "Camille", "{v}");
            (
                v["value"].as_i64().unwrap(),
                v["writtenBy"]["deviceId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    written.sort();
    assert_eq!(
        written,
        vec![
            (3, camille.device.device_id.to_string()),
            (5, js_device.device_id.to_string())
        ]
    );

    // Each copy holds the conflict, and both show the same winner as the queue.
    let on_phone = eventually(TIMEOUT, "the JS value on the Rust phone", || async {
        let (value, conflicted) = field_on_phone(&phone, record, "individualCount");
        Ok(conflicted.then_some(value))
    })
    .await?;
    let on_js = js_phone
        .send(json!({"do": "read", "path": count, "conflicts": [3, 5]}))
        .await?;
    assert_eq!(on_phone, conflict["winner"], "{page}");
    assert_eq!(on_js["value"], conflict["winner"], "{on_js}");

    // The JS phone goes back into the field; the coordinator resolves.
    js_phone.send(json!({"do": "offline"})).await?;
    let resolution = format!("/api/territories/{t}/review/conflicts/{record}/resolution");
    let (status, body) = server
        .as_(&coordinator.token)
        .post(
            &resolution,
            &json!({"field": "individualCount", "value": 4, "reason": "counted on the photo"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");

    // The connected Rust phone receives it; the JS phone once it syncs again.
    eventually(TIMEOUT, "the Rust phone holds the resolution", || async {
        Ok((field_on_phone(&phone, record, "individualCount") == (json!(4), false)).then_some(()))
    })
    .await?;
    let still_offline = js_phone
        .send(json!({"do": "read", "path": count, "conflicts": [3, 5]}))
        .await?;
    assert_eq!(
        still_offline["value"], conflict["winner"],
        "{still_offline}"
    );
    js_phone.send(json!({"do": "online"})).await?;
    let resolved = js_phone
        .send(json!({"do": "read", "path": count, "value": 4, "conflicts": null}))
        .await?;
    assert_eq!(resolved["value"], 4, "{resolved}");
    let js_synced = js_phone.send(json!({"do": "online"})).await?;
    let mut js_heads: Vec<String> = serde_json::from_value(js_synced["heads"].clone())?;
    js_heads.sort();
    eventually(TIMEOUT, "the same heads on both phones", || async {
        let mut heads: Vec<String> = phone.heads().iter().map(ToString::to_string).collect();
        heads.sort();
        Ok((heads == js_heads).then_some(()))
    })
    .await?;

    // The queue is empty and the inventory holds the resolved count.
    let (status, page) = server.as_(&coordinator.token).get(&queue).await?;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"], json!([]), "the conflict queue is empty");
    let stored: (Option<i64>, bool) =
        sqlx::query_as("SELECT individual_count, has_conflicts FROM sightings WHERE id = $1")
            .bind(record)
            .fetch_one(pool)
            .await?;
    assert_eq!(stored, (Some(4), false));

    js_phone.exit().await?;
    phone.shut_down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_reach_their_volunteers_phone_only_and_no_phone_can_write_one(
) -> anyhow::Result<()> {
    let world = World::builder("Vallon des Hôpitaux")
        .coordinator("Marie")
        .volunteer("Camille")
        .volunteer("Lou")
        .build()
        .await?;
    let (server, pool, t) = (&world.server, &world.pool, world.territory.id);
    let url = server.sync_url();
    let coordinator = world.coordinator();
    let (camille, lou) = (world.volunteer("Camille"), world.volunteer("Lou"));
    let mut sightings = Vec::new();
    let mut phones = Vec::new();
    for volunteer in [&camille, &lou] {
        let mut phone =
            Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
        let sighting = records::sighting(volunteer.account_id, "Bufo bufo", 2);
        phone.record(&sighting)?;
        phone.go_online(&url).await?;
        phone.wait_synced(TIMEOUT).await?;
        phones.push(phone);
        sightings.push(sighting.id());
    }
    eventually(TIMEOUT, "both sightings filed", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings")
            .fetch_one(pool)
            .await?;
        Ok((n == 2).then_some(()))
    })
    .await?;

    let review_document = |token: String| async move {
        let (status, body) = server
            .as_(&token)
            .get(&format!("/api/territories/{t}/review-document"))
            .await?;
        assert_eq!(status, 200, "{body}");
        anyhow::Ok(
            body["documentId"]
                .as_str()
                .unwrap()
                .parse::<samod::DocumentId>()?,
        )
    };
    let camille_doc = review_document(camille.device.secret.clone()).await?;
    let lou_doc = review_document(lou.device.secret.clone()).await?;
    assert_ne!(camille_doc, lou_doc);
    assert_eq!(
        review_document(camille.device.secret.clone()).await?,
        camille_doc,
        "one per volunteer"
    );

    let decisions = format!("/api/territories/{t}/review/decisions");
    let (status, body) = server.as_(&coordinator.token).post(&decisions, &json!({
        "decision": "verification", "status": "1", "reason": "clear photo", "records": [sightings[0]],
    })).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["publishedToPhones"], true);

    // Camille's phone reads the decision about her sighting.
    let mut camille_peer = RawPeer::connect(&url, &camille.device).await?;
    let mut synced = camille_peer
        .fetch_synced(&camille_doc, TIMEOUT)
        .await?
        .context("Camille's review document")?;
    let held = read_decisions(&synced.doc);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (
            held[0].record_id,
            held[0].status.as_str(),
            held[0].decided_by.as_str()
        ),
        (sightings[0], "1", "Marie")
    );
    assert_eq!(held[0].reason.as_deref(), Some("clear photo"));

    // So does her phone's own library, and still once offline.
    let mut camille_phone = phones.remove(0);
    let on_phone = camille_phone.decisions(camille_doc.clone()).await?;
    assert_eq!(on_phone, held);
    camille_phone.go_offline();
    assert_eq!(camille_phone.decisions(camille_doc.clone()).await?, held);
    camille_phone.shut_down().await;
    for phone in phones {
        phone.shut_down().await;
    }

    // Lou may not read it; his own holds only the decisions about his records.
    let mut lou_peer = RawPeer::connect(&url, &lou.device).await?;
    assert!(
        lou_peer.fetch(&camille_doc, TIMEOUT).await?.is_none(),
        "another volunteer's decisions are unavailable"
    );
    let (status, _) = server.as_(&coordinator.token).post(&decisions, &json!({
        "decision": "verification", "status": "3", "reason": "doubtful", "records": [sightings[1]],
    })).await?;
    assert_eq!(status, 200);
    let lou_review = lou_peer
        .fetch(&lou_doc, TIMEOUT)
        .await?
        .context("Lou's review document")?;
    let held: Vec<Uuid> = read_decisions(&lou_review)
        .iter()
        .map(|d| d.record_id)
        .collect();
    assert_eq!(held, vec![sightings[1]]);

    // A new decision reaches Camille's connected phone without asking.
    let (status, _) = server.as_(&coordinator.token).post(&decisions, &json!({
        "decision": "verification", "status": "4", "reason": "a natterjack, not a common toad", "records": [sightings[0]],
    })).await?;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while read_decisions(&synced.doc)
        .first()
        .map(|d| d.status.as_str())
        != Some("4")
    {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let envelope = camille_peer
            .next_envelope(remaining)
            .await?
            .context("the pushed decision")?;
        camille_peer.apply_sync(&mut synced, &envelope).await?;
    }

    // Camille's phone approving its own decision is refused at the sync level.
    let revision_before: i64 =
        sqlx::query_scalar("SELECT revision FROM documents WHERE doc_id = $1")
            .bind(camille_doc.to_string())
            .fetch_one(pool)
            .await?;
    let before = synced.doc.clone();
    let mut forged = read_decisions(&synced.doc);
    forged[0].status = "1".into();
    forged[0].decided_by = "Camille".into();
    sync::documents::review::put_decisions(
        &mut synced.doc,
        sync::documents::NotebookHeader {
            territory_id: t,
            owner_id: camille.account_id,
        },
        &forged,
    )?;
    let mut message = fieldnotes_tests::raw_peer::all_changes_message(&synced.doc);
    message.changes = synced
        .doc
        .get_changes(&before.get_heads())
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect::<Vec<_>>()
        .into();
    camille_peer
        .send_sync(&camille_doc, &message.encode())
        .await?;
    let replies = camille_peer.messages_until_closed(TIMEOUT).await?;
    assert!(
        replies.iter().any(|m| m.kind == "error"
            && m.message
                .as_deref()
                .is_some_and(|e| e.contains("review document"))),
        "{replies:?}"
    );
    let revision_after: i64 =
        sqlx::query_scalar("SELECT revision FROM documents WHERE doc_id = $1")
            .bind(camille_doc.to_string())
            .fetch_one(pool)
            .await?;
    assert_eq!(revision_after, revision_before, "nothing stored");
    let status: i16 = sqlx::query_scalar("SELECT validation_status FROM sightings WHERE id = $1")
        .bind(sightings[0])
        .fetch_one(pool)
        .await?;
    assert_eq!(status, 4);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_is_held_to_the_limits_of_a_phones_write() -> anyhow::Result<()> {
    let world = World::builder("Étang de la Ronze")
        .coordinator("Marie")
        .volunteer("Camille")
        .second_device("Camille")
        .build()
        .await?;
    let (server, pool, t) = (&world.server, &world.pool, world.territory.id);
    let url = server.sync_url();
    let coordinator = world.coordinator();
    let camille = world.volunteer("Camille");
    let second_device = world.second_device("Camille");

    // Two phones set a field of the client's own (as the probe did) and the
    // notes, offline, differently.
    let mut phone_a = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    let shared = records::sighting(camille.account_id, "Natrix helvetica", 1);
    let record = shared.id();
    phone_a.record(&shared)?;
    phone_a.go_online(&url).await?;
    phone_a.wait_synced(TIMEOUT).await?;
    let mut phone_b =
        Phone::fetch_notebook(&url, Some(second_device.clone()), phone_a.notebook_id()).await?;
    phone_a.go_offline();
    phone_b.go_offline();
    for (phone, value) in [(&phone_a, "roselière"), (&phone_b, "berge")] {
        phone.edit(RecordKind::Sighting, record, "habitatNote", &json!(value))?;
        phone.edit(RecordKind::Sighting, record, "notes", &json!(value))?;
    }
    phone_a.go_online(&url).await?;
    phone_b.go_online(&url).await?;
    phone_a.wait_synced(TIMEOUT).await?;
    phone_b.wait_synced(TIMEOUT).await?;
    eventually(TIMEOUT, "both conflicts in the inventory", || async {
        let conflicts: i32 =
            sqlx::query_scalar("SELECT jsonb_array_length(conflicts) FROM sightings WHERE id = $1")
                .bind(record)
                .fetch_one(pool)
                .await?;
        Ok((conflicts == 2).then_some(()))
    })
    .await?;

    let resolution = format!("/api/territories/{t}/review/conflicts/{record}/resolution");
    let resolve = |field: &str, value: Value| {
        let body = json!({ "field": field, "value": value });
        let (server, resolution, token) = (server, &resolution, &coordinator.token);
        async move { server.as_(token).post(resolution, &body).await }
    };
    // One character over the limit a phone is held to, for a field the
    // schema does not describe (1000) and for the notes (10 000); a list
    // of more items than a client's own list may hold.
    let limits = schemas::limits::EXTRA_FIELD_MAX_CHARS as usize;
    let notes = schemas::limits::TEXT_MAX_CHARS as usize;
    for (field, value, limit) in [
        ("habitatNote", json!("x".repeat(limits + 1)), limits),
        ("notes", json!("x".repeat(notes + 1)), notes),
        (
            "habitatNote",
            json!(vec!["x"; sync::judge::EXTRA_LIST_MAX_ITEMS + 1]),
            sync::judge::EXTRA_LIST_MAX_ITEMS,
        ),
    ] {
        let (status, body) = resolve(field, value).await?;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some("value")),
            "{body}"
        );
        assert!(
            message.contains(&format!("{record}.{field}"))
                && message.contains(&format!("the limit is {limit}")),
            "{body}"
        );
    }
    // Nothing was written: both fields are still in conflict.
    let conflicts: i32 =
        sqlx::query_scalar("SELECT jsonb_array_length(conflicts) FROM sightings WHERE id = $1")
            .bind(record)
            .fetch_one(pool)
            .await?;
    assert_eq!(conflicts, 2);
    // At the limit, it is written.
    let (status, body) = resolve("habitatNote", json!("x".repeat(limits))).await?;
    assert_eq!(status, 200, "{body}");

    phone_a.shut_down().await;
    phone_b.shut_down().await;
    Ok(())
}
