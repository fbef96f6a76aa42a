//! Who may write what into a notebook: the decision the server takes on every
//! incoming change before samod applies it.
//!
//! A notebook belongs to one volunteer in one territory. Only its owner writes
//! it; the owner must (still) hold a writing role in that territory; the header
//! never changes after creation; and no record may carry a coordinator's
//! decision (verification, approval, follow-up status), which belong in the
//! territory's review documents, not in a volunteer's notebook.

use automerge::{Automerge, Change, ChangeHash, ReadDoc};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::{check_header_unchanged, read_notebook, wire::chunk_changes};

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
    #[error("these changes depend on changes the server has never received, and a new notebook must be sent from its beginning")]
    UnknownHistory,
    #[error("more than {limit} changes are waiting for changes the server has never received; send those first")]
    TooManyWaiting { limit: usize },
    #[error("`{field}` of {collection}/{record} is a coordinator's decision and cannot be set from a notebook")]
    CoordinatorField {
        collection: &'static str,
        record: String,
        field: String,
    },
}

/// How many changes may wait, per notebook, for dependencies the server has
/// not received. A Bloom-filter false positive leaves a handful; thousands mean
/// a peer sends changes whose history it never sends.
pub const MAX_WAITING_CHANGES: usize = 10_000;

/// The outcome of applying incoming changes to the committed document.
#[derive(Debug)]
pub enum Decision {
    /// Every change that applies is allowed. Changes whose dependencies are
    /// missing cannot be judged yet: automerge keeps them unapplied until the
    /// dependencies arrive, and they must be judged again, with those, then.
    Allowed {
        /// Changes that `committed` lacked and that now apply.
        applied: Vec<ChangeHash>,
        /// Incoming changes still waiting for a dependency.
        waiting: Vec<Change>,
        /// The dependencies they wait for.
        missing: Vec<ChangeHash>,
    },
    Refused(Refusal),
    /// Some changes depend on these, which the server accepted but has not
    /// committed: decide again once they are.
    AwaitCommit(Vec<ChangeHash>),
}

/// Decides whether `chunks` (the change chunks of a sync message, after those
/// still waiting from earlier messages) may be applied to `committed`, the
/// document as the server has stored it.
///
/// Only the document's established owner may leave changes waiting: once a
/// dependency arrives automerge applies whatever waited for it, so a waiting
/// change is judged with the owner's rights when it becomes applicable.
/// `uncommitted` tells the changes the server accepted before and has not
/// committed yet.
pub fn authorize_notebook_changes(
    committed: &Automerge,
    uncommitted: impl Fn(&ChangeHash) -> bool,
    chunks: &[Vec<u8>],
    rights: &WriterRights,
) -> Decision {
    let mut after = committed.clone();
    for chunk in chunks {
        // Chunks have passed `wire::check_incoming`; what still fails to load
        // cannot be judged and is refused.
        if let Err(error) = after.load_incremental(chunk) {
            return Decision::Refused(Refusal::NotANotebook(error.to_string()));
        }
    }
    let missing = after.get_missing_deps(&[]);
    let awaited: Vec<ChangeHash> = missing.iter().copied().filter(&uncommitted).collect();
    if !awaited.is_empty() {
        return Decision::AwaitCommit(awaited);
    }
    let waiting = if missing.is_empty() {
        Vec::new()
    } else {
        match waiting_changes(&after, chunks) {
            Ok(waiting) => waiting,
            Err(refusal) => return Decision::Refused(refusal),
        }
    };
    if !waiting.is_empty() {
        if waiting.len() > MAX_WAITING_CHANGES {
            return Decision::Refused(Refusal::TooManyWaiting {
                limit: MAX_WAITING_CHANGES,
            });
        }
        match read_notebook(committed).header {
            Ok(header) if header.owner_id == rights.account_id => {}
            Ok(header) => {
                return Decision::Refused(Refusal::NotYourNotebook {
                    owner: header.owner_id,
                })
            }
            Err(_) => return Decision::Refused(Refusal::UnknownHistory),
        }
    }
    if after.get_heads() == committed.get_heads() {
        // Nothing new applies: a duplicate, or only changes that wait.
        return Decision::Allowed {
            applied: Vec::new(),
            waiting,
            missing,
        };
    }
    match check(committed, &after, rights) {
        Ok(()) => Decision::Allowed {
            applied: after
                .get_changes_meta(&committed.get_heads())
                .iter()
                .map(|change| change.hash)
                .collect(),
            waiting,
            missing,
        },
        Err(refusal) => Decision::Refused(refusal),
    }
}

/// The changes in `chunks` that `after` holds unapplied, each once.
fn waiting_changes(after: &Automerge, chunks: &[Vec<u8>]) -> Result<Vec<Change>, Refusal> {
    let mut waiting: Vec<Change> = Vec::new();
    for chunk in chunks {
        for change in chunk_changes(chunk).map_err(Refusal::NotANotebook)? {
            let hash = change.hash();
            if after.get_change_by_hash(&hash).is_none()
                && !waiting.iter().any(|w| w.hash() == hash)
            {
                waiting.push(change);
            }
        }
    }
    Ok(waiting)
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
        match authorize_notebook_changes(
            committed,
            |_: &ChangeHash| false,
            &chunks_after(phone, committed),
            rights,
        ) {
            Decision::Allowed { waiting, .. } => {
                assert!(waiting.is_empty(), "unexpected waiting changes {waiting:?}");
                Ok(())
            }
            Decision::Refused(refusal) => Err(refusal),
            Decision::AwaitCommit(_) => panic!("nothing is uncommitted here"),
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

    /// A new notebook; the same with one sighting (whose key is `SIGHTING`);
    /// that sighting's change alone; the header.
    fn notebook_and_last_change() -> (Automerge, Automerge, Vec<u8>, NotebookHeader) {
        let (created, header) = owned_notebook();
        let mut phone = created.clone();
        put_raw_record(
            &mut phone,
            RecordKind::Sighting,
            &SIGHTING.to_string(),
            &sighting_json(header.owner_id),
        )
        .unwrap();
        let last = phone.get_last_local_change().unwrap().raw_bytes().to_vec();
        (created, phone, last, header)
    }

    const SIGHTING: Uuid = Uuid::from_u128(0x5167);

    /// `doc` with one more sighting, in one change.
    fn with_second_sighting(doc: &Automerge, owner: Uuid) -> Automerge {
        let mut phone = doc.clone();
        put_raw_record(
            &mut phone,
            RecordKind::Sighting,
            "k2",
            &sighting_json(owner),
        )
        .unwrap();
        phone
    }

    #[test]
    fn the_owners_change_that_arrives_before_its_dependency_waits() {
        let (created, with_sighting, _, header) = notebook_and_last_change();
        let phone = with_second_sighting(&with_sighting, header.owner_id);
        let last = phone.get_last_local_change().unwrap().clone();
        let rights = rights(header.owner_id, header.territory_id);
        match authorize_notebook_changes(
            &created,
            |_: &ChangeHash| false,
            &[last.raw_bytes().to_vec()],
            &rights,
        ) {
            Decision::Allowed {
                waiting, missing, ..
            } => {
                assert_eq!(
                    waiting.iter().map(Change::hash).collect::<Vec<_>>(),
                    vec![last.hash()]
                );
                assert_eq!(missing, with_sighting.get_heads());
            }
            other => panic!("expected waiting changes, got {other:?}"),
        }
    }

    #[test]
    fn a_change_depending_on_an_accepted_uncommitted_one_awaits_its_commit() {
        let (created, with_sighting, sighting_change, header) = notebook_and_last_change();
        let phone = with_second_sighting(&with_sighting, header.owner_id);
        let last = phone.get_last_local_change().unwrap().raw_bytes().to_vec();
        let accepted = automerge::Change::from_bytes(sighting_change)
            .unwrap()
            .hash();
        assert!(matches!(
            authorize_notebook_changes(
                &created,
                |hash: &ChangeHash| *hash == accepted,
                &[last],
                &rights(header.owner_id, header.territory_id)
            ),
            Decision::AwaitCommit(awaited) if awaited == vec![accepted]
        ));
    }

    #[test]
    fn changes_without_a_known_beginning_are_refused() {
        let (_, _, last, header) = notebook_and_last_change();
        let rights = rights(header.owner_id, header.territory_id);
        assert!(matches!(
            authorize_notebook_changes(&Automerge::new(), |_: &ChangeHash| false, &[last], &rights),
            Decision::Refused(Refusal::UnknownHistory)
        ));
    }

    #[test]
    fn only_the_owner_may_leave_changes_waiting() {
        let (created, phone, _, header) = notebook_and_last_change();
        let later = with_second_sighting(&phone, header.owner_id);
        let last = later.get_last_local_change().unwrap().raw_bytes().to_vec();
        let stranger = rights(Uuid::new_v4(), header.territory_id);
        assert_eq!(
            match authorize_notebook_changes(&created, |_: &ChangeHash| false, &[last], &stranger) {
                Decision::Refused(refusal) => Some(refusal),
                _ => None,
            },
            Some(Refusal::NotYourNotebook {
                owner: header.owner_id
            })
        );
    }

    #[test]
    fn a_waiting_change_is_judged_once_its_dependency_arrives() {
        let (created, with_sighting, sighting_change, header) = notebook_and_last_change();
        let mut forbidden = with_sighting.clone();
        set_field(
            &mut forbidden,
            RecordKind::Sighting,
            SIGHTING,
            "identificationVerificationStatus",
            &json!("verified"),
        )
        .unwrap();
        let forbidden_change = forbidden
            .get_last_local_change()
            .unwrap()
            .raw_bytes()
            .to_vec();
        let rights = rights(header.owner_id, header.territory_id);
        assert!(matches!(
            authorize_notebook_changes(&created, |_: &ChangeHash| false, std::slice::from_ref(&forbidden_change), &rights),
            Decision::Allowed { ref waiting, .. } if waiting.len() == 1
        ));
        // The dependency alone would be fine; with the change that waited for it, it is not.
        assert!(matches!(
            authorize_notebook_changes(&created, |_: &ChangeHash| false, std::slice::from_ref(&sighting_change), &rights),
            Decision::Allowed { ref waiting, .. } if waiting.is_empty()
        ));
        assert!(matches!(
            authorize_notebook_changes(
                &created,
                |_: &ChangeHash| false,
                &[forbidden_change, sighting_change],
                &rights
            ),
            Decision::Refused(Refusal::CoordinatorField { .. })
        ));
    }
}
