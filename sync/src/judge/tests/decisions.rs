//! The decision on a message as a whole: who may create or change which
//! notebook, in which territory; changes sent ahead of their dependency;
//! documents nobody writes over sync.

use automerge::{Automerge, Change};
use schemas::RecordKind;
use serde_json::json;
use uuid::Uuid;

use super::{
    authorize_notebook_changes, decide, edited, notebook_with_sighting, owned_notebook, rights,
    sighting_json, Decision, NotebookHeader, Refusal, SIGHTING,
};
use crate::documents::{put_raw_record, set_field};

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
        Err(Refusal::OwnerMismatch)
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
        Err(Refusal::NotYourNotebook)
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
    match authorize_notebook_changes(&created, &[last.raw_bytes().to_vec()], &rights) {
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
fn changes_without_a_known_beginning_are_refused() {
    let (_, _, last, header) = notebook_and_last_change();
    let rights = rights(header.owner_id, header.territory_id);
    assert!(matches!(
        authorize_notebook_changes(&Automerge::new(), &[last], &rights),
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
        match authorize_notebook_changes(&created, &[last], &stranger) {
            Decision::Refused(refusal) => Some(refusal),
            _ => None,
        },
        Some(Refusal::NotYourNotebook)
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
        authorize_notebook_changes(&created, std::slice::from_ref(&forbidden_change), &rights),
        Decision::Allowed { ref waiting, .. } if waiting.len() == 1
    ));
    // The dependency alone would be fine; with the change that waited for it, it is not.
    assert!(matches!(
        authorize_notebook_changes(&created, std::slice::from_ref(&sighting_change), &rights),
        Decision::Allowed { ref waiting, .. } if waiting.is_empty()
    ));
    assert!(matches!(
        authorize_notebook_changes(&created, &[forbidden_change, sighting_change], &rights),
        Decision::Refused(Refusal::CoordinatorField { .. })
    ));
}

#[test]
fn a_change_on_an_object_the_document_does_not_have_is_refused_not_a_panic() {
    let (committed, _, rights) = notebook_with_sighting();
    let phone = edited(&committed, |tx, record| {
        use automerge::transaction::Transactable;
        tx.put(record, "notes", "x").map(|_| ())
    });
    let mut expanded = phone.get_last_local_change().unwrap().decode();
    let actor = expanded.actor_id.clone();
    for op in &mut expanded.operations {
        op.obj = automerge::legacy::ObjectId::Id(automerge::legacy::OpId::new(9_999, &actor));
    }
    let forged = automerge::Change::from(expanded);
    assert!(matches!(
        authorize_notebook_changes(&committed, &[forged.raw_bytes().to_vec()], &rights),
        Decision::Refused(_)
    ));
}

/// The review document's changes, as a phone would send them.
fn review_changes(doc: &mut Automerge, header: NotebookHeader, status: &str) -> Vec<u8> {
    let before = doc.get_heads();
    let entry = crate::documents::review::DecisionEntry {
        record_id: Uuid::new_v4(),
        record_kind: "timesheet_entry".into(),
        decision: "approval".into(),
        status: status.into(),
        reason: None,
        decided_by: "Me".into(),
        decided_at: "2026-12-02T10:00:00.000Z".into(),
    };
    crate::documents::review::put_decisions(doc, header, &[entry]).unwrap();
    doc.save_after(&before)
}

#[test]
fn nobody_writes_a_review_document_over_sync_not_even_its_volunteer() {
    let header = NotebookHeader {
        territory_id: Uuid::new_v4(),
        owner_id: Uuid::new_v4(),
    };
    let owner = rights(header.owner_id, header.territory_id);
    // Creating one: a volunteer making up their own approvals.
    let mut forged = Automerge::new();
    let created = review_changes(&mut forged, header, "approved");
    assert!(matches!(
        authorize_notebook_changes(&Automerge::new(), &[created], &owner),
        Decision::Refused(Refusal::ReviewDocument)
    ));
    // Changing the one the server keeps.
    let mut committed = Automerge::new();
    review_changes(&mut committed, header, "returned");
    let mut phone = committed.fork();
    let change = review_changes(&mut phone, header, "approved");
    assert!(matches!(
        authorize_notebook_changes(&committed, &[change], &owner),
        Decision::Refused(Refusal::ReviewDocument)
    ));
}

#[test]
fn nobody_writes_a_species_list_over_sync() {
    let territory = Uuid::new_v4();
    let volunteer = rights(Uuid::new_v4(), territory);
    let taxon = |name: &str| crate::documents::species::Species {
        scientific_name: name.into(),
        vernacular_name: None,
        taxon_id: None,
        rank: None,
    };
    // Creating one under a fresh id.
    let mut forged = Automerge::new();
    crate::documents::species::put_species_list(&mut forged, territory, &[taxon("Bufo bufo")])
        .unwrap();
    assert!(matches!(
        authorize_notebook_changes(&Automerge::new(), &[forged.save_after(&[])], &volunteer),
        Decision::Refused(Refusal::SpeciesListDocument)
    ));
    // Adding a taxon to the one the server keeps.
    let mut committed = Automerge::new();
    crate::documents::species::put_species_list(&mut committed, territory, &[taxon("Bufo bufo")])
        .unwrap();
    let mut phone = committed.fork();
    let before = phone.get_heads();
    crate::documents::species::put_species_list(
        &mut phone,
        territory,
        &[taxon("Bufo bufo"), taxon("Canis lupus")],
    )
    .unwrap();
    assert!(matches!(
        authorize_notebook_changes(&committed, &[phone.save_after(&before)], &volunteer),
        Decision::Refused(Refusal::SpeciesListDocument)
    ));
}
