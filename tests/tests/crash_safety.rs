//! Killing the server (SIGKILL) after it acknowledged changes loses none of
//! them; a compaction killed half-way loses nothing, and a completed one
//! reads the same.

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

/// Sightings synced one at a time: a chunk per sync.
const SYNCS: usize = 70;

/// The records of `doc_id` as stored, and its heads.
async fn stored(
    pool: &sqlx::PgPool,
    doc_id: &str,
) -> anyhow::Result<(Vec<String>, Vec<serde_json::Value>)> {
    let mut conn = pool.acquire().await?;
    let committed = server::inventory::materialise::load_committed(&mut conn, doc_id).await?;
    let mut heads: Vec<String> = committed
        .doc
        .get_heads()
        .iter()
        .map(ToString::to_string)
        .collect();
    heads.sort();
    let mut records: Vec<serde_json::Value> = sync::documents::read_notebook(&committed.doc)
        .records
        .into_iter()
        .map(|record| record.raw)
        .collect();
    records.sort_by_key(ToString::to_string);
    Ok((heads, records))
}

async fn chunks_of(pool: &sqlx::PgPool, doc_id: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM automerge_chunks WHERE doc_id = $1")
            .bind(doc_id)
            .fetch_one(pool)
            .await?,
    )
}

/// A notebook synced one sighting at a time holds a chunk per sync; a
/// compaction whose process is killed (SIGKILL) after storing the snapshot
/// and while deleting the chunks changes nothing, and the next start
/// compacts it; completed, a compaction leaves one snapshot that
/// loads to the same heads and records, with the receipts and the audit
/// trail as they were, and the phone syncs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_notebook_reads_the_same_and_a_compaction_killed_half_way_loses_nothing(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    // The server's own compaction waits: the test compacts when it wants.
    let server = ServerProcess::start_with(&db.url, &["--compact-after-chunks", "1000000"])?;
    let pool = db.pool().await?;
    let territory = phones::territory_within(&pool, "Parc compact", None).await?;
    let camille = phones::enrol_volunteer(&pool, &territory, "Camille").await?;
    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    phone.go_online(&server.sync_url()).await?;
    for n in 0..SYNCS {
        phone.record(&records::sighting(
            camille.account_id,
            "Parus major",
            n as i64 + 1,
        ))?;
        phone.wait_synced(Duration::from_secs(30)).await?;
    }
    let doc_id: String = sqlx::query_scalar("SELECT doc_id FROM documents WHERE owner_id = $1")
        .bind(camille.account_id)
        .fetch_one(&pool)
        .await?;
    assert!(chunks_of(&pool, &doc_id).await? >= SYNCS as i64);
    fieldnotes_tests::eventually(
        Duration::from_secs(30),
        "the audit trail written out",
        || async {
            let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_commits_pending")
                .fetch_one(&pool)
                .await?;
            Ok((pending == 0).then_some(()))
        },
    )
    .await?;
    let before = stored(&pool, &doc_id).await?;
    let chunks_before = chunks_of(&pool, &doc_id).await?;
    let receipts = "SELECT count(*) FROM change_receipts WHERE doc_id = $1";
    let receipts_before: i64 = sqlx::query_scalar(receipts)
        .bind(&doc_id)
        .fetch_one(&pool)
        .await?;
    let audit = "SELECT count(*) FROM audit_log WHERE doc_id = $1";
    let audit_before: i64 = sqlx::query_scalar(audit)
        .bind(&doc_id)
        .fetch_one(&pool)
        .await?;

    // A compaction killed half-way: another server process, compacting
    // every second, stores the snapshot and is held at the deletion of a
    // chunk this test keeps locked, inside its transaction; SIGKILL there.
    let mut holder = pool.begin().await?;
    sqlx::query(
        "SELECT key FROM automerge_chunks WHERE doc_id = $1 AND key LIKE '%/incremental/%' \
         ORDER BY key LIMIT 1 FOR UPDATE",
    )
    .bind(&doc_id)
    .fetch_one(&mut *holder)
    .await?;
    let compacting = ["--compact-after-chunks", "64", "--compact-every-secs", "1"];
    let mut compactor = ServerProcess::start_with(&db.url, &compacting)?;
    let deleting = "SELECT count(*) FROM pg_stat_activity \
                    WHERE query LIKE 'DELETE FROM automerge_chunks%' AND state = 'active'";
    fieldnotes_tests::eventually(
        Duration::from_secs(30),
        "the compaction held at the deletion of the chunks",
        || async {
            let waiting: i64 = sqlx::query_scalar(deleting).fetch_one(&pool).await?;
            Ok((waiting == 1).then_some(()))
        },
    )
    .await?;
    compactor.kill();
    holder.rollback().await?;
    // PostgreSQL rolls the killed process's transaction back once it finds
    // its connection gone.
    fieldnotes_tests::eventually(
        Duration::from_secs(30),
        "the killed compaction's transaction ended",
        || async {
            let waiting: i64 = sqlx::query_scalar(deleting).fetch_one(&pool).await?;
            Ok((waiting == 0).then_some(()))
        },
    )
    .await?;
    assert_eq!(
        chunks_of(&pool, &doc_id).await?,
        chunks_before,
        "nothing changed: no snapshot, every chunk"
    );
    assert_eq!(stored(&pool, &doc_id).await?, before);

    // The next start compacts it.
    let next_start = ServerProcess::start_with(&db.url, &compacting)?;
    fieldnotes_tests::eventually(
        Duration::from_secs(30),
        "the next start's compaction",
        || async { Ok((chunks_of(&pool, &doc_id).await? == 1).then_some(())) },
    )
    .await?;
    drop(next_start);
    assert_eq!(
        stored(&pool, &doc_id).await?,
        before,
        "the same heads and records"
    );
    let receipts_after: i64 = sqlx::query_scalar(receipts)
        .bind(&doc_id)
        .fetch_one(&pool)
        .await?;
    assert_eq!(receipts_after, receipts_before);
    let audit_after: i64 = sqlx::query_scalar(audit)
        .bind(&doc_id)
        .fetch_one(&pool)
        .await?;
    assert_eq!(audit_after, audit_before);
    let verification = server::audit::verify::verify(&pool, territory.id, None).await?;
    assert!(verification.intact, "{verification:?}");

    // The phone goes on: its next sighting is stored beside the snapshot.
    let last = records::sighting(camille.account_id, "Erithacus rubecula", 1);
    phone.record(&last)?;
    phone.wait_synced(Duration::from_secs(30)).await?;
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings WHERE id = $1")
        .bind(last.id())
        .fetch_one(&pool)
        .await?;
    assert_eq!(found, 1);
    assert_eq!(chunks_of(&pool, &doc_id).await?, 2);
    Ok(())
}
