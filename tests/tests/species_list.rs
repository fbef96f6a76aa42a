//! The territory's species list (issue 11): a coordinator imports a
//! TAXREF-style CSV, every member's phone syncs it as an automerge document,
//! and a re-import reaches an already synced phone as a small delta (bytes
//! measured). A bad file changes nothing; only coordinators import; no phone
//! writes the list; nobody outside the territory reads it. And a volunteer's
//! next device finds the notebook their first phone synced.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context;
use automerge::ReadDoc;
use fieldnotes_tests::{
    accounts::{self, Actor},
    init_test_logging, phones,
    raw_peer::{all_changes_message, RawPeer, SyncedDoc},
    records, ServerProcess, TestDatabase,
};
use mobile_bridge::Phone;
use serde_json::{json, Value};
use sqlx::PgPool;
use sync::documents::species::{read_species_list, Species};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(60);

/// `count` made-up taxa, a third of them without a vernacular name.
fn generated_list(count: i64) -> Vec<Species> {
    (0..count)
        .map(|i| Species {
            scientific_name: format!("Genus{:04} epithet{i:05}", i / 7),
            vernacular_name: (i % 3 != 0).then(|| format!("Espèce des friches n°{i}")),
            taxon_id: Some(100_000 + i),
            rank: Some(if i % 50 == 0 { "SSES" } else { "ES" }.to_string()),
        })
        .collect()
}

/// The list as a TAXREF extract: tab-separated, with columns the import ignores.
fn taxref_tsv(species: &[Species]) -> String {
    let mut tsv = String::from("REGNE\tCD_NOM\tCD_REF\tRANG\tLB_NOM\tLB_AUTEUR\tNOM_VERN\n");
    for s in species {
        let id = s.taxon_id.map(|id| id.to_string()).unwrap_or_default();
        tsv.push_str(&format!(
            "Animalia\t{id}\t{id}\t{}\t{}\tLinnaeus, 1758\t{}\n",
            s.rank.as_deref().unwrap_or_default(),
            s.scientific_name,
            s.vernacular_name.as_deref().unwrap_or_default()
        ));
    }
    tsv
}

fn by_key(species: &[Species]) -> BTreeMap<String, Species> {
    species.iter().map(|s| (s.key(), s.clone())).collect()
}

/// `PUT …/species-list` with `body` as `content_type`.
async fn import(
    server: &ServerProcess,
    territory: Uuid,
    token: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> anyhow::Result<(u16, Value)> {
    let response = reqwest::Client::new()
        .put(server.http_url(&format!("/api/territories/{territory}/species-list")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

async fn species_list(
    server: &ServerProcess,
    territory: Uuid,
    token: &str,
) -> anyhow::Result<(u16, Value)> {
    let path = format!("/api/territories/{territory}/species-list");
    server.as_(token).get(&path).await
}

async fn revision(pool: &PgPool, doc_id: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT revision FROM documents WHERE doc_id = $1")
            .bind(doc_id)
            .fetch_one(pool)
            .await?,
    )
}

async fn connect_device(server: &ServerProcess, actor: &Actor) -> anyhow::Result<RawPeer> {
    let device = actor.device_id.context("a device")?;
    RawPeer::connect_as(
        &server.sync_url(),
        &actor.token,
        &format!("device-{device}"),
    )
    .await
}

/// Applies what the server pushes to `synced` until it holds `expected`.
async fn receive_until(
    peer: &mut RawPeer,
    synced: &mut SyncedDoc,
    expected: &BTreeMap<String, Species>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while read_species_list(&synced.doc) != *expected {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let envelope = peer
            .next_envelope(remaining)
            .await?
            .context("the server closed the connection before the update arrived")?;
        anyhow::ensure!(envelope.kind != "error", "{envelope:?}");
        peer.apply_sync(synced, &envelope).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reimported_list_reaches_a_synced_phone_as_a_small_delta() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let t = f.territory_a;

    // Before any import: the document is known, and holds an empty list
    // (written on this first ask, so phones can sync it already).
    let (status, before) = species_list(&server, t, &f.volunteer.token).await?;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["species"], json!(0), "{before}");
    assert!(before["updatedAt"].is_string(), "{before}");
    let doc_id = before["documentId"].as_str().unwrap().to_string();

    let first = generated_list(5_000);
    let (status, body) = import(
        &server,
        t,
        &f.coordinator.token,
        "text/tab-separated-values; charset=utf-8",
        taxref_tsv(&first),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"added": 5000, "changed": 0, "removed": 0, "species": 5000, "documentId": doc_id})
    );
    let (_, summary) = species_list(&server, t, &f.volunteer.token).await?;
    assert_eq!(summary["documentId"], doc_id.as_str());
    assert_eq!(summary["species"], 5000);
    assert!(summary["updatedAt"].is_string(), "{summary}");

    // The volunteer's phone syncs the whole list.
    let mut phone = connect_device(&server, &f.volunteer).await?;
    let document: samod::DocumentId = doc_id.parse()?;
    let mut synced = phone
        .fetch_synced(&document, TIMEOUT)
        .await?
        .context("the species list is available to a volunteer")?;
    assert_eq!(read_species_list(&synced.doc), by_key(&first));
    let full_sync = synced.received_bytes;

    // One renamed, one added, one removed.
    let mut second = first.clone();
    second[17].scientific_name = "Genus0002 renamedus".into();
    second[17].vernacular_name = Some("Espèce renommée".into());
    second.remove(4000);
    second.push(Species {
        scientific_name: "Parus major".into(),
        vernacular_name: Some("Mésange charbonnière".into()),
        taxon_id: Some(3764),
        rank: Some("ES".into()),
    });
    let (status, body) = import(
        &server,
        t,
        &f.coordinator.token,
        "text/csv",
        taxref_tsv(&second),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"added": 1, "changed": 1, "removed": 1, "species": 5000, "documentId": doc_id})
    );
    receive_until(&mut phone, &mut synced, &by_key(&second)).await?;
    let delta = synced.received_bytes - full_sync;
    println!(
        "species list of 5000: first sync received {full_sync} bytes; the update (1 renamed, 1 added, 1 removed) {delta} bytes ({:.2}% of it)",
        100.0 * delta as f64 / full_sync as f64
    );
    assert!(
        delta * 20 < full_sync,
        "the update cost {delta} bytes, the first sync {full_sync}: not a delta"
    );

    // The same list again writes nothing; each import is receipted to the
    // coordinator's session.
    let stored = revision(&pool, &doc_id).await?;
    let (status, body) = import(
        &server,
        t,
        &f.coordinator.token,
        "text/csv",
        taxref_tsv(&second),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["added"].clone(),
            body["changed"].clone(),
            body["removed"].clone()
        ),
        (json!(0), json!(0), json!(0))
    );
    assert_eq!(revision(&pool, &doc_id).await?, stored);
    let (receipts, by_coordinator): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE account_id = $2 AND session_id IS NOT NULL) \
         FROM change_receipts WHERE doc_id = $1",
    )
    .bind(&doc_id)
    .bind(f.coordinator.account_id)
    .fetch_one(&pool)
    .await?;
    // The first change is the empty list the server wrote when it was
    // first asked for: the server's own, with no receipt.
    assert_eq!(
        (receipts, by_coordinator),
        (synced.doc.get_changes(&[]).len() as i64 - 1, receipts),
        "every imported change of the list is receipted to the coordinator's session"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_list_changes_nothing_and_only_the_territorys_coordinators_import_one(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let t = f.territory_a;
    let good = "CD_NOM\tLB_NOM\tNOM_VERN\tRANG\n\
                3764\tParus major\tMésange charbonnière\tES\n\
                4001\tErithacus rubecula\tRougegorge familier\tES\n\
                \tTaraxacum Sect. Ruderalia\t\t\n";
    let (status, body) = import(&server, t, &f.coordinator.token, "text/csv", good).await?;
    assert_eq!(status, 200, "{body}");
    let doc_id = body["documentId"].as_str().unwrap().to_string();
    let stored = revision(&pool, &doc_id).await?;

    let refused = [
        (
            "CD_NOM\tLB_NOM\n3764\tParus major\nabc\tErithacus rubecula\n",
            "CD_NOM",
            r#"line 3: CD_NOM "abc" is not an integer"#,
        ),
        (
            "CD_NOM;NOM_VERN\n3764;Mésange charbonnière\n",
            "LB_NOM",
            "line 1: the header has no LB_NOM (or scientificName) column",
        ),
        (
            "cd_nom,lb_nom\n3764,Parus major\n4001,Erithacus rubecula\n3764,Parus major major\n",
            "CD_NOM",
            "lines 2 and 4 both give CD_NOM 3764",
        ),
    ];
    for (file, field, message) in refused {
        let (status, body) = import(&server, t, &f.coordinator.token, "text/csv", file).await?;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
        let said = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            said.starts_with(message),
            "{said:?} should start with {message:?}"
        );
    }
    // Two bad rows: the import names the first and counts the other; the
    // preview lists both, by line and column, with what the readable rows
    // would change, and writes nothing either.
    let two_bad = "CD_NOM\tLB_NOM\n3764\tParus major\nabc\tErithacus rubecula\n4002\t\n5000\tRana temporaria\n";
    let (status, body) = import(&server, t, &f.coordinator.token, "text/csv", two_bad).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["message"],
        r#"line 3: CD_NOM "abc" is not an integer (and 1 other problem: preview the file to see them all)"#
    );
    let preview = reqwest::Client::new()
        .post(server.http_url(&format!("/api/territories/{t}/species-list/preview")))
        .bearer_auth(&f.coordinator.token)
        .header("content-type", "text/tab-separated-values")
        .body(two_bad)
        .send()
        .await?;
    assert_eq!(preview.status().as_u16(), 200);
    let preview: Value = preview.json().await?;
    assert_eq!(
        preview["problems"],
        json!([
            {"line": 3, "column": "CD_NOM", "message": r#"line 3: CD_NOM "abc" is not an integer"#},
            {"line": 4, "column": "LB_NOM", "message": "line 4: LB_NOM is empty; every species needs its scientific name"},
        ]),
        "{preview}"
    );
    assert_eq!(preview["unlistedProblems"], 0);
    assert_eq!(preview["added"], json!(["Rana temporaria"]), "{preview}");
    assert_eq!(preview["species"], 2, "{preview}");
    let (status, body) = import(&server, t, &f.coordinator.token, "application/json", good).await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (415, Some("Content-Type")),
        "{body}"
    );
    // Above 16 MiB: refused from the headers when they declare it, else once past it.
    let oversize = vec![b'a'; 16 * 1024 * 1024 + 1];
    let put = format!(
        "PUT /api/territories/{t}/species-list HTTP/1.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: text/csv\r\n",
        f.coordinator.token
    );
    let head = format!("{put}Content-Length: {}\r\n", oversize.len());
    let (status, _, body) = server.send_raw(&head, oversize.clone()).await?;
    let body: Value = serde_json::from_slice(&body)?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (413, Some("Content-Length")),
        "{body}"
    );
    let mut chunked = Vec::new();
    for piece in oversize.chunks(1024 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!("{put}Transfer-Encoding: chunked\r\n");
    let (status, _, body) = server.send_raw(&head, chunked).await?;
    let body: Value = serde_json::from_slice(&body)?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (413, Some("body")),
        "{body}"
    );

    // Régie auditors read and never write; volunteers pick from the list; a
    // coordinator of A imports nothing into B.
    let replacement = "LB_NOM\nVulpes vulpes\n";
    for (who, token, territory) in [
        ("auditor", &f.auditor.token, t),
        ("volunteer", &f.volunteer.token, t),
        (
            "coordinator of another territory",
            &f.coordinator.token,
            f.territory_b,
        ),
    ] {
        let (status, body) = import(&server, territory, token, "text/csv", replacement).await?;
        assert_eq!(status, 403, "{who}: {body}");
    }
    assert_eq!(
        revision(&pool, &doc_id).await?,
        stored,
        "nothing was written"
    );
    let (_, summary) = species_list(&server, t, &f.auditor.token).await?;
    assert_eq!(summary["species"], 3, "{summary}");

    // Read over sync by a volunteer's device and an auditor's web session.
    let mut volunteer = connect_device(&server, &f.volunteer).await?;
    let document: samod::DocumentId = doc_id.parse()?;
    let mut synced = volunteer
        .fetch_synced(&document, TIMEOUT)
        .await?
        .context("the volunteer reads the list")?;
    assert_eq!(read_species_list(&synced.doc).len(), 3);
    let me: Value = reqwest::Client::new()
        .get(server.http_url("/api/me"))
        .bearer_auth(&f.auditor.token)
        .send()
        .await?
        .json()
        .await?;
    let session = me["credential"]["id"].as_str().unwrap_or_default();
    let mut auditor = RawPeer::connect_as(
        &server.sync_url(),
        &f.auditor.token,
        &format!("session-{session}"),
    )
    .await?;
    let held = auditor
        .fetch(&document, TIMEOUT)
        .await?
        .context("the auditor reads the list")?;
    assert_eq!(read_species_list(&held).len(), 3);

    // Nobody outside the territory: not over HTTP, not over sync.
    let (status, _) = species_list(&server, t, &f.other_volunteer.token).await?;
    assert_eq!(status, 403);
    let mut outsider = connect_device(&server, &f.other_volunteer).await?;
    assert!(
        outsider.fetch(&document, TIMEOUT).await?.is_none(),
        "another territory's volunteer is told the list is unavailable"
    );

    // A phone adding a taxon of its own is refused at the sync level.
    let before = synced.doc.get_heads();
    let mut forged: Vec<Species> = read_species_list(&synced.doc).into_values().collect();
    forged.push(Species {
        scientific_name: "Vulpes vulpes".into(),
        vernacular_name: Some("Renard roux".into()),
        taxon_id: Some(60585),
        rank: Some("ES".into()),
    });
    sync::documents::species::put_species_list(&mut synced.doc, t, &forged)?;
    let mut message = all_changes_message(&synced.doc);
    message.changes = synced
        .doc
        .get_changes(&before)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect::<Vec<_>>()
        .into();
    volunteer.send_sync(&document, &message.encode()).await?;
    let replies = volunteer.messages_until_closed(TIMEOUT).await?;
    assert!(
        replies.iter().any(|m| m.kind == "error"
            && m.message
                .as_deref()
                .is_some_and(|e| e.contains("species list"))),
        "{replies:?}"
    );
    assert_eq!(revision(&pool, &doc_id).await?, stored, "nothing stored");
    let (_, summary) = species_list(&server, t, &f.coordinator.token).await?;
    assert_eq!(summary["species"], 3, "{summary}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteers_next_device_finds_the_notebook_their_phone_synced() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Friche Saint-Sauveur").await?;
    let camille = phones::enrol_volunteer(&pool, &territory, "Camille").await?;
    let lou = phones::enrol_volunteer(&pool, &territory, "Lou").await?;
    let elsewhere = phones::territory(&pool, "Parc de la Tête d'Or").await?;
    let path = format!("/api/territories/{}/notebooks", territory.id);

    let (status, body) = server.as_(&camille.device.secret).get(&path).await?;
    assert_eq!((status, body), (200, json!({"notebooks": []})));

    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    phone.record(&records::sighting(camille.account_id, "Bufo bufo", 2))?;
    phone.record(&records::sighting(
        camille.account_id,
        "Erinaceus europaeus",
        1,
    ))?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;

    let (status, body) = server.as_(&camille.device.secret).get(&path).await?;
    assert_eq!(status, 200, "{body}");
    let listed = body["notebooks"].as_array().context("a list")?;
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["documentId"], phone.notebook_id().to_string());
    assert_eq!(listed[0]["records"], 2);
    assert!(listed[0]["updatedAt"].is_string(), "{body}");

    // Not another volunteer's, and not in a territory where Camille holds no role.
    let (status, body) = server.as_(&lou.device.secret).get(&path).await?;
    assert_eq!((status, body), (200, json!({"notebooks": []})));
    let (status, _) = server
        .as_(&camille.device.secret)
        .get(&format!("/api/territories/{}/notebooks", elsewhere.id))
        .await?;
    assert_eq!(status, 403);
    phone.shut_down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_reimported_whole_again_and_again_stays_bounded_for_a_new_phone(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let t = f.territory_a;
    let first = species_list(&server, t, &f.volunteer.token).await?.1["documentId"]
        .as_str()
        .context("a document id")?
        .to_string();

    // Every import renames every taxon: each is a whole new list.
    let mut documents = vec![first.clone()];
    for round in 0..6 {
        let list: Vec<Species> = generated_list(1_000)
            .into_iter()
            .map(|mut s| {
                s.scientific_name = format!("{} r{round}", s.scientific_name);
                s.vernacular_name = s.vernacular_name.map(|v| format!("{v} (liste {round})"));
                s
            })
            .collect();
        let (status, body) = import(
            &server,
            t,
            &f.coordinator.token,
            "text/csv",
            taxref_tsv(&list),
        )
        .await?;
        assert_eq!(status, 200, "{body}");
        let (_, summary) = species_list(&server, t, &f.volunteer.token).await?;
        let doc_id = summary["documentId"]
            .as_str()
            .context("a document id")?
            .to_string();
        assert_eq!(body["documentId"], doc_id.as_str(), "{body}");
        if documents.last() != Some(&doc_id) {
            documents.push(doc_id.clone());
        }

        // A new phone fetches the list as it is now, and its history
        // weighs at most MAX_HISTORY_FACTOR times a fresh write of it.
        let mut new_phone = connect_device(&server, &f.volunteer).await?;
        let fetched = new_phone
            .fetch(&doc_id.parse()?, TIMEOUT)
            .await?
            .context("the list is available to a volunteer")?;
        assert_eq!(read_species_list(&fetched), by_key(&list));
        let mut fresh = automerge::Automerge::new();
        sync::documents::species::put_species_list(&mut fresh, t, &list)?;
        let (held, fresh_ops) = (fetched.stats().num_ops, fresh.stats().num_ops);
        println!(
            "round {round}: document {doc_id}, {} changes, {held} operations (a fresh write: {fresh_ops})",
            fetched.get_changes(&[]).len()
        );
        assert!(
            held <= server::species::MAX_HISTORY_FACTOR * fresh_ops,
            "round {round}: a new phone fetched {held} operations for a list of {fresh_ops}"
        );
    }
    assert!(documents.len() > 1, "the list never moved: {documents:?}");
    // The first document is still a species list members read (a phone
    // holding it reads on until it follows the new one).
    let mut old_phone = connect_device(&server, &f.volunteer).await?;
    let old = old_phone
        .fetch(&first.parse()?, TIMEOUT)
        .await?
        .context("the former list is still readable")?;
    assert_eq!(read_species_list(&old).len(), 1_000);
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM documents WHERE doc_id = ANY($1) ORDER BY kind")
            .bind(&documents)
            .fetch_all(&pool)
            .await?;
    let current = kinds.iter().filter(|k| *k == "species_list").count();
    assert_eq!(current, 1, "{kinds:?}");
    Ok(())
}
