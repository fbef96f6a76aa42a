//! The judge's tests, on changes made as a phone makes them and judged as the
//! server judges a message: [`decisions`], which document a message may
//! change, whose, where, and which changes wait; [`values`], what its changes
//! may write. The helpers here are theirs.

use automerge::{Automerge, ReadDoc};
use schemas::RecordKind;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use super::{
    decision::{authorize_notebook_changes, Decision},
    refusal::Refusal,
    rights::WriterRights,
};
use crate::documents::{new_notebook, put_raw_record, NotebookHeader};

mod decisions;
mod values;

fn rights(account: Uuid, territory: Uuid) -> WriterRights {
    WriterRights {
        account_id: account,
        notebook_territories: vec![territory],
    }
}

fn sighting_json(author: Uuid) -> Json {
    let id = Uuid::new_v4();
    let now = chrono::Utc::now().to_rfc3339();
    json!({
        "id": id, "occurrenceID": format!("urn:uuid:{id}"), "scientificName": "Parus major",
        "eventDate": now, "decimalLatitude": 45.75, "decimalLongitude": 4.85,
        "recordedBy": "Camille", "authorId": author, "deviceId": "p1",
        "createdAt": now, "modifiedAt": now,
    })
}

/// The chunks a phone would send for everything after `since`.
fn chunks_after(doc: &Automerge, since: &Automerge) -> Vec<Vec<u8>> {
    doc.get_changes(&since.get_heads())
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

fn decide(committed: &Automerge, phone: &Automerge, rights: &WriterRights) -> Result<(), Refusal> {
    match authorize_notebook_changes(committed, &chunks_after(phone, committed), rights) {
        Decision::Allowed { waiting, .. } => {
            assert!(waiting.is_empty(), "unexpected waiting changes {waiting:?}");
            Ok(())
        }
        Decision::Refused(refusal) => Err(refusal),
    }
}

fn owned_notebook() -> (Automerge, NotebookHeader) {
    let header = NotebookHeader {
        territory_id: Uuid::new_v4(),
        owner_id: Uuid::new_v4(),
    };
    (new_notebook(header), header)
}

const SIGHTING: Uuid = Uuid::from_u128(0x5167);

/// A notebook holding one (incomplete) sighting, its owner, and the owner's rights.
fn notebook_with_sighting() -> (Automerge, Uuid, WriterRights) {
    let (created, header) = owned_notebook();
    let mut doc = created.clone();
    put_raw_record(
        &mut doc,
        RecordKind::Sighting,
        &SIGHTING.to_string(),
        &json!({"id": SIGHTING}),
    )
    .unwrap();
    (
        doc,
        header.owner_id,
        rights(header.owner_id, header.territory_id),
    )
}

fn record_obj(doc: &Automerge, collection: &str, key: &str) -> automerge::ObjId {
    let (_, coll) = doc.get(automerge::ROOT, collection).unwrap().unwrap();
    doc.get(&coll, key).unwrap().unwrap().1
}

/// `committed` with one more change, made by `edit` in a transaction on
/// the sighting's record map.
fn edited(
    committed: &Automerge,
    edit: impl FnOnce(
        &mut automerge::transaction::Transaction<'_>,
        &automerge::ObjId,
    ) -> Result<(), automerge::AutomergeError>,
) -> Automerge {
    let mut phone = committed.clone();
    let record = record_obj(&phone, "sightings", &SIGHTING.to_string());
    phone
        .transact::<_, _, automerge::AutomergeError>(|tx| edit(tx, &record))
        .unwrap();
    phone
}
