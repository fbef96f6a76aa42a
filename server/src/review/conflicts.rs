//! Conflicts: fields that concurrent offline edits left with several values.
//!
//! The queue lists each conflicted field with every value, and who wrote it
//! and when: the change that wrote the value (automerge keeps it) and that
//! change's receipt (the device or session that delivered it). A resolution
//! is the coordinator's own change to the record's notebook, made through
//! the sync core: it supersedes every value, so every phone converges on
//! it, the materialisation clears the conflict, and its history row is
//! stored in the same transaction. Its value is held to the limits a
//! phone's write of the same field is held to, by the sync judge's own size
//! rules (`sync::judge::check_field_json`).

use std::collections::HashMap;

use automerge::{Automerge, ObjType, ReadDoc, Value, ROOT};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use sqlx::PgPool;
use sync::{
    documents::{read::ChangeIndex, read_notebook, set_field, Collection},
    judge::{check_field_json, COORDINATOR_FIELDS, OWNER_FIELDS},
    protocol::DocumentId,
};
use uuid::Uuid;

use crate::history::HistoryRow;

use schemas::{RecordKind, BOOKKEEPING_FIELDS};

use super::{filter::Filter, parse_kind, rows::ReviewPage, ReviewError};
use crate::{
    auth::Principal,
    inventory::materialise::load_committed,
    sync::{access::Delivery, EditError, ServerWrite, SyncCore, WriteFailure, WriteOutcome},
};

/// A coordinator's resolution of one field.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resolution {
    /// The record's field (JSON name, e.g. `individualCount`).
    pub field: String,
    /// One of the values shown, or a new one.
    pub value: Json,
    pub reason: Option<String>,
}

/// A resolution, written.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    pub record_id: Uuid,
    pub field: String,
    /// The value every copy of the record now holds.
    pub value: Json,
}

/// A page of the conflict queue: the review table's rows with conflicts,
/// each conflicted value attributed.
pub async fn queue(
    pool: &PgPool,
    territory: Uuid,
    filter: &Filter,
) -> Result<ReviewPage, ReviewError> {
    let mut filter = filter.clone();
    filter.conflicts = Some(true);
    let mut page = filter.check()?.page(pool, territory).await?;
    let mut documents: HashMap<String, Automerge> = HashMap::new();
    for item in &mut page.items {
        let doc_id = item.document_id().to_string();
        if !documents.contains_key(&doc_id) {
            let mut conn = pool.acquire().await?;
            let committed = load_committed(&mut conn, &doc_id).await?;
            documents.insert(doc_id.clone(), committed.doc);
        }
        let doc = &documents[&doc_id];
        let attributed =
            attributed(pool, doc, &doc_id, item.kind(), &item.id().to_string()).await?;
        *item.conflicts_mut() = sqlx::types::Json(attributed);
    }
    Ok(page)
}

/// Every conflicted field of record `key`, each value with its writer.
async fn attributed(
    pool: &PgPool,
    doc: &Automerge,
    doc_id: &str,
    kind: RecordKind,
    key: &str,
) -> Result<Json, ReviewError> {
    let Some(record) = record_obj(doc, kind, key) else {
        return Ok(json!([]));
    };
    let index = ChangeIndex::new(doc);
    let mut fields: Vec<(String, Vec<sync::documents::read::WrittenValue>)> = Vec::new();
    let mut hashes = Vec::new();
    for item in doc.map_range(&record, ..) {
        let field = item.key.to_string();
        if !item.conflict || BOOKKEEPING_FIELDS.contains(&field.as_str()) {
            continue;
        }
        let values = index.values_of(doc, &record, &field);
        hashes.extend(
            values
                .iter()
                .filter_map(|v| v.change.map(|c| c.to_string())),
        );
        fields.push((field, values));
    }
    let receipts: Vec<(String, Json)> = sqlx::query_as(
        "SELECT r.change_hash, jsonb_build_object('accountId', r.account_id, \
           'displayName', a.display_name, 'deviceId', r.device_id, 'deviceName', d.name, \
           'sessionId', r.session_id, 'receivedAt', r.received_at) \
         FROM change_receipts r JOIN accounts a ON a.id = r.account_id \
         LEFT JOIN devices d ON d.id = r.device_id \
         WHERE r.doc_id = $1 AND r.change_hash = ANY($2)",
    )
    .bind(doc_id)
    .bind(&hashes)
    .fetch_all(pool)
    .await?;
    let receipts: HashMap<String, Json> = receipts.into_iter().collect();
    let winner_of = |field: &str| {
        doc.get(&record, field)
            .ok()
            .flatten()
            .map(|(value, id)| sync::documents::read::value_to_json(doc, &value, &id))
    };
    Ok(Json::Array(
        fields
            .into_iter()
            .map(|(field, values)| {
                json!({
                    "field": field,
                    "winner": winner_of(&field),
                    "values": values.iter().map(|v| {
                        let hash = v.change.map(|c| c.to_string());
                        json!({
                            "value": v.value,
                            "changeHash": hash,
                            "writtenAt": written_at(v.timestamp),
                            "writtenBy": hash.and_then(|h| receipts.get(&h).cloned()),
                        })
                    }).collect::<Vec<_>>(),
                })
            })
            .collect(),
    ))
}

/// A change's time (seconds since the epoch, automerge's convention) as
/// RFC 3339, so no reader has to guess its unit; None when the writer gave none.
fn written_at(seconds: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(seconds, 0)
        .filter(|_| seconds > 0)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn record_obj(doc: &Automerge, kind: RecordKind, key: &str) -> Option<automerge::ObjId> {
    let collection = Collection::of_kind(kind).key();
    let Ok(Some((Value::Object(ObjType::Map), collection))) = doc.get(ROOT, collection) else {
        return None;
    };
    match doc.get(&collection, key) {
        Ok(Some((Value::Object(ObjType::Map), record))) => Some(record),
        _ => None,
    }
}

/// Writes `resolution` into record `record` of `territory`, as `coordinator`.
pub async fn resolve(
    pool: &PgPool,
    sync: &SyncCore,
    territory: Uuid,
    record: Uuid,
    coordinator: &Principal,
    resolution: Resolution,
) -> Result<Resolved, ReviewError> {
    let field = resolution.field.trim().to_string();
    if field.is_empty() {
        return Err(ReviewError::bad_request("field", "names no field"));
    }
    if BOOKKEEPING_FIELDS.contains(&field.as_str()) {
        return Err(ReviewError::bad_request(
            "field",
            format!(
                "`{field}` is bookkeeping the phones set by themselves, not a conflict to resolve"
            ),
        ));
    }
    if COORDINATOR_FIELDS.contains(&field.as_str()) || OWNER_FIELDS.contains(&field.as_str()) {
        return Err(ReviewError::bad_request(
            "field",
            format!("`{field}` is not a field a coordinator resolves"),
        ));
    }
    let found: Option<(String, String, Json)> = sqlx::query_as(
        "SELECT kind, doc_id, conflicts FROM ( \
           SELECT 'sighting' AS kind, doc_id, conflicts, territory_id FROM sightings WHERE id = $1 \
           UNION ALL SELECT 'degradation_report', doc_id, conflicts, territory_id \
             FROM degradation_reports WHERE id = $1 \
           UNION ALL SELECT 'timesheet_entry', doc_id, conflicts, territory_id \
             FROM timesheet_entries WHERE id = $1) r WHERE territory_id = $2",
    )
    .bind(record)
    .bind(territory)
    .fetch_optional(pool)
    .await?;
    let (kind, doc_id, conflicts) = found.ok_or_else(|| {
        ReviewError::NotFound(format!("record {record} in territory {territory}"))
    })?;
    let kind = parse_kind("kind", &kind)?;
    // The limits a phone's write of the field is held to, with the judge's
    // words: 422 naming the field and the limit.
    check_field_json(kind, record, &field, &resolution.value)
        .map_err(|refusal| ReviewError::unprocessable("value", refusal.to_string()))?;
    let previous = conflicts
        .as_array()
        .and_then(|all| all.iter().find(|c| c["field"] == field.as_str()))
        .map(|c| c["values"].clone())
        .ok_or_else(|| {
            ReviewError::conflict(
                "field",
                format!("`{field}` of record {record} is not in conflict"),
            )
        })?;
    let id = DocumentId::parse(&doc_id)
        .map_err(|reason| ReviewError::Storage(format!("document id {doc_id}: {reason}")))?;

    let mut history = HistoryRow::new(
        territory,
        record,
        kind.as_str(),
        "conflict_resolution",
        coordinator.account_id,
    );
    history.status = Some(resolution.value.to_string());
    history.reason = resolution.reason.clone();
    history.detail = json!({ "field": field, "value": resolution.value, "values": previous });
    let (edit_field, value) = (field.clone(), resolution.value.clone());
    let write = ServerWrite {
        edit: Box::new(move |doc| {
            let Some(obj) = record_obj(doc, kind, &record.to_string()) else {
                return Err(
                    Box::new(ReviewError::NotFound(format!("record {record}"))) as EditError
                );
            };
            if doc
                .get_all(&obj, edit_field.as_str())
                .map_or(0, |v| v.len())
                < 2
            {
                return Err(Box::new(ReviewError::conflict(
                    "field",
                    format!("`{edit_field}` of record {record} is no longer in conflict"),
                )));
            }
            set_field(doc, kind, record, &edit_field, &value)
                .map_err(|error| Box::new(error) as EditError)?;
            let read = read_notebook(&*doc);
            let state = read
                .records
                .iter()
                .find(|r| r.kind == kind && r.key == record.to_string());
            if let Some(Err(problems)) = state.map(|s| &s.parsed) {
                let problem = &problems[0];
                return Err(Box::new(ReviewError::unprocessable(
                    "value",
                    format!(
                        "the record would be invalid: {}: {}",
                        problem.field, problem.reason
                    ),
                )));
            }
            Ok(())
        }),
        on_behalf_of: Some(Delivery::of(coordinator)),
        history: vec![history.to_json()],
    };
    match sync.write(id, write).await {
        Ok(WriteOutcome::Written | WriteOutcome::Unchanged) => {}
        Err(WriteFailure::Refused(error)) => {
            return Err(match error.downcast::<ReviewError>() {
                Ok(review) => *review,
                Err(other) => ReviewError::Storage(other.to_string()),
            })
        }
        Err(WriteFailure::Storage(reason)) => return Err(ReviewError::Storage(reason)),
    }
    tracing::info!(%territory, %record, field, coordinator = %coordinator.account_id, "conflict resolved");
    Ok(Resolved {
        record_id: record,
        field,
        value: resolution.value,
    })
}
