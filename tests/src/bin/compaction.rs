//! How compaction bounds a notebook's storage and load time: a notebook
//! synced one sighting at a time `--syncs` times is stored as the committer
//! stores it (one incremental chunk per sync, holding that sync's change),
//! then loaded `--loads` times as the server loads a document
//! (`load_committed`); compacted (`server::sync::compaction::compact_in`) and
//! loaded again; and, for the goal, the same document stored whole (one
//! `save()`). Prints one JSON object: chunk rows, bytes and load times
//! (median, min, max) of each.
//!
//! ```sh
//! cargo run -p fieldnotes-tests --bin compaction -- --syncs 2000 --loads 20
//! ```

use std::time::{Duration, Instant};

use automerge::Automerge;
use clap::Parser;
use fieldnotes_tests::{records, TestDatabase};
use serde_json::json;
use sha2::{Digest, Sha256};
use sync::documents::{new_notebook, put_record, NotebookHeader};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// Sightings synced one at a time.
    #[arg(long, default_value_t = 2000)]
    syncs: usize,
    /// Loads timed for each layout.
    #[arg(long, default_value_t = 20)]
    loads: usize,
}

/// Loads `doc_id` `loads` times as the server does: (median, min, max) in ms.
async fn time_loads(pool: &sqlx::PgPool, doc_id: &str, loads: usize) -> anyhow::Result<Json3> {
    let mut times = Vec::with_capacity(loads);
    let mut conn = pool.acquire().await?;
    for _ in 0..loads {
        let started = Instant::now();
        let loaded = server::inventory::materialise::load_committed(&mut conn, doc_id).await?;
        times.push(started.elapsed());
        std::hint::black_box(loaded);
    }
    times.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    Ok((
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
    ))
}

type Json3 = (f64, f64, f64);

async fn store(
    pool: &sqlx::PgPool,
    doc_id: &str,
    territory: Uuid,
    chunks: &[Vec<u8>],
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO documents (doc_id, territory_id, kind) VALUES ($1, $2, 'notebook')")
        .bind(doc_id)
        .bind(territory)
        .execute(pool)
        .await?;
    for chunk in chunks {
        sqlx::query("INSERT INTO automerge_chunks (key, doc_id, data) VALUES ($1, $2, $3)")
            .bind(format!("{doc_id}/incremental/{:x}", Sha256::digest(chunk)))
            .bind(doc_id)
            .bind(chunk)
            .execute(pool)
            .await?;
    }
    Ok(())
}

async fn rows_and_bytes(pool: &sqlx::PgPool, doc_id: &str) -> anyhow::Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(*), coalesce(sum(length(data)), 0)::bigint FROM automerge_chunks WHERE doc_id = $1",
    )
    .bind(doc_id)
    .fetch_one(pool)
    .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = TestDatabase::create().await?;
    let pool = db.pool().await?;
    server::MIGRATOR.run(&pool).await?;
    let territory = server::auth::admin::create_territory(&pool, "Banc d'essai", None).await?;
    let owner = Uuid::new_v4();
    let mut doc: Automerge = new_notebook(NotebookHeader {
        territory_id: territory,
        owner_id: owner,
    });
    // One chunk per sync: the changes that sync brought.
    let mut chunks = vec![doc.save()];
    for n in 0..args.syncs {
        let heads = doc.get_heads();
        put_record(
            &mut doc,
            &records::sighting(owner, "Parus major", n as i64 + 1),
        )?;
        chunks.push(doc.save_after(&heads));
    }
    let incremental = format!("automerge:bench-incremental-{}", Uuid::new_v4().simple());
    store(&pool, &incremental, territory, &chunks).await?;
    let whole = format!("automerge:bench-whole-{}", Uuid::new_v4().simple());
    store(&pool, &whole, territory, &[doc.save()]).await?;

    let before = rows_and_bytes(&pool, &incremental).await?;
    let load_before = time_loads(&pool, &incremental, args.loads).await?;
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let compacted = server::sync::compaction::compact_in(&mut tx, &incremental).await?;
    tx.commit().await?;
    let compaction_ms = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(compacted.is_some(), "nothing compacted");
    let after = rows_and_bytes(&pool, &incremental).await?;
    let load_after = time_loads(&pool, &incremental, args.loads).await?;
    let saved_whole = rows_and_bytes(&pool, &whole).await?;
    let load_whole = time_loads(&pool, &whole, args.loads).await?;
    println!(
        "{}",
        json!({
            "syncs": args.syncs,
            "loads": args.loads,
            "incremental": {"rows": before.0, "bytes": before.1, "loadMs": load_before},
            "compacted": {"rows": after.0, "bytes": after.1, "loadMs": load_after, "compactionMs": compaction_ms},
            "savedWhole": {"rows": saved_whole.0, "bytes": saved_whole.1, "loadMs": load_whole},
            "compactedOverWhole": load_after.0 / load_whole.0,
        })
    );
    Ok(())
}
