//! The sync endpoint at the byte level: duplicates are stored once, malformed
//! messages get an error and a closed connection, and nothing stored is harmed.

use std::time::Duration;

use fieldnotes_tests::{
    eventually, init_test_logging, phones,
    raw_peer::{all_changes_message, new_document_id, RawPeer},
    records, ServerProcess, TestDatabase,
};
use mobile_bridge::Phone;
use sqlx::PgPool;
use sync::documents::{new_notebook, put_record};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A volunteer enrolled in a fresh territory of the test database.
async fn volunteer(pool: &PgPool) -> anyhow::Result<phones::Volunteer> {
    let territory = phones::territory(pool, "Berges du Rhône").await?;
    phones::enrol_volunteer(pool, &territory, "Sacha").await
}

async fn inventory_snapshot(pool: &PgPool) -> anyhow::Result<(i64, i64, Vec<String>)> {
    let sightings: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings")
        .fetch_one(pool)
        .await?;
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM automerge_chunks")
        .fetch_one(pool)
        .await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT scientific_name FROM sightings ORDER BY id")
            .fetch_all(pool)
            .await?;
    Ok((sightings, chunks, names))
}

/// An honest phone that has synced one sighting; returns the pool to check with.
async fn server_with_one_synced_sighting(
    db: &TestDatabase,
    server: &ServerProcess,
) -> anyhow::Result<PgPool> {
    let pool = db.pool().await?;
    let volunteer = volunteer(&pool).await?;
    let mut phone =
        Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
    phone.record(&records::sighting(
        volunteer.account_id,
        "Lucanus cervus",
        1,
    ))?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    phone.shut_down().await;
    eventually(TIMEOUT, "the honest sighting", || async {
        Ok((inventory_snapshot(&pool).await?.0 == 1).then_some(()))
    })
    .await?;
    Ok(pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_changes_sent_twice_are_stored_once() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let volunteer = volunteer(&pool).await?;
    let mut doc = new_notebook(volunteer.notebook());
    put_record(
        &mut doc,
        &records::sighting(volunteer.account_id, "Alcedo atthis", 2),
    )?;
    let change_count = doc.get_changes(&[]).len() as i64;
    let doc_id = new_document_id();
    let message = all_changes_message(&doc).encode();

    // Twice on one connection, and once more on another.
    let mut first = RawPeer::connect(&server.sync_url(), &volunteer.device).await?;
    first.send_sync(&doc_id, &message).await?;
    first.send_sync(&doc_id, &message).await?;
    let mut second = RawPeer::connect(&server.sync_url(), &volunteer.device).await?;
    second.send_sync(&doc_id, &message).await?;

    eventually(TIMEOUT, "the sighting in the inventory", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings")
            .fetch_one(&pool)
            .await?;
        Ok((n == 1).then_some(()))
    })
    .await?;
    // Let any duplicate write that is still in flight land before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let chunks: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT data FROM automerge_chunks WHERE doc_id = $1")
            .bind(doc_id.to_string())
            .fetch_all(&pool)
            .await?;
    let revision: i64 = sqlx::query_scalar("SELECT revision FROM documents WHERE doc_id = $1")
        .bind(doc_id.to_string())
        .fetch_one(&pool)
        .await?;
    let stored_changes: usize = chunks
        .iter()
        .map(|chunk| sync::documents::wire::chunk_changes(chunk).map(|c| c.len()))
        .sum::<Result<usize, _>>()
        .map_err(anyhow::Error::msg)?;
    assert_eq!(
        stored_changes as i64, change_count,
        "each change stored once"
    );
    assert_eq!(
        revision,
        chunks.len() as i64,
        "each stored chunk materialised once"
    );
    let sightings: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings")
        .fetch_one(&pool)
        .await?;
    assert_eq!(sightings, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_get_an_error_and_a_closed_connection_and_harm_nothing() -> anyhow::Result<()>
{
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = server_with_one_synced_sighting(&db, &server).await?;
    let before = inventory_snapshot(&pool).await?;

    let intruder = volunteer(&pool).await?;
    let mut peer = RawPeer::connect(&server.sync_url(), &intruder.device).await?;
    peer.send_bytes(b"\xff\x00 this is not automerge-repo".to_vec())
        .await?;
    let replies = peer.messages_until_closed(TIMEOUT).await?;
    assert!(
        replies.iter().any(|m| m.kind == "error"),
        "an error message before the close, got {replies:?}"
    );

    assert_eq!(inventory_snapshot(&pool).await?, before);
    // The server still serves honest phones.
    server_with_one_synced_sighting_more(&server, &pool, before.0 + 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_change_gets_an_error_and_a_closed_connection_and_harms_nothing(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = server_with_one_synced_sighting(&db, &server).await?;
    let before = inventory_snapshot(&pool).await?;

    let sender = volunteer(&pool).await?;
    let mut doc = new_notebook(sender.notebook());
    put_record(
        &mut doc,
        &records::sighting(sender.account_id, "Triturus cristatus", 4),
    )?;
    let mut message = all_changes_message(&doc);
    let truncated: Vec<Vec<u8>> = message
        .changes
        .iter()
        .map(|chunk| chunk[..chunk.len() - 7].to_vec())
        .collect();
    message.changes = truncated.into();

    let mut peer = RawPeer::connect(&server.sync_url(), &sender.device).await?;
    peer.send_sync(&new_document_id(), &message.encode())
        .await?;
    let replies = peer.messages_until_closed(TIMEOUT).await?;
    let error = replies
        .iter()
        .find(|m| m.kind == "error")
        .unwrap_or_else(|| panic!("an error message before the close, got {replies:?}"));
    assert_eq!(error.kind, "error");

    assert_eq!(inventory_snapshot(&pool).await?, before);
    server_with_one_synced_sighting_more(&server, &pool, before.0 + 1).await
}

async fn server_with_one_synced_sighting_more(
    server: &ServerProcess,
    pool: &PgPool,
    expected: i64,
) -> anyhow::Result<()> {
    let volunteer = volunteer(pool).await?;
    let mut phone =
        Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
    phone.record(&records::sighting(
        volunteer.account_id,
        "Rana temporaria",
        7,
    ))?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    phone.shut_down().await;
    eventually(TIMEOUT, "the next honest sighting", || async {
        Ok((inventory_snapshot(pool).await?.0 == expected).then_some(()))
    })
    .await
}
