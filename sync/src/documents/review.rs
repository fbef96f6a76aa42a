//! The review document: one automerge document per volunteer and territory
//! holding the coordinators' decisions about that volunteer's records, so the
//! volunteer's phone shows "validated" or "returned: …" offline.
//!
//! ```text
//! {
//!   "type": "fieldnotes.review", "schemaVersion": 1,
//!   "territoryId": "<uuid>", "ownerId": "<volunteer uuid>",
//!   "decisions": {
//!     "<record uuid>": {
//!       "recordKind": "sighting",
//!       "verification": { "status": "1", "reason": "…", "decidedBy": "Marie",
//!                         "decidedAt": "2026-12-02T10:00:00.000Z" },
//!       "followUp": {…}, "approval": {…}, "duplicate": {…}
//!     }
//!   }
//! }
//! ```
//! Only the server writes it, on behalf of the coordinator who decided (the
//! decisions themselves are kept, with their history, in PostgreSQL): a sync
//! peer's change to a review document is refused ([`is_review_document`]), so
//! no volunteer can approve their own hours. A phone only ever receives its
//! owner's review document.

use std::collections::BTreeMap;

use automerge::{transaction::Transactable, Automerge, ObjId, ObjType, ReadDoc, Value, ROOT};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{notebook::NotebookHeader, read::value_to_json};

/// Value of the root `type` field of a review document.
pub const REVIEW_TYPE: &str = "fieldnotes.review";
/// Version of the layout described above.
pub const REVIEW_SCHEMA_VERSION: i64 = 1;

/// One decision as the phone shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionEntry {
    pub record_id: Uuid,
    /// `sighting`, `degradation_report` or `timesheet_entry`.
    pub record_kind: String,
    /// The document key of the decision: `verification`, `followUp`,
    /// `approval` or `duplicate`.
    pub decision: String,
    pub status: String,
    pub reason: Option<String>,
    /// The coordinator's display name.
    pub decided_by: String,
    /// RFC 3339.
    pub decided_at: String,
}

/// Whether `doc` is a review document (its root `type` says so).
pub fn is_review_document<D: ReadDoc>(doc: &D) -> bool {
    matches!(
        doc.get(ROOT, "type"),
        Ok(Some((Value::Scalar(s), _))) if s.as_str() == Some(REVIEW_TYPE)
    )
}

/// Writes `entries` into the review document of `header` (creating its
/// header on first use), touching only what differs from what it holds, so
/// publishing the same decisions twice adds no change. Returns whether
/// anything was written.
pub fn put_decisions(
    doc: &mut Automerge,
    header: NotebookHeader,
    entries: &[DecisionEntry],
) -> Result<bool, automerge::AutomergeError> {
    let held = read_decisions(doc);
    let pending: Vec<&DecisionEntry> = entries
        .iter()
        .filter(|entry| !held.contains(entry))
        .collect();
    let fresh = !is_review_document(doc);
    if pending.is_empty() && !fresh {
        return Ok(false);
    }
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        let decisions = if fresh {
            tx.put(ROOT, "type", REVIEW_TYPE)?;
            tx.put(ROOT, "schemaVersion", REVIEW_SCHEMA_VERSION)?;
            tx.put(ROOT, "territoryId", header.territory_id.to_string())?;
            tx.put(ROOT, "ownerId", header.owner_id.to_string())?;
            tx.put_object(ROOT, "decisions", ObjType::Map)?
        } else {
            map_at(tx, &ROOT, "decisions")?
        };
        for entry in &pending {
            let record = map_at(tx, &decisions, &entry.record_id.to_string())?;
            tx.put(&record, "recordKind", entry.record_kind.as_str())?;
            let decision = tx.put_object(&record, entry.decision.as_str(), ObjType::Map)?;
            tx.put(&decision, "status", entry.status.as_str())?;
            match &entry.reason {
                Some(reason) => tx.put(&decision, "reason", reason.as_str())?,
                None => tx.put(&decision, "reason", ())?,
            }
            tx.put(&decision, "decidedBy", entry.decided_by.as_str())?;
            tx.put(&decision, "decidedAt", entry.decided_at.as_str())?;
        }
        Ok(())
    })
    .map_err(|failure| failure.error)?;
    Ok(true)
}

/// The map under `key` in `parent`, created if absent.
fn map_at<T: Transactable>(
    tx: &mut T,
    parent: &ObjId,
    key: &str,
) -> Result<ObjId, automerge::AutomergeError> {
    match tx.get(parent, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        _ => tx.put_object(parent, key, ObjType::Map),
    }
}

/// Every decision a review document holds, in record order.
pub fn read_decisions<D: ReadDoc>(doc: &D) -> Vec<DecisionEntry> {
    let Ok(Some((Value::Object(ObjType::Map), decisions))) = doc.get(ROOT, "decisions") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in doc.map_range(&decisions, ..) {
        let Ok(record_id) = Uuid::parse_str(item.key.as_ref()) else {
            continue;
        };
        let record_obj = item.id();
        let record = value_to_json(doc, &item.value.into_value(), &record_obj);
        let fields: BTreeMap<String, serde_json::Value> = match record {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => continue,
        };
        let record_kind = fields
            .get("recordKind")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        for (decision, value) in &fields {
            let text = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
            let (Some(status), Some(decided_by), Some(decided_at)) =
                (text("status"), text("decidedBy"), text("decidedAt"))
            else {
                continue;
            };
            out.push(DecisionEntry {
                record_id,
                record_kind: record_kind.clone(),
                decision: decision.clone(),
                status,
                reason: text("reason"),
                decided_by,
                decided_at,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(record: Uuid, decision: &str, status: &str) -> DecisionEntry {
        DecisionEntry {
            record_id: record,
            record_kind: "sighting".into(),
            decision: decision.into(),
            status: status.into(),
            reason: Some("photo shows the wing bars".into()),
            decided_by: "Marie".into(),
            decided_at: "2026-12-02T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn decisions_written_read_back_and_rewritten_only_when_they_change() {
        let header = NotebookHeader {
            territory_id: Uuid::new_v4(),
            owner_id: Uuid::new_v4(),
        };
        let record = Uuid::new_v4();
        let mut doc = Automerge::new();
        let first = vec![entry(record, "verification", "2")];
        assert!(put_decisions(&mut doc, header, &first).unwrap());
        assert!(is_review_document(&doc));
        assert_eq!(read_decisions(&doc), first);

        let heads = doc.get_heads();
        assert!(!put_decisions(&mut doc, header, &first).unwrap());
        assert_eq!(doc.get_heads(), heads, "the same decisions add no change");

        let mut changed = entry(record, "verification", "1");
        changed.reason = None;
        let approval = entry(Uuid::new_v4(), "approval", "returned");
        assert!(put_decisions(&mut doc, header, &[changed.clone(), approval.clone()]).unwrap());
        let mut read = read_decisions(&doc);
        read.sort_by_key(|d| d.record_id);
        let mut expected = vec![changed, approval];
        expected.sort_by_key(|d| d.record_id);
        assert_eq!(read, expected);
    }

    #[test]
    fn a_notebook_is_not_a_review_document() {
        let notebook = crate::documents::new_notebook(NotebookHeader {
            territory_id: Uuid::new_v4(),
            owner_id: Uuid::new_v4(),
        });
        assert!(!is_review_document(&notebook));
    }
}
