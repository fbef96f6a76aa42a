//! What the server has not acknowledged yet: the records whose latest state it
//! does not hold. The device lists them ([`crate::Device::pending`]) and the
//! sync client counts them in its status, both from the acknowledged heads the
//! store keeps.
//!
//! Decision: **pending** = records whose state at the acknowledged heads differs
//! from their state now (`Automerge::diff`): a record is pending until the server
//! holds the last change that touched it.

use automerge::{Automerge, ChangeHash, ObjType, PatchAction, Prop, ReadDoc, ROOT};
use schemas::RecordKind;
use serde::Serialize;
use sync::documents::Collection;

/// A record the server has not acknowledged in its latest state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRecord {
    pub kind: RecordKind,
    /// The record's key in its collection (its id).
    pub key: String,
}

/// Records whose state differs between the acknowledged heads and now.
pub(crate) fn pending_records(doc: &Automerge, acknowledged: &[ChangeHash]) -> Vec<PendingRecord> {
    let collections: Vec<(automerge::ObjId, Collection)> = Collection::ALL
        .into_iter()
        .filter_map(|c| match doc.get(ROOT, c.key()) {
            Ok(Some((automerge::Value::Object(ObjType::Map), obj))) => Some((obj, c)),
            _ => None,
        })
        .collect();
    let collection_of = |obj: &automerge::ObjId| {
        collections
            .iter()
            .find(|(o, _)| o == obj)
            .map(|(_, c)| c.kind())
    };
    let mut pending = Vec::new();
    for patch in doc.diff(acknowledged, &doc.get_heads()) {
        // A record's own entry in its collection (created, replaced, deleted)…
        if let Some(kind) = collection_of(&patch.obj) {
            let key = match &patch.action {
                PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => key.clone(),
                _ => continue,
            };
            pending.push(PendingRecord { kind, key });
            continue;
        }
        // …or anything inside it: the path runs root → collection → record → ….
        if let Some((obj, Prop::Map(key))) = patch.path.get(1) {
            if let Some(kind) = collection_of(obj) {
                pending.push(PendingRecord {
                    kind,
                    key: key.clone(),
                });
            }
        }
    }
    // Ordered by kind, then id, once each.
    pending.sort_by(|a, b| (a.kind.as_str(), &a.key).cmp(&(b.kind.as_str(), &b.key)));
    pending.dedup();
    pending
}

/// Heads among `heads` that this document holds. An acknowledgement naming a
/// change the store lost (it cannot: they are recorded only once stored) would
/// otherwise make automerge refuse the comparison.
pub(crate) fn known_heads(doc: &Automerge, heads: &[ChangeHash]) -> Vec<ChangeHash> {
    heads
        .iter()
        .copied()
        .filter(|h| doc.get_change_by_hash(h).is_some())
        .collect()
}
