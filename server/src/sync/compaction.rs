//! Storage that stays bounded: each commit stores one incremental chunk, so
//! a volunteer's notebook would grow by a row per sync for ever, and its load
//! (every chunk read and applied) with it. Once a document has more than
//! `--compact-after-chunks` ([`COMPACT_AFTER_CHUNKS`]) chunks, its chunks are replaced by one snapshot
//! (`Automerge::save`: the whole history, compressed) under
//! `<doc>/snapshot/<sha256>`.
//!
//! Safe by construction:
//! - one transaction, holding the document's row lock (as a committer does):
//!   no commit stores a chunk meanwhile, and a process killed half-way
//!   leaves every chunk where it was (PostgreSQL rolls the transaction
//!   back); the next round compacts it again;
//! - chunks the audit trail has not written out yet (`audit_commits_pending`)
//!   or set aside (`audit_commits_set_aside`) are kept as they are: the trail
//!   reads a commit's changes from its own chunk;
//! - the snapshot holds every change of the document (the kept chunks'
//!   too: loading them again changes nothing), so the document, its
//!   receipts, its audit entries and any state at a past date read the same;
//!   `documents.revision` is left alone: the content did not change, and no
//!   process needs to reload it.

use std::time::Duration;

use automerge::{Automerge, ReadDoc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// Chunks a document may have before it is compacted, by default
/// (`--compact-after-chunks`): a notebook synced a few times a day reaches it
/// in a few weeks.
pub const COMPACT_AFTER_CHUNKS: i64 = 64;
/// How often each process looks for documents to compact, by default
/// (`--compact-every-secs`).
pub const COMPACT_EVERY: Duration = Duration::from_secs(60);
/// Documents one round compacts at most, so a round stays short.
const DOCUMENTS_PER_ROUND: i64 = 32;

/// Compacts the documents that have more than `after_chunks` chunks (at
/// most [`DOCUMENTS_PER_ROUND`]); the chunks removed.
pub async fn compact_due(pool: &PgPool, after_chunks: i64) -> sqlx::Result<u64> {
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT doc_id FROM automerge_chunks WHERE doc_id IS NOT NULL \
         GROUP BY doc_id HAVING count(*) > $1 ORDER BY count(*) DESC LIMIT $2",
    )
    .bind(after_chunks)
    .bind(DOCUMENTS_PER_ROUND)
    .fetch_all(pool)
    .await?;
    let mut removed = 0;
    for doc_id in due {
        let mut tx = pool.begin().await?;
        let compacted = compact_in(&mut tx, &doc_id).await?;
        tx.commit().await?;
        if let Some(compacted) = compacted {
            tracing::info!(
                doc_id,
                chunks = compacted.chunks_merged,
                bytes_before = compacted.bytes_before,
                bytes_after = compacted.bytes_after,
                "compacted a document's chunks"
            );
            removed += compacted.chunks_merged as u64 - 1;
        }
    }
    Ok(removed)
}

/// What one compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// Chunks replaced by the snapshot.
    pub chunks_merged: usize,
    pub bytes_before: usize,
    pub bytes_after: usize,
}

/// Compacts `doc_id` in `tx`: None when there is nothing to merge (fewer
/// than two chunks the audit trail is done with) or a chunk does not load
/// (then nothing is touched, and the error is logged).
pub async fn compact_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    doc_id: &str,
) -> sqlx::Result<Option<Compacted>> {
    // The committers' lock: no chunk of this document is stored meanwhile.
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT revision FROM documents WHERE doc_id = $1 FOR UPDATE")
            .bind(doc_id)
            .fetch_optional(&mut **tx)
            .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let chunks: Vec<(String, Vec<u8>, bool)> = sqlx::query_as(
        "SELECT c.key, c.data, \
                (EXISTS (SELECT 1 FROM audit_commits_pending p WHERE p.chunk_key = c.key) \
                 OR EXISTS (SELECT 1 FROM audit_commits_set_aside s WHERE s.chunk_key = c.key)) \
         FROM automerge_chunks c WHERE c.doc_id = $1 ORDER BY c.key",
    )
    .bind(doc_id)
    .fetch_all(&mut **tx)
    .await?;
    let mergeable: Vec<&(String, Vec<u8>, bool)> = chunks
        .iter()
        .filter(|(_, _, audited_later)| !audited_later)
        .collect();
    if mergeable.len() < 2 {
        return Ok(None);
    }
    // Every chunk, the ones kept included: a later change depends on the
    // earlier ones, and a change whose dependency is missing would be left
    // out of the snapshot.
    let mut doc = Automerge::new();
    for (key, data, _) in &chunks {
        if let Err(error) = doc.load_incremental(data) {
            tracing::error!(doc_id, key, %error, "a stored chunk does not load: not compacting");
            return Ok(None);
        }
    }
    if !doc.get_missing_deps(&[]).is_empty() {
        tracing::error!(
            doc_id,
            "stored changes miss their dependencies: not compacting"
        );
        return Ok(None);
    }
    let snapshot = doc.save();
    let key = format!("{doc_id}/snapshot/{:x}", Sha256::digest(&snapshot));
    let merged: Vec<&str> = mergeable
        .iter()
        .map(|(key, _, _)| key.as_str())
        .filter(|merged| *merged != key)
        .collect();
    sqlx::query(
        "INSERT INTO automerge_chunks (key, doc_id, data) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(&key)
    .bind(doc_id)
    .bind(&snapshot)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM automerge_chunks WHERE key = ANY($1)")
        .bind(&merged)
        .execute(&mut **tx)
        .await?;
    Ok(Some(Compacted {
        chunks_merged: mergeable.len(),
        bytes_before: mergeable.iter().map(|(_, data, _)| data.len()).sum(),
        bytes_after: snapshot.len(),
    }))
}
