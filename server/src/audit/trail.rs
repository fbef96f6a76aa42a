//! Audit entries for the changes a commit stores: one per change and record
//! it touched, with the fields it wrote before and after
//! (`sync::audit::record_edits`) and the credential that delivered it.

use std::collections::HashMap;

use automerge::{Automerge, Change, ChangeHash};
use serde_json::{json, Value as Json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::Credential;

/// The entries of the changes `delivered` (each with the account and the
/// credential that delivered it), all stored in `doc`, a notebook of
/// `territory`; `chunk` holds those changes as the commit stores them. A
/// change that cannot be read is logged and audited without its fields,
/// never dropped.
///
/// The changes are parsed from the chunk, not asked of the document:
/// automerge rebuilds a change it is asked for out of its operation set.
pub fn change_entries<'a>(
    territory: Uuid,
    doc_id: &str,
    doc: &Automerge,
    chunk: &[u8],
    delivered: impl IntoIterator<Item = (&'a ChangeHash, Uuid, &'a Credential)>,
) -> Vec<Json> {
    let changes: HashMap<ChangeHash, Change> = match sync::wire::chunk_changes(chunk) {
        Ok(changes) => changes.into_iter().map(|c| (c.hash(), c)).collect(),
        Err(reason) => {
            tracing::error!(doc_id, %reason, "the committed chunk does not parse");
            HashMap::new()
        }
    };
    let mut entries = Vec::new();
    for (hash, account, credential) in delivered {
        let (device, session) = match *credential {
            Credential::Device { device_id } => (Some(device_id), None),
            Credential::Session { session_id } => (None, Some(session_id)),
        };
        let entry =
            |record: Option<Uuid>, kind: Option<&str>, before: Json, after: Json, detail: Json| {
                json!({"territory_id": territory, "actor_id": account,
                   "device_id": device, "session_id": session, "doc_id": doc_id,
                   "record_id": record, "record_kind": kind, "change_hash": hash.to_string(),
                   "before": before, "after": after, "detail": detail})
            };
        let edits = match changes.get(hash) {
            Some(change) => sync::audit::record_edits(doc, change),
            None => Err("the change is not in the committed chunk".to_string()),
        };
        match edits {
            Ok(edits) => {
                for edit in edits {
                    let record = Uuid::parse_str(&edit.record).ok();
                    // A key that is no UUID (a misbehaving client) is kept as written.
                    let detail = match record {
                        Some(_) => json!({}),
                        None => json!({"recordKey": edit.record}),
                    };
                    entries.push(entry(
                        record,
                        Some(edit.kind.as_str()),
                        Json::Object(edit.before),
                        Json::Object(edit.after),
                        detail,
                    ));
                }
            }
            Err(reason) => {
                tracing::error!(doc_id, change = %hash, %reason, "auditing a change without its fields");
                entries.push(entry(
                    None,
                    None,
                    json!({}),
                    json!({}),
                    json!({"unread": reason}),
                ));
            }
        }
    }
    entries
}

/// Appends `entries` (from [`change_entries`]) to the pending entries in one
/// statement: no lock is taken, the chaining gives them their places later
/// (`super::chain`).
pub async fn append(conn: &mut PgConnection, entries: Vec<Json>) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO audit_pending (territory_id, action, actor_id, device_id, session_id, doc_id, \
           record_id, record_kind, change_hash, before, after, detail) \
         SELECT (e->>'territory_id')::uuid, 'change', (e->>'actor_id')::uuid, \
           (e->>'device_id')::uuid, (e->>'session_id')::uuid, e->>'doc_id', \
           (e->>'record_id')::uuid, e->>'record_kind', e->>'change_hash', \
           e->'before', e->'after', e->'detail' \
         FROM jsonb_array_elements($1) WITH ORDINALITY AS entries(e, n) ORDER BY n",
    )
    .bind(Json::Array(entries))
    .execute(conn)
    .await?;
    Ok(())
}
