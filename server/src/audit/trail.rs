//! Audit entries for the changes a commit stores: one per change and record
//! it touched, with the fields it wrote before and after
//! (`sync::audit::record_edits`) and the credential that delivered it.

use std::collections::HashMap;

use automerge::{Automerge, Change, ChangeHash};
use serde_json::{json, Value as Json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::Credential;

/// One change's edit of one record, as `audit_pending` keeps it.
#[derive(Debug)]
pub struct ChangeEntry {
    territory: Uuid,
    actor: Uuid,
    device: Option<Uuid>,
    session: Option<Uuid>,
    doc_id: String,
    record: Option<Uuid>,
    record_kind: Option<&'static str>,
    change_hash: String,
    before: Json,
    after: Json,
    detail: Json,
}

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
) -> Vec<ChangeEntry> {
    let changes: HashMap<ChangeHash, Change> = match sync::wire::chunk_changes(chunk) {
        Ok(changes) => changes.into_iter().map(|c| (c.hash(), c)).collect(),
        Err(reason) => {
            tracing::error!(doc_id, %reason, "the committed chunk does not parse");
            HashMap::new()
        }
    };
    let mut entries = Vec::new();
    for (hash, actor, credential) in delivered {
        let (device, session) = match *credential {
            Credential::Device { device_id } => (Some(device_id), None),
            Credential::Session { session_id } => (None, Some(session_id)),
        };
        let entry = |record, record_kind, before, after, detail| ChangeEntry {
            territory,
            actor,
            device,
            session,
            doc_id: doc_id.to_string(),
            record,
            record_kind,
            change_hash: hash.to_string(),
            before,
            after,
            detail,
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
/// statement, in their order: no lock is taken, the chaining gives them
/// their places later (`super::chain`). Bound column by column, so the
/// database parses only the fields' values.
pub async fn append(conn: &mut PgConnection, entries: Vec<ChangeEntry>) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut columns = Columns::with_capacity(entries.len());
    for entry in entries {
        columns.push(entry);
    }
    sqlx::query(
        "INSERT INTO audit_pending (territory_id, action, actor_id, device_id, session_id, doc_id, \
           record_id, record_kind, change_hash, before, after, detail) \
         SELECT territory_id, 'change', actor_id, device_id, session_id, doc_id, record_id, \
           record_kind, change_hash, before, after, detail \
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::uuid[], \
           $7::text[], $8::text[], $9::jsonb[], $10::jsonb[], $11::jsonb[]) WITH ORDINALITY \
           AS e(territory_id, actor_id, device_id, session_id, doc_id, record_id, record_kind, \
                change_hash, before, after, detail, n) \
         ORDER BY n",
    )
    .bind(columns.territory)
    .bind(columns.actor)
    .bind(columns.device)
    .bind(columns.session)
    .bind(columns.doc_id)
    .bind(columns.record)
    .bind(columns.record_kind)
    .bind(columns.change_hash)
    .bind(columns.before)
    .bind(columns.after)
    .bind(columns.detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// [`ChangeEntry`]s as one array per column.
struct Columns {
    territory: Vec<Uuid>,
    actor: Vec<Uuid>,
    device: Vec<Option<Uuid>>,
    session: Vec<Option<Uuid>>,
    doc_id: Vec<String>,
    record: Vec<Option<Uuid>>,
    record_kind: Vec<Option<&'static str>>,
    change_hash: Vec<String>,
    before: Vec<Json>,
    after: Vec<Json>,
    detail: Vec<Json>,
}

impl Columns {
    fn with_capacity(n: usize) -> Columns {
        Columns {
            territory: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            device: Vec::with_capacity(n),
            session: Vec::with_capacity(n),
            doc_id: Vec::with_capacity(n),
            record: Vec::with_capacity(n),
            record_kind: Vec::with_capacity(n),
            change_hash: Vec::with_capacity(n),
            before: Vec::with_capacity(n),
            after: Vec::with_capacity(n),
            detail: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, entry: ChangeEntry) {
        self.territory.push(entry.territory);
        self.actor.push(entry.actor);
        self.device.push(entry.device);
        self.session.push(entry.session);
        self.doc_id.push(entry.doc_id);
        self.record.push(entry.record);
        self.record_kind.push(entry.record_kind);
        self.change_hash.push(entry.change_hash);
        self.before.push(entry.before);
        self.after.push(entry.after);
        self.detail.push(entry.detail);
    }
}
