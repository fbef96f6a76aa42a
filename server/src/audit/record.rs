//! One record's audit: every entry about it (who changed which fields from
//! what to what, with which device, when; every decision), and the record as
//! the server held it at a past moment.
//!
//! The past state is read from the automerge history, so it is exact: the
//! record's notebook at the changes the server had received by then
//! (`change_receipts.received_at`), concurrent values included. Changes
//! stored before receipts were kept carry none; they count only as the
//! ancestors of changes received later.

use automerge::{ChangeHash, ReadDoc};
use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};
use sqlx::PgPool;
use sync::documents::{notebook::Collection, read_notebook};
use uuid::Uuid;

use crate::inventory::materialise;

/// A record's entries, oldest first; None when the log has none for it in
/// `territory`.
pub async fn history(
    pool: &PgPool,
    territory: Uuid,
    record: Uuid,
) -> Result<Option<Json>, sqlx::Error> {
    // Chained entries by seq, then those not chained yet (seq and hash null)
    // in the order they will be chained.
    let steps: Option<Json> = sqlx::query_scalar(
        "SELECT jsonb_agg(jsonb_build_object(\
           'seq', a.seq, 'recordedAt', a.recorded_at, 'action', a.action, \
           'actorId', a.actor_id, 'actorName', ac.display_name, \
           'deviceId', a.device_id, 'deviceName', d.name, 'sessionId', a.session_id, \
           'docId', a.doc_id, 'recordKind', a.record_kind, 'changeHash', a.change_hash, \
           'before', a.before, 'after', a.after, 'detail', a.detail, \
           'hash', encode(a.hash, 'hex')) ORDER BY a.seq IS NULL, a.seq, a.recorded_at, a.pending_id) \
         FROM (SELECT territory_id, seq, NULL::bigint AS pending_id, recorded_at, action, actor_id, \
                 device_id, session_id, doc_id, record_id, record_kind, change_hash, before, after, \
                 detail, hash FROM audit_log \
               UNION ALL \
               SELECT territory_id, NULL, id, recorded_at, action, actor_id, device_id, session_id, \
                 doc_id, record_id, record_kind, change_hash, before, after, detail, NULL \
               FROM audit_pending) a \
         LEFT JOIN accounts ac ON ac.id = a.actor_id \
         LEFT JOIN devices d ON d.id = a.device_id \
         WHERE a.territory_id = $1 AND a.record_id = $2",
    )
    .bind(territory)
    .bind(record)
    .fetch_one(pool)
    .await?;
    Ok(steps.map(|steps| json!({"recordId": record, "territoryId": territory, "steps": steps})))
}

/// Why a past state cannot be given.
#[derive(Debug)]
pub enum StateError {
    /// The territory's log knows no change to this record.
    UnknownRecord,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StateError {
    fn from(error: sqlx::Error) -> StateError {
        StateError::Database(error)
    }
}

/// The record as the server held it at `at`: `exists` false before its
/// first change arrived (or after it was deleted).
pub async fn state_at(
    pool: &PgPool,
    territory: Uuid,
    record: Uuid,
    at: DateTime<Utc>,
) -> Result<Json, StateError> {
    let located: Option<(String, String)> = sqlx::query_as(
        "SELECT doc_id, record_kind FROM (\
           SELECT doc_id, record_kind, territory_id, record_id, action FROM audit_log \
           UNION ALL \
           SELECT doc_id, record_kind, territory_id, record_id, action FROM audit_pending) a \
         WHERE territory_id = $1 AND record_id = $2 AND action = 'change' LIMIT 1",
    )
    .bind(territory)
    .bind(record)
    .fetch_optional(pool)
    .await?;
    let Some((doc_id, kind)) = located else {
        return Err(StateError::UnknownRecord);
    };
    let received: Vec<String> = sqlx::query_scalar(
        "SELECT change_hash FROM change_receipts WHERE doc_id = $1 AND received_at <= $2",
    )
    .bind(&doc_id)
    .bind(at)
    .fetch_all(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    let committed = materialise::load_committed(&mut conn, &doc_id).await?;
    drop(conn);
    let heads: Vec<ChangeHash> = received
        .iter()
        .filter_map(|hash| hash.parse().ok())
        .filter(|hash| committed.doc.get_change_by_hash(hash).is_some())
        .collect();
    let collection = Collection::ALL
        .into_iter()
        .find(|c| c.kind().as_str() == kind)
        .unwrap_or(Collection::Sightings);
    let absent = json!({"recordId": record, "at": at, "exists": false, "docId": doc_id,
                        "recordKind": kind});
    if heads.is_empty() {
        return Ok(absent);
    }
    let Ok(past) = committed.doc.fork_at(&heads) else {
        return Ok(absent);
    };
    let key = record.to_string();
    let Some(state) = read_notebook(&past)
        .records
        .into_iter()
        .find(|r| r.kind == collection.kind() && r.key.eq_ignore_ascii_case(&key))
    else {
        return Ok(absent);
    };
    let problems = match &state.parsed {
        Ok(_) => Vec::new(),
        Err(problems) => problems.clone(),
    };
    let mut past_heads: Vec<String> = past.get_heads().iter().map(|h| h.to_string()).collect();
    past_heads.sort();
    Ok(json!({
        "recordId": record, "at": at, "exists": true, "docId": doc_id,
        "recordKind": kind, "heads": past_heads, "fields": state.raw,
        "conflicts": state.conflicts, "valid": problems.is_empty(), "problems": problems,
    }))
}
