//! The régie's audit trail (issue 12): every accepted change and every
//! decision is in a hash-chained, append-only log; a record's history is
//! attributed step by step and its past state read back exactly; tampering
//! with the log as a superuser is found at the right entry, by the endpoint
//! and by the `verify-audit` subcommand; the service's own role cannot
//! rewrite it.

use std::time::Duration;

use fieldnotes_tests::{
    accounts, init_test_logging, phones,
    raw_peer::{session_peer_id, RawPeer},
    records, server_binary,
    world::World,
    ServerProcess, TestDatabase,
};
use schemas::{FieldRecord, RecordKind};
use serde_json::{json, Value};
use server::auth::Role;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_edited_on_two_phones_and_by_a_coordinator_has_an_attributed_history_and_past_states(
) -> anyhow::Result<()> {
    let mut world = World::builder("Coteau des Buis")
        .coordinator("Marie")
        .auditor("Régie")
        .volunteer("Camille")
        .second_device("Camille")
        .two_phone_conflict("Camille")
        .build()
        .await?;
    let conflict = world.take_conflict();
    let record = conflict.record;
    let (server, t) = (&world.server, world.territory.id);
    let (coordinator, auditor) = (world.coordinator(), world.auditor());
    let camille = world.volunteer("Camille");
    let second_device = world.second_device("Camille");
    let resolution = format!("/api/territories/{t}/review/conflicts/{record}/resolution");
    let (status, body) = server
        .as_(&coordinator.token)
        .post(
            &resolution,
            &json!({"field": "individualCount", "value": 4, "reason": "counted on the photo"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.as_(&coordinator.token).post(&format!("/api/territories/{t}/review/decisions"), &json!({"decision": "verification", "status": "1", "records": [record], "reason": "photo"}))
    .await?;
    assert_eq!(status, 200, "{body}");

    // Every step, attributed: three changes from the phones, the
    // coordinator's change and its resolution, the verification.
    let audit = format!("/api/territories/{t}/records/{record}/audit");
    let (status, history) = server.as_(&auditor.token).get(&audit).await?;
    assert_eq!(status, 200, "{history}");
    let steps = history["steps"].as_array().expect("steps");
    let summary: Vec<(String, String, Value, Value)> = steps
        .iter()
        .map(|s| {
            let who = match (&s["deviceId"], &s["sessionId"]) {
                (Value::String(device), _) if *device == camille.device.device_id.to_string() => {
                    "phone A"
                }
                (Value::String(device), _) if *device == second_device.device_id.to_string() => {
                    "phone B"
                }
                (_, Value::String(_)) => "web session",
                _ => "nobody",
            };
            (
                s["action"].as_str().unwrap_or("").to_string(),
                who.to_string(),
                s["before"]["individualCount"].clone(),
                s["after"]["individualCount"].clone(),
            )
        })
        .collect();
    let change = |who: &str, before: Value, after: Value| {
        ("change".to_string(), who.to_string(), before, after)
    };
    assert_eq!(
        summary[0],
        change("phone A", Value::Null, json!(1)),
        "{history}"
    );
    assert_eq!(
        summary[1],
        change("phone A", json!(1), json!(3)),
        "{history}"
    );
    assert_eq!(
        summary[2],
        change("phone B", json!(1), json!(5)),
        "{history}"
    );
    // The resolution, and the coordinator's change it made (one
    // transaction), which saw both values (the winner is one of them).
    assert_eq!(summary[3].0, "conflict_resolution", "{history}");
    assert_eq!(summary[4].0, "change", "{history}");
    assert_eq!(summary[4].1, "web session", "{history}");
    assert!([json!(3), json!(5)].contains(&summary[4].2), "{history}");
    assert_eq!(summary[4].3, json!(4), "{history}");
    assert_eq!(steps[3]["recordedAt"], steps[4]["recordedAt"], "{history}");
    assert_eq!(summary[5].0, "verification", "{history}");
    assert_eq!(steps.len(), 6, "{history}");
    for step in &steps[..3] {
        assert_eq!(step["actorId"], camille.account_id.to_string(), "{step}");
        assert_eq!(step["actorName"], "Camille", "{step}");
        assert!(
            step["changeHash"].as_str().is_some_and(|h| h.len() == 64),
            "{step}"
        );
    }
    for step in &steps[3..] {
        assert_eq!(
            step["actorId"],
            coordinator.account_id.to_string(),
            "{step}"
        );
    }
    assert_eq!(steps[0]["after"]["scientificName"], "Erinaceus europaeus");
    assert_eq!(steps[5]["detail"]["status"], "1", "{history}");
    assert_eq!(steps[5]["detail"]["reason"], "photo", "{history}");

    // The record at each step's time: created, both edits in conflict, resolved.
    let state_at = |at: &Value| {
        format!(
            "/api/territories/{t}/records/{record}/state?at={}",
            at.as_str().unwrap().replace('+', "%2B")
        )
    };
    let (status, created) = server
        .as_(&auditor.token)
        .get(&state_at(&steps[0]["recordedAt"]))
        .await?;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        (
            created["exists"].clone(),
            created["fields"]["individualCount"].clone()
        ),
        (json!(true), json!(1)),
        "{created}"
    );
    let (_, both) = server
        .as_(&auditor.token)
        .get(&state_at(&steps[2]["recordedAt"]))
        .await?;
    let conflict = both["conflicts"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["field"] == "individualCount"))
        .unwrap_or_else(|| panic!("the concurrent values then: {both}"));
    let mut values: Vec<i64> = conflict["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    values.sort();
    assert_eq!(values, vec![3, 5], "{both}");
    let (_, resolved) = server
        .as_(&auditor.token)
        .get(&state_at(&steps[3]["recordedAt"]))
        .await?;
    assert_eq!(resolved["fields"]["individualCount"], 4, "{resolved}");
    assert!(
        resolved["conflicts"]
            .as_array()
            .is_some_and(|c| c.is_empty()),
        "{resolved}"
    );
    let (_, before) = server
        .as_(&auditor.token)
        .get(&format!(
            "/api/territories/{t}/records/{record}/state?at=2001-01-01T00:00:00Z"
        ))
        .await?;
    assert_eq!(before["exists"], false, "{before}");

    // Refusals: a bad date names `at`; the volunteer reads no audit; an
    // unknown record is not found.
    let (status, body) = server
        .as_(&auditor.token)
        .get(&format!(
            "/api/territories/{t}/records/{record}/state?at=yesterday"
        ))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("at")),
        "{body}"
    );
    let (status, _) = server.as_(&camille.device.secret).get(&audit).await?;
    assert_eq!(status, 403);
    let (status, _) = server
        .as_(&auditor.token)
        .get(&format!(
            "/api/territories/{t}/records/{}/audit",
            Uuid::new_v4()
        ))
        .await?;
    assert_eq!(status, 404);

    // The chain holds, and holds an entry the auditor noted.
    let verification = format!("/api/territories/{t}/audit/verification");
    let (status, verified) = server.as_(&auditor.token).get(&verification).await?;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["intact"], true, "{verified}");
    assert_eq!(verified["entries"], verified["head"]["seq"], "{verified}");
    let noted = (&steps[2]["seq"], steps[2]["hash"].as_str().unwrap());
    let (_, anchored) = server
        .as_(&auditor.token)
        .get(&format!("{verification}?seq={}&hash={}", noted.0, noted.1))
        .await?;
    assert_eq!(anchored["anchorHolds"], true, "{anchored}");
    let (_, wrong) = server
        .as_(&auditor.token)
        .get(&format!(
            "{verification}?seq={}&hash={}",
            noted.0,
            "0".repeat(64)
        ))
        .await?;
    assert_eq!(wrong["anchorHolds"], false, "{wrong}");
    let (status, body) = server
        .as_(&auditor.token)
        .get(&format!("{verification}?seq=1"))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("hash")),
        "{body}"
    );

    // The trail, paged: every step of the record is in it, in chain order.
    let (status, page) = server
        .as_(&auditor.token)
        .get(&format!("/api/territories/{t}/audit/entries?limit=500"))
        .await?;
    assert_eq!(status, 200, "{page}");
    let seqs: Vec<i64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert!(steps
        .iter()
        .all(|s| seqs.contains(&s["seq"].as_i64().unwrap())));
    let (status, body) = server
        .as_(&auditor.token)
        .get(&format!("/api/territories/{t}/audit/entries?limit=0"))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("limit")),
        "{body}"
    );

    // Filtered: the record's changes by Camille (part of her name, any
    // case), in the period; the coordinator's decisions by kind.
    let entries = format!("/api/territories/{t}/audit/entries");
    let (status, page) = server
        .as_(&auditor.token)
        .get(&format!(
            "{entries}?record={record}&person=cAmIl&action=change&from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z"
        ))
        .await?;
    assert_eq!(status, 200, "{page}");
    let found = page["entries"].as_array().expect("entries");
    assert_eq!(found.len(), 3, "{page}");
    assert!(
        found.iter().all(|e| e["recordId"] == record.to_string()
            && e["action"] == "change"
            && e["actorName"] == "Camille"),
        "{page}"
    );
    let (_, page) = server
        .as_(&auditor.token)
        .get(&format!("{entries}?action=verification"))
        .await?;
    let found = page["entries"].as_array().expect("entries");
    assert_eq!(found.len(), 1, "{page}");
    assert_eq!(found[0]["actorId"], coordinator.account_id.to_string());
    let (_, page) = server
        .as_(&auditor.token)
        .get(&format!("{entries}?to=2001-01-01T00:00:00Z"))
        .await?;
    assert_eq!(page["entries"], json!([]), "{page}");
    // A bad filter is refused, named.
    for (query, field) in [
        ("record=nope", "record"),
        ("from=yesterday", "from"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("action=DROP%20TABLE", "action"),
    ] {
        let (status, body) = server
            .as_(&auditor.token)
            .get(&format!("{entries}?{query}"))
            .await?;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some(field)),
            "{query}: {body}"
        );
    }
    Ok(())
}

/// Accepted commits are queued by their transaction and written out as
/// entries later, each from its own chunk and the document at its own heads:
/// three commits of one record (made, edited, deleted) queued before any is
/// written out give the entries each commit would have given, attributed to
/// the device and session their receipts name, at the time each was queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_written_out_after_the_document_moved_on_give_each_commit_its_own_entries(
) -> anyhow::Result<()> {
    use automerge::transaction::Transactable;
    use automerge::ReadDoc;

    let HandStored {
        db: _db,
        service,
        territory,
        owner,
        mut notebook,
        doc_id,
    } = HandStored::new("Différé").await?;
    let (device, session) = (Uuid::new_v4(), Uuid::new_v4());
    let sighting = records::sighting(owner, "Bufo bufo", 2);
    let record = FieldRecord::id(&sighting);

    let mut queued_at = Vec::new();
    for step in 0..3 {
        // The first commit holds the notebook's header too.
        let heads_before = match step {
            0 => Vec::new(),
            _ => notebook.get_heads(),
        };
        match step {
            0 => sync::documents::put_record(&mut notebook, &sighting)?,
            1 => sync::documents::set_field(
                &mut notebook,
                RecordKind::Sighting,
                record,
                "individualCount",
                &json!(7),
            )?,
            _ => {
                let (_, sightings) = notebook
                    .get(automerge::ROOT, "sightings")?
                    .expect("the notebook has sightings");
                let mut tx = notebook.transaction();
                tx.delete(&sightings, record.to_string())?;
                tx.commit();
            }
        }
        let chunk_key = format!("{doc_id}/incremental/{step}");
        // The edit came from a web session, the others from the phone.
        let by = match step {
            1 => Deliverer::Session(session),
            _ => Deliverer::Device(device),
        };
        let commit = Commit {
            territory,
            doc_id: &doc_id,
            chunk_key,
            deliverer: (owner, by),
        };
        queued_at.push(
            commit
                .store_and_queue(&service, &notebook, &heads_before)
                .await?,
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    server::audit::chain::catch_up(&service).await?;
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_commits_pending")
        .fetch_one(&service)
        .await?;
    assert_eq!(queued, 0, "every queued commit is written out");
    // before, after, device, session, recorded at
    type Entry = (
        Value,
        Value,
        Option<Uuid>,
        Option<Uuid>,
        chrono::DateTime<chrono::Utc>,
    );
    let entries: Vec<Entry> = sqlx::query_as(
        "SELECT before, after, device_id, session_id, recorded_at FROM audit_log \
             WHERE territory_id = $1 AND record_id = $2 ORDER BY seq",
    )
    .bind(territory)
    .bind(record)
    .fetch_all(&service)
    .await?;
    assert_eq!(entries.len(), 3, "{entries:?}");
    let (made_before, made_after, made_device, _, made_at) = &entries[0];
    assert_eq!(made_before, &json!({}));
    assert_eq!(made_after["individualCount"], json!(2));
    assert_eq!(made_after["scientificName"], json!("Bufo bufo"));
    assert_eq!(*made_device, Some(device));
    let (edit_before, edit_after, edit_device, edit_session, edit_at) = &entries[1];
    assert_eq!(edit_before, &json!({"individualCount": 2}));
    assert_eq!(edit_after, &json!({"individualCount": 7}));
    assert_eq!((*edit_device, *edit_session), (None, Some(session)));
    let (gone_before, gone_after, _, _, gone_at) = &entries[2];
    assert_eq!(gone_before["individualCount"], json!(7));
    assert_eq!(gone_after, &json!({}));
    assert_eq!([*made_at, *edit_at, *gone_at], queued_at[..]);
    Ok(())
}

/// A territory and an owner's empty notebook, its `documents` row filed,
/// on a database the test's service pool writes: what the tests that store
/// commits by hand (as the sync core would) start from.
struct HandStored {
    /// Dropped with the test: the database goes, its connections forced off.
    db: TestDatabase,
    service: sqlx::PgPool,
    territory: Uuid,
    owner: Uuid,
    notebook: automerge::Automerge,
    doc_id: String,
}

impl HandStored {
    async fn new(territory_name: &str) -> anyhow::Result<HandStored> {
        init_test_logging();
        let db = TestDatabase::create().await?;
        let service = server::connect_database(&db.url, None, 2).await?;
        let territory = phones::territory(&service, territory_name).await?.id;
        let owner = Uuid::new_v4();
        let notebook = sync::documents::new_notebook(sync::documents::NotebookHeader {
            territory_id: territory,
            owner_id: owner,
        });
        let doc_id = accounts::seed_document(&service, territory, owner).await?;
        Ok(HandStored {
            db,
            service,
            territory,
            owner,
            notebook,
            doc_id,
        })
    }
}

/// Who delivered a commit's changes: a phone's device or a web session.
#[derive(Clone, Copy)]
enum Deliverer {
    Device(Uuid),
    Session(Uuid),
}

/// A commit of notebook changes, stored as the sync core stores one.
struct Commit<'a> {
    territory: Uuid,
    doc_id: &'a str,
    chunk_key: String,
    /// The account and the credential that delivered the changes.
    deliverer: (Uuid, Deliverer),
}

impl Commit<'_> {
    /// Stores the changes `notebook` made since `heads_before` (their chunk,
    /// a receipt each) and queues the commit for the audit trail, as the
    /// accepting transaction does; returns when it was queued.
    async fn store_and_queue(
        self,
        service: &sqlx::PgPool,
        notebook: &automerge::Automerge,
        heads_before: &[automerge::ChangeHash],
    ) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
        let changes: Vec<String> = notebook
            .get_changes(heads_before)
            .iter()
            .map(|change| change.hash().to_string())
            .collect();
        sqlx::query("INSERT INTO automerge_chunks (key, doc_id, data) VALUES ($1, $2, $3)")
            .bind(&self.chunk_key)
            .bind(self.doc_id)
            .bind(notebook.save_after(heads_before))
            .execute(service)
            .await?;
        let (account, deliverer) = self.deliverer;
        let (device, session) = match deliverer {
            Deliverer::Device(device) => (Some(device), None),
            Deliverer::Session(session) => (None, Some(session)),
        };
        for hash in &changes {
            sqlx::query(
                "INSERT INTO change_receipts (doc_id, change_hash, account_id, device_id, session_id) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(self.doc_id)
            .bind(hash)
            .bind(account)
            .bind(device)
            .bind(session)
            .execute(service)
            .await?;
        }
        let mut conn = service.acquire().await?;
        server::audit::trail::queue(
            &mut conn,
            vec![server::audit::trail::AcceptedCommit {
                territory: self.territory,
                doc_id: self.doc_id.to_string(),
                chunk_key: self.chunk_key,
                heads: notebook.get_heads().iter().map(|h| h.to_string()).collect(),
                changes,
            }],
        )
        .await?;
        Ok(
            sqlx::query_scalar("SELECT max(recorded_at) FROM audit_commits_pending")
                .fetch_one(&mut *conn)
                .await?,
        )
    }
}

/// A background catch-up gives way to phones syncing between two batches
/// (`interrupted` is asked after each), and chains nothing while a queued
/// commit waits to be written out: entries chain in the order their commits
/// began, however many turns writing them out takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_interrupted_between_batches_chains_nothing_until_every_commit_is_written_out(
) -> anyhow::Result<()> {
    let HandStored {
        db: _db,
        service,
        territory,
        owner,
        mut notebook,
        doc_id,
    } = HandStored::new("Interrompu").await?;
    let device = Uuid::new_v4();
    // More commits than one write-out batch takes, a sighting each.
    const COMMITS: i64 = 60;
    let mut recorded = Vec::new();
    for n in 0..COMMITS {
        let heads_before = match n {
            0 => Vec::new(),
            _ => notebook.get_heads(),
        };
        let sighting = records::sighting(owner, "Bufo bufo", n + 1);
        sync::documents::put_record(&mut notebook, &sighting)?;
        recorded.push(FieldRecord::id(&sighting));
        let commit = Commit {
            territory,
            doc_id: &doc_id,
            chunk_key: format!("{doc_id}/incremental/{n}"),
            deliverer: (owner, Deliverer::Device(device)),
        };
        commit
            .store_and_queue(&service, &notebook, &heads_before)
            .await?;
    }
    let counts = || async {
        sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT (SELECT count(*) FROM audit_commits_pending), \
                    (SELECT count(*) FROM audit_pending), \
                    (SELECT count(*) FROM audit_log WHERE territory_id = $1)",
        )
        .bind(territory)
        .fetch_one(&service)
        .await
    };

    // Phones sync again after the first batch: the turn ends there.
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let interrupted = || {
        asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        true
    };
    let chained = server::audit::chain::catch_up_unless(&service, &interrupted).await?;
    let (queued, pending, in_chain) = counts().await?;
    assert_eq!(asked.into_inner(), 1, "asked once, after the first batch");
    assert!(
        queued > 0 && queued < COMMITS,
        "one batch written out, not every commit: {queued} of {COMMITS} still queued"
    );
    assert_eq!(
        pending,
        COMMITS - queued,
        "a sighting's entry per commit written out"
    );
    assert_eq!(
        (chained, in_chain),
        (0, 0),
        "nothing chained while commits wait to be written out"
    );

    // A quiet turn takes the rest and chains everything, in commit order.
    let chained = server::audit::chain::catch_up_unless(&service, &|| false).await?;
    assert_eq!(chained, COMMITS as u64);
    assert_eq!(counts().await?, (0, 0, COMMITS));
    let chained_records: Vec<Uuid> =
        sqlx::query_scalar("SELECT record_id FROM audit_log WHERE territory_id = $1 ORDER BY seq")
            .bind(territory)
            .fetch_all(&service)
            .await?;
    assert_eq!(chained_records, recorded);
    let verification = server::audit::verify::verify(&service, territory, None).await?;
    assert!(verification.intact, "{verification:?}");
    Ok(())
}

/// A commit the write-out cannot store (a field name holding U+0000,
/// accepted before the sync judge refused such characters: an installation
/// the probe's volunteer reached) no longer stops the trail: it is set aside
/// with its reason, the commits before and after it are written out and
/// chained, the chain verifies and names it, and `/health` counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_entries_cannot_be_stored_is_set_aside_and_the_trail_goes_on(
) -> anyhow::Result<()> {
    use automerge::transaction::Transactable;
    let HandStored {
        db,
        service,
        territory,
        owner,
        mut notebook,
        doc_id,
    } = HandStored::new("Empoisonnée").await?;
    let device = Uuid::new_v4();
    let before = records::sighting(owner, "Bufo bufo", 1);
    let after = records::sighting(owner, "Rana temporaria", 2);
    let commit = |n: u32, notebook: &automerge::Automerge, heads: Vec<_>| {
        let commit = Commit {
            territory,
            doc_id: &doc_id,
            chunk_key: format!("{doc_id}/incremental/{n}"),
            deliverer: (owner, Deliverer::Device(device)),
        };
        let notebook = notebook.clone();
        let service = service.clone();
        async move { commit.store_and_queue(&service, &notebook, &heads).await }
    };
    sync::documents::put_record(&mut notebook, &before)?;
    commit(0, &notebook, Vec::new()).await?;
    let heads = notebook.get_heads();
    let (_, sightings) = automerge::ReadDoc::get(&notebook, automerge::ROOT, "sightings")?.unwrap();
    let (_, record) =
        automerge::ReadDoc::get(&notebook, &sightings, FieldRecord::id(&before).to_string())?
            .unwrap();
    notebook
        .transact::<_, _, automerge::AutomergeError>(|tx| tx.put(&record, "notes\u{0}x", "poison"))
        .map_err(|failure| anyhow::anyhow!("{:?}", failure.error))?;
    commit(1, &notebook, heads).await?;
    let heads = notebook.get_heads();
    sync::documents::put_record(&mut notebook, &after)?;
    commit(2, &notebook, heads).await?;

    server::audit::chain::catch_up(&service).await?;
    let (queued, set_aside): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM audit_commits_pending), \
                (SELECT count(*) FROM audit_commits_set_aside)",
    )
    .fetch_one(&service)
    .await?;
    assert_eq!(
        (queued, set_aside),
        (0, 1),
        "one commit set aside, none left queued"
    );
    let chained: Vec<Uuid> =
        sqlx::query_scalar("SELECT record_id FROM audit_log WHERE territory_id = $1 ORDER BY seq")
            .bind(territory)
            .fetch_all(&service)
            .await?;
    assert_eq!(chained, [FieldRecord::id(&before), FieldRecord::id(&after)]);
    let verification = server::audit::verify::verify(&service, territory, None).await?;
    assert!(verification.intact, "{verification:?}");
    assert_eq!(verification.set_aside_count, 1);
    let reason = &verification.set_aside[0].reason;
    assert!(
        reason.contains("notes{U+0000}x") && reason.contains("U+0000"),
        "the reason says where: {reason}"
    );
    assert_eq!(verification.set_aside[0].doc_id, doc_id);

    let server = ServerProcess::start(&db.url)?;
    let (status, health) = server.anonymous().get("/health").await?;
    assert_eq!(
        (status, &health["audit"]["setAsideCommits"]),
        (200, &json!(1))
    );
    Ok(())
}

/// One chaining pass takes entries of several territories appended in turn:
/// each territory's chain holds its own entries in the order they were
/// appended, carries on from its head at the next pass, and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_territories_appended_in_turn_are_chained_in_append_order_each(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let service = server::connect_database(&db.url, None, 2).await?;
    let north = phones::territory(&service, "Nord").await?.id;
    let south = phones::territory(&service, "Sud").await?.id;
    let mut appended = Vec::new();
    for pass in 0..2 {
        for n in 1..=4 {
            for territory in [north, south, north] {
                let step = appended.len();
                sqlx::query(
                    "INSERT INTO audit_pending (territory_id, action, actor_id, record_id, record_kind, after) \
                     VALUES ($1, 'change', $2, $3, 'sighting', $4)",
                )
                .bind(territory)
                .bind(Uuid::new_v4())
                .bind(Uuid::new_v4())
                .bind(json!({"step": step, "pass": pass, "n": n}))
                .execute(&service)
                .await?;
                appended.push((territory, step as i64));
            }
        }
        let chained = server::audit::chain::chain_pending(&service).await?;
        assert_eq!(chained, 12, "pass {pass}");
    }
    for territory in [north, south] {
        let steps: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, (after->>'step')::bigint FROM audit_log WHERE territory_id = $1 ORDER BY seq",
        )
        .bind(territory)
        .fetch_all(&service)
        .await?;
        let expected: Vec<(i64, i64)> = appended
            .iter()
            .filter(|(t, _)| *t == territory)
            .enumerate()
            .map(|(i, (_, step))| (i as i64 + 1, *step))
            .collect();
        assert_eq!(steps, expected);
        let verification = server::audit::verify::verify(&service, territory, None).await?;
        assert!(verification.intact, "{verification:?}");
        assert_eq!(verification.entries, expected.len() as i64);
        assert_eq!(
            verification.head.map(|head| head.seq),
            Some(expected.len() as i64)
        );
    }
    Ok(())
}

/// Six entries in a new territory, appended as the service appends them.
async fn audited_territory(service: &sqlx::PgPool, name: &str) -> anyhow::Result<Uuid> {
    let territory = phones::territory(service, name).await?.id;
    for n in 1..=6 {
        sqlx::query(
            "INSERT INTO audit_pending (territory_id, action, actor_id, record_id, record_kind, before, after) \
             VALUES ($1, 'change', $2, $3, 'sighting', $4, $5)",
        )
        .bind(territory)
        .bind(Uuid::new_v4())
        .bind(Uuid::new_v4())
        .bind(json!({"individualCount": n - 1}))
        .bind(json!({"individualCount": n}))
        .execute(service)
        .await?;
    }
    server::audit::chain::chain_pending(service).await?;
    Ok(territory)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_the_audit_log_is_found_at_the_right_entry_and_the_service_cannot_rewrite_it(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    // The service's own pool: migrations applied, its role taken.
    let service = server::connect_database(&db.url, None, 2).await?;
    let edited = audited_territory(&service, "Édité").await?;
    let deleted = audited_territory(&service, "Supprimé").await?;
    let swapped = audited_territory(&service, "Permuté").await?;
    let cut = audited_territory(&service, "Tronqué").await?;
    let untouched = audited_territory(&service, "Intact").await?;

    // The service's role may append pending entries, never rewrite them nor
    // write the chain itself.
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&service)
        .await?;
    assert_eq!(role, "fieldnotes_service");
    for statement in [
        "UPDATE audit_log SET after = '{}' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
        "TRUNCATE audit_log",
        "INSERT INTO audit_log (territory_id, seq, action, actor_id, prev_hash, hash) \
         SELECT territory_id, 99, 'change', actor_id, '', '' FROM audit_log LIMIT 1",
        "UPDATE audit_pending SET after = '{}'",
        "DELETE FROM audit_pending",
        "UPDATE audit_chain_heads SET seq = 1",
        "DELETE FROM audit_chain_heads",
        "UPDATE review_history SET reason = 'rewritten'",
        "DELETE FROM review_history",
    ] {
        let error = sqlx::query(statement)
            .execute(&service)
            .await
            .expect_err(statement);
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.to_string());
        assert_eq!(code.as_deref(), Some("42501"), "{statement}: {error}");
        // The role's missing right, not the append-only trigger (which
        // raises the same code): the grant itself refuses.
        assert!(
            error.to_string().contains("permission denied"),
            "{statement}: {error}"
        );
    }
    for (table, right) in [
        ("audit_log", "UPDATE"),
        ("audit_log", "DELETE"),
        ("audit_log", "INSERT"),
        ("audit_pending", "UPDATE"),
        ("audit_pending", "DELETE"),
        ("issued_reports", "UPDATE"),
        ("issued_reports", "DELETE"),
        ("review_history", "UPDATE"),
        ("review_history", "DELETE"),
    ] {
        let held: bool =
            sqlx::query_scalar("SELECT has_table_privilege('fieldnotes_service', $1, $2)")
                .bind(table)
                .bind(right)
                .fetch_one(&service)
                .await?;
        assert!(!held, "fieldnotes_service holds {right} on {table}");
    }
    // Nor can a superuser without disabling the triggers first.
    let mut superuser = PgConnection::connect(&db.url).await?;
    let error = sqlx::query("DELETE FROM audit_log WHERE territory_id = $1")
        .bind(edited)
        .execute(&mut superuser)
        .await
        .expect_err("the trigger refuses a delete");
    assert!(error.to_string().contains("append-only"), "{error}");

    // A superuser who disables the triggers: an edit, a deletion, a swap, a cut end.
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut superuser)
        .await?;
    sqlx::query("UPDATE audit_log SET after = '{\"individualCount\": 30}' WHERE territory_id = $1 AND seq = 3")
        .bind(edited).execute(&mut superuser).await?;
    sqlx::query("DELETE FROM audit_log WHERE territory_id = $1 AND seq = 4")
        .bind(deleted)
        .execute(&mut superuser)
        .await?;
    for (from, to) in [(2, -1), (5, 2), (-1, 5)] {
        sqlx::query("UPDATE audit_log SET seq = $3 WHERE territory_id = $1 AND seq = $2")
            .bind(swapped)
            .bind(from)
            .bind(to)
            .execute(&mut superuser)
            .await?;
    }
    sqlx::query("DELETE FROM audit_log WHERE territory_id = $1 AND seq = 6")
        .bind(cut)
        .execute(&mut superuser)
        .await?;
    superuser.close().await?;

    let expected = [
        (edited, Some((3, "no longer holds"))),
        (deleted, Some((4, "entry 4 is missing"))),
        (swapped, Some((2, "does not follow entry 1"))),
        (cut, Some((6, "entries 6 to 6 are missing"))),
        (untouched, None),
    ];

    // The endpoint, as the territories' auditor sees it.
    let server = ServerProcess::start(&db.url)?;
    let auditor =
        accounts::password_actor(&service, "Régie", Some((edited, Role::RegieAuditor)), false)
            .await?;
    for (territory, _) in &expected[1..] {
        server::auth::admin::add_membership(
            &service,
            auditor.account_id,
            *territory,
            Role::RegieAuditor,
            None,
        )
        .await?;
    }
    for (territory, broken) in expected {
        let path = format!("/api/territories/{territory}/audit/verification");
        let (status, found) = server.as_(&auditor.token).get(&path).await?;
        assert_eq!(status, 200, "{found}");
        match broken {
            Some((seq, problem)) => {
                assert_eq!(found["intact"], false, "{found}");
                assert_eq!(found["firstBroken"]["seq"], seq, "{found}");
                assert!(
                    found["firstBroken"]["problem"]
                        .as_str()
                        .unwrap()
                        .contains(problem),
                    "{found}"
                );
            }
            None => assert_eq!(
                (found["intact"].clone(), found["entries"].clone()),
                (json!(true), json!(6)),
                "{found}"
            ),
        }
    }
    drop(server);

    // The subcommand: one line per territory, exit status 1.
    let output = std::process::Command::new(server_binary()?)
        .arg("verify-audit")
        .env("DATABASE_URL", &db.url)
        .output()?;
    assert!(
        !output.status.success(),
        "verify-audit succeeded on a tampered log"
    );
    let stdout = String::from_utf8(output.stdout)?;
    let lines: Vec<Value> = stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    for (territory, broken) in expected {
        let line = lines
            .iter()
            .find(|l| l["territoryId"] == territory.to_string())
            .unwrap_or_else(|| panic!("no line for {territory}: {stdout}"));
        assert_eq!(
            line["firstBroken"]["seq"].as_i64(),
            broken.map(|(seq, _)| seq),
            "{line}"
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&edited.to_string()), "{stderr}");
    let one = std::process::Command::new(server_binary()?)
        .args(["verify-audit", "--territory", &untouched.to_string()])
        .env("DATABASE_URL", &db.url)
        .output()?;
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    Ok(())
}

/// The texts only Jeanne's records hold: her name as she typed it, and her
/// notes (one of them replaced by an edit, so the trail holds both).
const JEANNE_RECORDED_BY: &str = "Jeanne Oubliable";
const JEANNE_FIRST_NOTE: &str = "nid sous le balcon du 12 rue Garibaldi";
const JEANNE_NOTE: &str = "vu depuis chez ma voisine Mme Perrin";
const JEANNE_HOURS_NOTE: &str = "avec mon fils Théo";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_volunteer_leaves_no_name_or_note_in_the_inventory_exports_answers_trail_or_stored_notebooks(
) -> anyhow::Result<()> {
    let world = World::builder("Parc de la Feyssine")
        .coordinator("Marie")
        .auditor("Régie")
        .admin()
        .volunteer("Jeanne")
        .build()
        .await?;
    let (server, pool, t) = (&world.server, &world.pool, world.territory.id);
    let (coordinator, auditor, admin) = (world.coordinator(), world.auditor(), world.admin());
    let jeanne = world.volunteer("Jeanne");
    let display_name: String =
        sqlx::query_scalar("SELECT display_name FROM accounts WHERE id = $1")
            .bind(jeanne.account_id)
            .fetch_one(pool)
            .await?;
    let personal = [
        display_name.as_str(),
        JEANNE_RECORDED_BY,
        JEANNE_FIRST_NOTE,
        JEANNE_NOTE,
        JEANNE_HOURS_NOTE,
    ];

    // Jeanne records a sighting and her hours, then corrects the note.
    let mut phone =
        mobile_bridge::Phone::new_notebook(jeanne.notebook(), Some(jeanne.device.clone())).await?;
    let mut sighting = records::sighting(jeanne.account_id, "Erinaceus europaeus", 1);
    sighting.recorded_by = JEANNE_RECORDED_BY.to_string();
    sighting.notes = Some(JEANNE_FIRST_NOTE.to_string());
    phone.record(&sighting)?;
    let mut hours_json = records::timesheet_json(jeanne.account_id);
    hours_json["notes"] = json!(JEANNE_HOURS_NOTE);
    phone.record(&schemas::TimesheetEntry::from_raw(&hours_json).expect("valid hours"))?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(Duration::from_secs(20)).await?;
    phone.edit(
        RecordKind::Sighting,
        sighting.id(),
        "notes",
        &json!(JEANNE_NOTE),
    )?;
    phone.wait_synced(Duration::from_secs(20)).await?;
    let record = sighting.id();
    let (status, body) = server
        .as_(&coordinator.token)
        .post(
            &format!("/api/territories/{t}/review/decisions"),
            &json!({"decision": "verification", "status": "1", "records": [record], "reason": "photo nette"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let old_notebook: String = sqlx::query_scalar("SELECT doc_id FROM sightings WHERE id = $1")
        .bind(record)
        .fetch_one(pool)
        .await?;
    let answers =
        everything_a_reader_gets(server, t, record, &coordinator.token, &admin.token).await?;
    for text in [JEANNE_RECORDED_BY, JEANNE_NOTE] {
        assert!(
            answers.contains(text),
            "the check below would prove nothing: {text} was never shown"
        );
    }

    let (status, report) = server
        .as_(&admin.token)
        .post(
            &format!("/api/accounts/{}/erasure", jeanne.account_id),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["notebooks"][0]["retired"],
        json!(old_notebook),
        "{report}"
    );
    assert_eq!(report["notebooks"][0]["records"], json!(2), "{report}");
    let pseudonym = report["pseudonym"].as_str().expect("pseudonym").to_string();
    assert!(
        report["auditEntries"][0]["entriesRedacted"].as_i64() >= Some(3),
        "the sighting's creation and edit and the hours' creation: {report}"
    );

    // No answer, no export holds her name or notes any more; the record is
    // still there, under the pseudonym, with its decision.
    let answers =
        everything_a_reader_gets(server, t, record, &coordinator.token, &admin.token).await?;
    for text in personal {
        assert!(
            !answers.contains(text),
            "{text} is still served after the erasure"
        );
    }
    assert!(
        answers.contains(&pseudonym),
        "the records are kept, under the pseudonym"
    );
    let (status, row) = server
        .as_(&coordinator.token)
        .get(&format!("/api/territories/{t}/review/records/{record}"))
        .await?;
    assert_eq!(status, 200, "{row}");
    assert!(row.to_string().contains("Erinaceus europaeus"), "{row}");
    assert!(
        row.to_string().contains("\"validationStatus\":1"),
        "the decision stands: {row}"
    );

    // The audit trail: nothing of hers in any entry, the erasure is an entry
    // of its own, and the chain verifies.
    let entries: Vec<String> = sqlx::query_scalar(
        "SELECT jsonb_build_array(before, after, detail)::text FROM audit_log WHERE territory_id = $1",
    )
    .bind(t)
    .fetch_all(pool)
    .await?;
    for text in personal {
        assert!(
            !entries.iter().any(|e| e.contains(text)),
            "{text} is still in the audit trail"
        );
    }
    let (status, verification) = server
        .as_(&auditor.token)
        .get(&format!("/api/territories/{t}/audit/verification"))
        .await?;
    assert_eq!(status, 200, "{verification}");
    assert_eq!(verification["intact"], json!(true), "{verification}");
    let erasures = verification["erasures"].as_array().expect("erasures");
    assert_eq!(erasures.len(), 1, "{verification}");
    assert_eq!(erasures[0]["subject"], json!(jeanne.account_id));
    assert_eq!(erasures[0]["erasedBy"], json!(admin.account_id));
    assert_eq!(erasures[0]["seq"], report["auditEntries"][0]["seq"]);
    let (status, listed) = server
        .as_(&auditor.token)
        .get(&format!(
            "/api/territories/{t}/audit/entries?action=erasure"
        ))
        .await?;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["entries"][0]["actorId"],
        json!(admin.account_id),
        "{listed}"
    );
    assert!(listed.to_string().contains(&pseudonym), "{listed}");
    // A redacted entry changed afterwards is still found.
    let mut superuser = PgConnection::connect(&world.db.url).await?;
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut superuser)
        .await?;
    let redacted_seq = report["auditEntries"][0]["seq"].as_i64().expect("seq") - 1;
    sqlx::query(
        "UPDATE audit_log SET after = after || '{\"individualCount\": 7}' \
         WHERE territory_id = $1 AND seq = (SELECT max(seq) FROM audit_log \
           WHERE territory_id = $1 AND seq <= $2 AND after ? 'notes')",
    )
    .bind(t)
    .bind(redacted_seq)
    .execute(&mut superuser)
    .await?;
    let (_, verification) = server
        .as_(&auditor.token)
        .get(&format!("/api/territories/{t}/audit/verification"))
        .await?;
    assert_eq!(verification["intact"], json!(false), "{verification}");
    assert!(
        verification["firstBroken"]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("no longer holds what the erasure")),
        "{verification}"
    );

    // The server's stored notebooks hold none of it, in any change of their
    // history; the old one is retired and empty.
    let documents: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT doc_id FROM automerge_chunks WHERE doc_id IS NOT NULL")
            .fetch_all(pool)
            .await?;
    for doc_id in &documents {
        let chunks: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT data FROM automerge_chunks WHERE doc_id = $1 ORDER BY key")
                .bind(doc_id)
                .fetch_all(pool)
                .await?;
        let mut doc = automerge::Automerge::new();
        for chunk in chunks {
            doc.load_incremental(&chunk)?;
        }
        let saved = doc.save_nocompress();
        for text in personal {
            assert!(
                !saved.windows(text.len()).any(|w| w == text.as_bytes()),
                "{text} is still in the history of stored document {doc_id}"
            );
        }
    }
    let (kind, replaced_by): (String, Option<String>) =
        sqlx::query_as("SELECT kind, replaced_by FROM documents WHERE doc_id = $1")
            .bind(&old_notebook)
            .fetch_one(pool)
            .await?;
    assert_eq!(
        (kind.as_str(), replaced_by),
        (
            "retired",
            report["notebooks"][0]["replacement"]
                .as_str()
                .map(String::from)
        )
    );
    assert!(!documents.contains(&old_notebook));

    // Her phone, still holding the old history, is refused; the old
    // notebook is unavailable to anyone, admins included.
    phone.go_offline();
    let refused = RawPeer::connect(&server.sync_url(), &jeanne.device).await;
    assert!(refused.is_err(), "the erased person's phone still connects");
    let mut admin_peer = RawPeer::connect_as(
        &server.sync_url(),
        &admin.token,
        &session_peer_id(server, &admin.token).await?,
    )
    .await?;
    let old_id: mobile_bridge::DocumentId = old_notebook.parse().expect("a document id");
    assert!(
        admin_peer
            .fetch(&old_id, Duration::from_secs(10))
            .await?
            .is_none(),
        "the retired notebook is still served"
    );

    // Erasure is for good: the account cannot be enabled or erased again.
    let account = format!("/api/accounts/{}", jeanne.account_id);
    let (status, body) = server
        .as_(&admin.token)
        .post(&format!("{account}/enable"), &json!({}))
        .await?;
    assert_eq!(status, 409, "{body}");
    let (status, body) = server
        .as_(&admin.token)
        .post(&format!("{account}/erasure"), &json!({}))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (409, Some("id")),
        "{body}"
    );
    let (status, body) = server
        .as_(&coordinator.token)
        .post(&format!("{account}/erasure"), &json!({}))
        .await?;
    assert_eq!(status, 403, "{body}");
    Ok(())
}

/// The text of every answer and export a territory's readers get that could
/// name a volunteer or quote their records.
async fn everything_a_reader_gets(
    server: &ServerProcess,
    t: Uuid,
    record: Uuid,
    coordinator: &str,
    admin: &str,
) -> anyhow::Result<String> {
    let mut all = String::new();
    for path in [
        format!("/api/territories/{t}/review/records"),
        format!("/api/territories/{t}/review/records/{record}"),
        format!("/api/territories/{t}/review/records/{record}/history"),
        format!("/api/territories/{t}/records/{record}/audit"),
        format!("/api/territories/{t}/audit/entries"),
        format!("/api/territories/{t}/members"),
        format!("/api/sightings?territory={t}"),
        format!("/api/timesheet-entries?territory={t}"),
        format!("/api/territories/{t}/exports/sightings.geojson"),
        format!("/api/territories/{t}/exports/sightings.csv"),
        format!("/api/territories/{t}/exports/sinp.csv"),
        format!("/api/territories/{t}/exports/darwin-core-archive"),
    ] {
        let response = reqwest::Client::new()
            .get(server.http_url(&path))
            .bearer_auth(coordinator)
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "{path}: {}", response.status());
        let bytes = response.bytes().await?;
        all.push_str(&String::from_utf8_lossy(&zip_entries_or_itself(&bytes)?));
    }
    let (status, accounts) = server.as_(admin).get("/api/accounts").await?;
    anyhow::ensure!(status == 200, "{accounts}");
    all.push_str(&accounts.to_string());
    Ok(all)
}

/// A zip's entries, inflated and put end to end (the Darwin Core Archive);
/// anything else as it is.
fn zip_entries_or_itself(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    const LOCAL_HEADER: &[u8] = b"PK\x03\x04";
    if !bytes.starts_with(LOCAL_HEADER) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    let mut at = 0;
    while bytes[at..].starts_with(LOCAL_HEADER) {
        let u16_at = |i: usize| u16::from_le_bytes([bytes[at + i], bytes[at + i + 1]]) as usize;
        let u32_at = |i: usize| {
            u32::from_le_bytes([
                bytes[at + i],
                bytes[at + i + 1],
                bytes[at + i + 2],
                bytes[at + i + 3],
            ]) as usize
        };
        let (method, stored_size) = (u16_at(8), u32_at(18));
        let data = at + 30 + u16_at(26) + u16_at(28);
        let consumed = if method == 8 {
            let mut inflater = flate2::read::DeflateDecoder::new(&bytes[data..]);
            inflater.read_to_end(&mut out)?;
            inflater.total_in() as usize
        } else {
            out.extend_from_slice(&bytes[data..data + stored_size]);
            stored_size
        };
        at = data + consumed;
        // A streamed entry's sizes follow its data (a data descriptor).
        while at < bytes.len() && !bytes[at..].starts_with(b"PK") {
            at += 1;
        }
        if bytes[at..].starts_with(b"PK\x07\x08") {
            at += 16;
        }
    }
    Ok(out)
}
