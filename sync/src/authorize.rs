//! Who may write what into a notebook: the decision the server takes on every
//! incoming change before samod applies it.
//!
//! A notebook belongs to one volunteer in one territory. Only its owner writes
//! it; the owner must (still) hold a writing role in that territory; the header
//! never changes after creation; and no record may carry a coordinator's
//! decision (verification, approval, follow-up status), which belong in the
//! territory's review documents, not in a volunteer's notebook.

use automerge::{Automerge, ChangeHash, ReadDoc};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::{check_header_unchanged, read_notebook};

/// Fields that are coordinator decisions: a notebook record never carries them.
pub const COORDINATOR_FIELDS: &[&str] = &[
    "identificationVerificationStatus",
    "verificationStatus",
    "reviewedBy",
    "reviewedAt",
    "approval",
    "approvalStatus",
    "approvedBy",
    "approvedAt",
    "status",
    "statusHistory",
];

/// What the writer of a change may do, as the server established it from their credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterRights {
    pub account_id: Uuid,
    /// Territories where the writer may keep a notebook (volunteers and coordinators).
    pub notebook_territories: Vec<Uuid>,
}

/// Why a change is refused; the text is sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this notebook belongs to another volunteer ({owner}); only its owner may change it")]
    NotYourNotebook { owner: Uuid },
    #[error("you may not keep a notebook in territory {territory}")]
    TerritoryNotAllowed { territory: Uuid },
    #[error("a new notebook must name you as its owner (ownerId {claimed} is not you)")]
    OwnerMismatch { claimed: Uuid },
    #[error("the notebook's `{field}` cannot be changed")]
    HeaderChanged { field: &'static str },
    #[error("a document must be a field notebook with a valid header: {0}")]
    NotANotebook(String),
    #[error("`{field}` of {collection}/{record} is a coordinator's decision and cannot be set from a notebook")]
    CoordinatorField {
        collection: &'static str,
        record: String,
        field: String,
    },
}

/// The outcome of applying incoming changes to the committed document.
#[derive(Debug)]
pub enum Decision {
    /// The changes are allowed; the document as it would be after them.
    Allowed(Box<Automerge>),
    Refused(Refusal),
    /// Some changes depend on changes not yet committed: decide again once they are.
    MissingDependencies(Vec<ChangeHash>),
}

/// Decides whether `chunks` (change chunks of a sync message) may be applied to
/// `committed`, the document as the server has stored it.
pub fn authorize_notebook_changes(
    committed: &Automerge,
    chunks: &[Vec<u8>],
    rights: &WriterRights,
) -> Decision {
    let mut after = committed.clone();
    let mut incoming = Vec::new();
    for chunk in chunks {
        // Chunks have passed `wire::check_incoming`; what still fails to load
        // cannot be judged and is refused.
        if let Err(error) = after.load_incremental(chunk) {
            return Decision::Refused(Refusal::NotANotebook(error.to_string()));
        }
        if let Ok(change) = automerge::Change::from_bytes(chunk.clone()) {
            incoming.push(change.hash());
        }
    }
    let missing = after.get_missing_deps(&[]);
    if !missing.is_empty() {
        return Decision::MissingDependencies(missing);
    }
    if incoming
        .iter()
        .all(|hash| committed.get_change_by_hash(hash).is_some())
        && after.get_heads() == committed.get_heads()
    {
        // Nothing new: a duplicate is harmless.
        return Decision::Allowed(Box::new(after));
    }
    match check(committed, &after, rights) {
        Ok(()) => Decision::Allowed(Box::new(after)),
        Err(refusal) => Decision::Refused(refusal),
    }
}

fn check(before: &Automerge, after: &Automerge, rights: &WriterRights) -> Result<(), Refusal> {
    let was = read_notebook(before);
    let now = read_notebook(after);
    let header = now.header.clone().map_err(|problems| {
        Refusal::NotANotebook(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    match &was.header {
        Ok(established) => {
            if established.owner_id != rights.account_id {
                return Err(Refusal::NotYourNotebook {
                    owner: established.owner_id,
                });
            }
            if let Some(violation) = check_header_unchanged(established, &header).first() {
                return Err(Refusal::HeaderChanged {
                    field: violation.field,
                });
            }
        }
        Err(_) => {
            if header.owner_id != rights.account_id {
                return Err(Refusal::OwnerMismatch {
                    claimed: header.owner_id,
                });
            }
        }
    }
    if !rights.notebook_territories.contains(&header.territory_id) {
        return Err(Refusal::TerritoryNotAllowed {
            territory: header.territory_id,
        });
    }
    for record in &now.records {
        let Json::Object(fields) = &record.raw else {
            continue;
        };
        let previous = was
            .records
            .iter()
            .find(|r| r.kind == record.kind && r.key == record.key)
            .map(|r| &r.raw);
        for field in COORDINATOR_FIELDS {
            let Some(value) = fields.get(*field) else {
                continue;
            };
            if previous.and_then(|raw| raw.get(*field)) != Some(value) {
                return Err(Refusal::CoordinatorField {
                    collection: crate::Collection::of_kind(record.kind).key(),
                    record: record.key.clone(),
                    field: (*field).to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{new_notebook, put_raw_record, put_record, set_field, NotebookHeader};
    use schemas::{FieldRecord, RecordKind};
    use serde_json::json;

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

    fn decide(
        committed: &Automerge,
        phone: &Automerge,
        rights: &WriterRights,
    ) -> Result<(), Refusal> {
        match authorize_notebook_changes(committed, &chunks_after(phone, committed), rights) {
            Decision::Allowed(_) => Ok(()),
            Decision::Refused(refusal) => Err(refusal),
            Decision::MissingDependencies(m) => panic!("unexpected missing deps {m:?}"),
        }
    }

    fn owned_notebook() -> (Automerge, NotebookHeader) {
        let header = NotebookHeader {
            territory_id: Uuid::new_v4(),
            owner_id: Uuid::new_v4(),
        };
        (new_notebook(header), header)
    }

    #[test]
    fn the_owner_creates_and_fills_a_notebook_in_their_territory() {
        let (doc, header) = owned_notebook();
        let mut phone = doc.clone();
        put_raw_record(
            &mut phone,
            RecordKind::Sighting,
            "k",
            &sighting_json(header.owner_id),
        )
        .unwrap();
        let rights = rights(header.owner_id, header.territory_id);
        assert_eq!(decide(&Automerge::new(), &phone, &rights), Ok(()));
    }

    #[test]
    fn a_new_notebook_in_someone_elses_name_is_refused() {
        let (doc, header) = owned_notebook();
        let intruder = rights(Uuid::new_v4(), header.territory_id);
        assert!(matches!(
            decide(&Automerge::new(), &doc, &intruder),
            Err(Refusal::OwnerMismatch { .. })
        ));
    }

    #[test]
    fn editing_another_volunteers_notebook_is_refused() {
        let (committed, header) = owned_notebook();
        let mut phone = committed.clone();
        put_raw_record(
            &mut phone,
            RecordKind::Sighting,
            "k",
            &sighting_json(header.owner_id),
        )
        .unwrap();
        let other = rights(Uuid::new_v4(), header.territory_id);
        assert_eq!(
            decide(&committed, &phone, &other),
            Err(Refusal::NotYourNotebook {
                owner: header.owner_id
            })
        );
    }

    #[test]
    fn writing_into_another_territory_is_refused() {
        let (doc, header) = owned_notebook();
        let elsewhere = rights(header.owner_id, Uuid::new_v4());
        assert_eq!(
            decide(&Automerge::new(), &doc, &elsewhere),
            Err(Refusal::TerritoryNotAllowed {
                territory: header.territory_id
            })
        );
    }

    #[test]
    fn moving_a_notebook_to_another_territory_is_refused() {
        let (committed, header) = owned_notebook();
        let mut phone = committed.clone();
        phone
            .transact::<_, _, automerge::AutomergeError>(|tx| {
                use automerge::transaction::Transactable;
                tx.put(automerge::ROOT, "territoryId", Uuid::new_v4().to_string())
                    .map(|_| ())
            })
            .unwrap();
        let mut rights = rights(header.owner_id, header.territory_id);
        rights.notebook_territories.push(Uuid::new_v4());
        assert_eq!(
            decide(&committed, &phone, &rights),
            Err(Refusal::HeaderChanged {
                field: "territoryId"
            })
        );
    }

    #[test]
    fn setting_a_coordinator_decision_in_a_notebook_is_refused() {
        let (committed, header) = owned_notebook();
        let mut with_record = committed.clone();
        let record = schemas::Sighting::from_raw(&sighting_json(header.owner_id)).unwrap();
        put_record(&mut with_record, &record).unwrap();
        let rights = rights(header.owner_id, header.territory_id);
        assert_eq!(decide(&committed, &with_record, &rights), Ok(()));

        for field in ["identificationVerificationStatus", "approvalStatus"] {
            let mut phone = with_record.clone();
            set_field(
                &mut phone,
                RecordKind::Sighting,
                record.id(),
                field,
                &json!("verified"),
            )
            .unwrap();
            assert!(
                matches!(
                    decide(&with_record, &phone, &rights),
                    Err(Refusal::CoordinatorField { .. })
                ),
                "{field}"
            );
        }
    }

    #[test]
    fn changes_that_depend_on_uncommitted_ones_wait() {
        let (doc, header) = owned_notebook();
        let mut phone = doc.clone();
        put_raw_record(
            &mut phone,
            RecordKind::Sighting,
            "k",
            &sighting_json(header.owner_id),
        )
        .unwrap();
        // Only the last change, without the notebook's creation it depends on.
        let last = vec![phone.get_last_local_change().unwrap().raw_bytes().to_vec()];
        let rights = rights(header.owner_id, header.territory_id);
        assert!(matches!(
            authorize_notebook_changes(&Automerge::new(), &last, &rights),
            Decision::MissingDependencies(_)
        ));
    }
}
