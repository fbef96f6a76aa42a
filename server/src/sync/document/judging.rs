//! The document owner's decisions, without I/O: what it holds of the
//! document between batches (the committed state, and the changes waiting
//! for a dependency with who delivered each) and what it decides about a
//! batch:
//! - each message's changes are judged (`sync::judge`) together with
//!   those still waiting, with the rights of whoever delivered them, and the
//!   accepted ones applied to a working copy of the committed document;
//! - a change that arrives before its dependency waits — but first the
//!   owner is told to ask the database whether another process committed
//!   that dependency ([`Settled::CheckRevision`]);
//! - when another process did, or when a commit finds another process's
//!   revision, the attempt is withdrawn ([`Judging::withdraw`]) and the
//!   batch judged again on the reloaded document.
//!
//! The owner (`super`) drives it: it loads the document, asks the database
//! for the revision, commits, and tells the peers. Nothing here touches
//! PostgreSQL, a socket or a task, so unit tests drive it with real
//! automerge documents.

use std::{borrow::Cow, collections::HashSet};

use automerge::{Automerge, Change, ChangeHash};
use sync::{
    documents::wire::chunk_changes,
    judge::{authorize_notebook_changes, Decision, Refusal, WriterRights},
    protocol::IncomingSync,
};
use uuid::Uuid;

use crate::sync::access::{Delivery, MAX_NEW_DOCUMENTS_PER_HOUR};
use crate::{
    auth::{Principal, Role},
    inventory::materialise::{CommittedDoc, DocumentKind},
    telemetry,
};

/// Whoever delivers changes, as judging knows them (a connected peer, in
/// the owner).
pub(super) trait Deliverer: Clone {
    /// Whose rights judge the changes it delivers.
    fn principal(&self) -> &Principal;
}

/// Whether an account may create one more document now (the hourly limit,
/// `SyncAccess::reserve_creation`), asked only when a message creates one.
pub(super) type MayCreate<'a> = &'a dyn Fn(Uuid) -> bool;

/// A change waiting for a dependency, and who delivered it (whose rights
/// judge it once the dependency is here).
#[derive(Clone)]
struct Waiting<D> {
    change: Change,
    from: D,
}

/// One document's state between batches, and the decisions about them.
pub(super) struct Judging<D> {
    /// None until loaded, after an attempt was withdrawn (the document is
    /// to be reloaded), and while a pass or a commit holds it.
    committed: Option<CommittedDoc>,
    waiting: Vec<Waiting<D>>,
}

/// A batch being judged against the committed document.
pub(super) struct Pass<D> {
    /// The committed document, with the changes accepted so far applied.
    doc: CommittedDoc,
    heads_before: Vec<ChangeHash>,
    /// Who delivered each accepted change.
    receipts: Vec<(ChangeHash, Delivery)>,
    attempt: Attempt<D>,
}

/// What withdrawing a pass or a commit undoes.
pub(super) struct Attempt<D> {
    /// The changes waiting before the pass.
    waiting_before: Vec<Waiting<D>>,
    /// Who delivered changes the pass accepted (told when they cannot be
    /// stored).
    writers: Vec<D>,
}

/// What the owner does once a pass has judged its batch.
pub(super) enum Settled<D> {
    /// Changes wait for a dependency this process has not seen: another
    /// process may have committed it. The owner asks the database for the
    /// document's revision: another than the pass's, it withdraws the pass
    /// and judges the batch again on the reloaded document; the same, it
    /// settles the pass again without asking.
    CheckRevision(Pass<D>),
    /// Nothing new was accepted: the document is as committed.
    Unchanged,
    /// Store these changes.
    Commit(ToCommit<D>),
}

/// Accepted changes, ready to be stored.
pub(super) struct ToCommit<D> {
    /// The document with the changes applied, at the revision it was loaded at.
    pub doc: CommittedDoc,
    /// The new changes, as one chunk.
    pub chunk: Vec<u8>,
    pub receipts: Vec<(ChangeHash, Delivery)>,
    /// Handed back to [`Judging::withdraw`] if it is not stored.
    pub attempt: Attempt<D>,
}

impl<D> Pass<D> {
    /// The document as judged so far.
    pub(super) fn document(&mut self) -> &mut CommittedDoc {
        &mut self.doc
    }

    /// The revision the pass's document was loaded at.
    pub(super) fn revision(&self) -> i64 {
        self.doc.revision
    }

    pub(super) fn into_attempt(self) -> Attempt<D> {
        self.attempt
    }
}

impl<D: Deliverer> Judging<D> {
    pub(super) fn new() -> Self {
        Judging {
            committed: None,
            waiting: Vec::new(),
        }
    }

    /// The document as committed, once loaded.
    pub(super) fn committed(&self) -> Option<&CommittedDoc> {
        self.committed.as_ref()
    }

    /// Takes the committed document out (to change it outside a pass: a
    /// server write), leaving it to be loaded again unless handed back
    /// with [`Judging::loaded`].
    pub(super) fn take_committed(&mut self) -> Option<CommittedDoc> {
        self.committed.take()
    }

    /// The document as committed now: loaded, or just stored.
    pub(super) fn loaded(&mut self, doc: CommittedDoc) {
        self.committed = Some(doc);
    }

    /// Forgets the committed document: it is to be loaded again.
    pub(super) fn forget(&mut self) {
        self.committed = None;
    }

    pub(super) fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Starts judging a batch; None when the document is not loaded.
    pub(super) fn start_pass(&mut self) -> Option<Pass<D>> {
        let doc = self.committed.take()?;
        Some(Pass {
            heads_before: doc.doc.get_heads(),
            doc,
            receipts: Vec::new(),
            attempt: Attempt {
                waiting_before: self.waiting.clone(),
                writers: Vec::new(),
            },
        })
    }

    /// Judges the changes that wait, which may apply now that the document
    /// was reloaded, with the rights of who delivered the first of them.
    /// Refused: nothing waits any more, and Err says who delivered them and
    /// why they were refused.
    pub(super) fn judge_waiting(
        &mut self,
        pass: &mut Pass<D>,
        may_create: MayCreate<'_>,
    ) -> Result<(), (D, String)> {
        let Some(from) = self.waiting.first().map(|w| w.from.clone()) else {
            return Ok(());
        };
        match self.judge_changes(pass, &from, None, may_create) {
            Ok(()) => Ok(()),
            Err(reason) => {
                self.waiting.clear();
                Err((from, reason))
            }
        }
    }

    /// Judges `incoming`'s changes, delivered by `from`, with those still
    /// waiting, and applies the accepted ones to the pass's document; those
    /// whose dependency is missing wait. Err: refused, with the reason for
    /// the peer; nothing of the message was applied.
    pub(super) fn judge(
        &mut self,
        pass: &mut Pass<D>,
        from: &D,
        incoming: &IncomingSync,
        may_create: MayCreate<'_>,
    ) -> Result<(), String> {
        self.judge_changes(pass, from, Some(incoming), may_create)
    }

    /// Decides what becomes of a judged pass. `may_check_revision`: the
    /// database has not been asked for the revision in this batch yet.
    pub(super) fn settle(&mut self, mut pass: Pass<D>, may_check_revision: bool) -> Settled<D> {
        let newly_waiting = self.waiting.iter().any(|w| {
            !pass
                .attempt
                .waiting_before
                .iter()
                .any(|before| before.change.hash() == w.change.hash())
        });
        if newly_waiting && may_check_revision {
            return Settled::CheckRevision(pass);
        }
        if pass.doc.doc.get_heads() == pass.heads_before {
            self.committed = Some(pass.doc);
            return Settled::Unchanged;
        }
        let chunk = pass.doc.doc.save_after(&pass.heads_before);
        Settled::Commit(ToCommit {
            doc: pass.doc,
            chunk,
            receipts: std::mem::take(&mut pass.receipts),
            attempt: pass.attempt,
        })
    }

    /// Undoes a pass or a commit that was not stored (another process's
    /// revision, or a failure): the changes wait as they did before it, and
    /// the document is to be reloaded. Returns who delivered changes in it,
    /// to be told if they cannot be judged again.
    pub(super) fn withdraw(&mut self, attempt: Attempt<D>) -> Vec<D> {
        self.waiting = attempt.waiting_before;
        self.committed = None;
        attempt.writers
    }

    /// The document replies are generated from: the committed one, with the
    /// changes waiting for a dependency queued in a copy, so the peer is
    /// asked for that dependency.
    pub(super) fn reply_source(&self) -> Option<Cow<'_, Automerge>> {
        let doc = &self.committed.as_ref()?.doc;
        if self.waiting.is_empty() {
            return Some(Cow::Borrowed(doc));
        }
        let mut copy = doc.clone();
        if let Err(error) = copy.apply_changes(self.waiting.iter().map(|w| w.change.clone())) {
            tracing::warn!(%error, "waiting changes do not queue");
        }
        Some(Cow::Owned(copy))
    }

    /// Judges `incoming`'s changes (none: only those still waiting, which
    /// may apply now) with those still waiting, and applies the accepted
    /// ones to the pass's document.
    fn judge_changes(
        &mut self,
        pass: &mut Pass<D>,
        from: &D,
        incoming: Option<&IncomingSync>,
        may_create: MayCreate<'_>,
    ) -> Result<(), String> {
        let doc = &mut pass.doc;
        let principal = from.principal();
        let rights = WriterRights {
            account_id: principal.account_id,
            notebook_territories: principal.territories_with(&[Role::Volunteer, Role::Coordinator]),
        };
        // Decided before a byte of the changes is inflated or parsed: a
        // peer with no right to write here costs nothing more.
        if let Err(refusal) = may_send_changes(doc, &rights) {
            tracing::warn!(account = %principal.account_id, %refusal, "refusing changes before reading them");
            telemetry::sync_refused(refusal.code());
            return Err(format!("refused: {refusal}"));
        }
        let changes = incoming
            .map(IncomingSync::changes)
            .transpose()
            .map_err(|error| {
                tracing::warn!(account = %principal.account_id, %error, "refusing a sync message");
                telemetry::sync_refused("unreadable_changes");
                format!("refused: {error}")
            })?
            .unwrap_or_default();
        let creating = !doc.is_stored() && doc.doc.get_heads().is_empty();
        if creating && !may_create(principal.account_id) {
            tracing::warn!(account = %principal.account_id, "refusing a new document over the hourly limit");
            telemetry::sync_refused("new_documents_per_hour");
            return Err(format!(
                "more than {MAX_NEW_DOCUMENTS_PER_HOUR} new documents in an hour from one account; try again later"
            ));
        }
        let chunks: Vec<Vec<u8>> = self
            .waiting
            .iter()
            .map(|w| w.change.raw_bytes().to_vec())
            .chain(changes)
            .collect();
        let (applied, waiting, applied_to) =
            match authorize_notebook_changes(&doc.doc, &chunks, &rights) {
                Decision::Refused(refusal) => {
                    tracing::warn!(account = %principal.account_id, %refusal, "refusing changes");
                    telemetry::sync_refused(refusal.code());
                    return Err(format!("refused: {refusal}"));
                }
                Decision::Allowed {
                    applied,
                    waiting,
                    missing,
                    applied_to,
                } => {
                    if !waiting.is_empty() {
                        tracing::debug!(
                            waiting = waiting.len(),
                            ?missing,
                            "changes wait for their dependencies"
                        );
                    }
                    (applied, waiting, applied_to)
                }
            };
        let delivered_by = |hash: &ChangeHash, waiting: &[Waiting<D>]| {
            waiting
                .iter()
                .find(|w| w.change.hash() == *hash)
                .map_or_else(|| from.clone(), |w| w.from.clone())
        };
        match applied_to {
            // The judge's copy is the committed document with exactly these changes.
            Some(after) => doc.doc = *after,
            None => {
                let applied_set: HashSet<ChangeHash> = applied.iter().copied().collect();
                let mut seen = HashSet::new();
                let to_apply: Vec<Change> = chunks
                    .iter()
                    .flat_map(|chunk| chunk_changes(chunk).unwrap_or_default())
                    .filter(|change| {
                        applied_set.contains(&change.hash()) && seen.insert(change.hash())
                    })
                    .collect();
                if let Err(error) = doc.doc.apply_changes(to_apply) {
                    // The judge applied the same changes to a copy; this cannot differ.
                    tracing::error!(%error, "accepted changes do not apply");
                    return Err(format!("the changes do not apply: {error}"));
                }
            }
        }
        pass.receipts.extend(applied.iter().map(|hash| {
            let from = delivered_by(hash, &self.waiting);
            (*hash, Delivery::of(from.principal()))
        }));
        self.waiting = waiting
            .into_iter()
            .map(|change| Waiting {
                from: delivered_by(&change.hash(), &self.waiting),
                change,
            })
            .collect();
        if !applied.is_empty() {
            pass.attempt.writers.push(from.clone());
        }
        Ok(())
    }
}

/// Whether a writer with `rights` may send changes to `doc` at all, from
/// what is known without reading the changes: review documents and species
/// lists take none over sync, a stored notebook takes its owner's only, and
/// a writer who may keep no notebook anywhere (a régie auditor) writes none.
fn may_send_changes(doc: &CommittedDoc, rights: &WriterRights) -> Result<(), Refusal> {
    match doc.kind {
        DocumentKind::Review => return Err(Refusal::ReviewDocument),
        DocumentKind::SpeciesList { .. } => return Err(Refusal::SpeciesListDocument),
        DocumentKind::Retired => return Err(Refusal::RetiredDocument),
        DocumentKind::Notebook => {}
    }
    if rights.notebook_territories.is_empty() {
        return Err(Refusal::NoNotebookAnywhere);
    }
    match doc.header {
        Some(header) if header.owner_id != rights.account_id => Err(Refusal::NotYourNotebook),
        Some(header) if !rights.notebook_territories.contains(&header.territory_id) => {
            Err(Refusal::TerritoryNotAllowed {
                territory: header.territory_id,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    //! Real notebooks written with the `sync` crate's writers, judged as the
    //! owner judges them, without PostgreSQL.

    use std::sync::Arc;

    use automerge::sync::{Message, MessageVersion};
    use schemas::RecordKind;
    use serde_json::{json, Value as Json};
    use sync::{
        documents::{new_notebook, put_raw_record, set_field, NotebookHeader},
        judge::MAX_CHANGES_PER_MESSAGE,
        protocol::SyncDataLimits,
    };

    use super::*;
    use crate::{
        auth::{Credential, Membership},
        inventory::materialise::Fingerprints,
    };

    /// A phone, as judging knows who delivered a change.
    #[derive(Clone)]
    struct Phone(Arc<Principal>);

    impl Deliverer for Phone {
        fn principal(&self) -> &Principal {
            &self.0
        }
    }

    /// A phone of the volunteer who owns `header`'s notebook.
    fn phone_of(header: NotebookHeader) -> Phone {
        Phone(Arc::new(Principal {
            account_id: header.owner_id,
            display_name: "Camille".into(),
            is_admin: false,
            memberships: vec![Membership {
                territory_id: header.territory_id,
                role: Role::Volunteer,
            }],
            credential: Credential::Device {
                device_id: Uuid::new_v4(),
            },
        }))
    }

    fn a_header() -> NotebookHeader {
        NotebookHeader {
            territory_id: Uuid::new_v4(),
            owner_id: Uuid::new_v4(),
        }
    }

    fn committed(doc: Automerge, revision: i64, header: Option<NotebookHeader>) -> CommittedDoc {
        CommittedDoc {
            doc,
            kind: DocumentKind::Notebook,
            revision,
            fingerprints: Fingerprints::default(),
            header,
        }
    }

    fn loaded(doc: CommittedDoc) -> Judging<Phone> {
        let mut judging = Judging::new();
        judging.loaded(doc);
        judging
    }

    fn sighting(author: Uuid) -> Json {
        let id = Uuid::new_v4();
        let now = chrono::Utc::now().to_rfc3339();
        json!({
            "id": id, "occurrenceID": format!("urn:uuid:{id}"), "scientificName": "Parus major",
            "eventDate": now, "decimalLatitude": 45.75, "decimalLongitude": 4.85,
            "recordedBy": "Camille", "authorId": author, "deviceId": "p1",
            "createdAt": now, "modifiedAt": now,
        })
    }

    /// Record keys.
    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);

    /// `doc` with one more sighting under `key`, and the change that wrote
    /// it (under an actor of its own, as another phone would).
    fn with_sighting(doc: &Automerge, key: Uuid, author: Uuid) -> (Automerge, Change) {
        let mut doc = doc.fork();
        put_raw_record(
            &mut doc,
            RecordKind::Sighting,
            &key.to_string(),
            &sighting(author),
        )
        .unwrap();
        let change = doc.get_last_local_change().unwrap().clone();
        (doc, change)
    }

    /// A sync message carrying `changes`, as the connection decoded it.
    fn message(changes: &[Change]) -> IncomingSync {
        let message = Message {
            heads: Vec::new(),
            need: Vec::new(),
            have: Vec::new(),
            changes: changes
                .iter()
                .map(|change| change.raw_bytes().to_vec())
                .collect::<Vec<_>>()
                .into(),
            flags: None,
            version: MessageVersion::V1,
        };
        let limits = SyncDataLimits {
            max_chunks: MAX_CHANGES_PER_MESSAGE,
            max_inflated_bytes: 1 << 26,
        };
        IncomingSync::decode(&message.encode(), limits).unwrap()
    }

    fn may_create(_: Uuid) -> bool {
        true
    }

    fn hashes(receipts: &[(ChangeHash, Delivery)]) -> HashSet<ChangeHash> {
        receipts.iter().map(|(hash, _)| *hash).collect()
    }

    /// Judges `changes` from `phone` in a pass of their own; the database,
    /// asked, says no other process committed.
    fn judge_alone(
        judging: &mut Judging<Phone>,
        phone: &Phone,
        changes: &[Change],
    ) -> Settled<Phone> {
        let mut pass = judging.start_pass().expect("the document is loaded");
        judging
            .judge(&mut pass, phone, &message(changes), &may_create)
            .expect("accepted");
        match judging.settle(pass, true) {
            Settled::CheckRevision(pass) => judging.settle(pass, false),
            settled => settled,
        }
    }

    #[test]
    fn a_change_waiting_for_its_dependency_is_accepted_with_the_message_that_completes_it() {
        let header = a_header();
        let created = new_notebook(header);
        let (with_first, first) = with_sighting(&created, A, header.owner_id);
        let (with_both, second) = with_sighting(&with_first, B, header.owner_id);
        let (phone, other_phone) = (phone_of(header), phone_of(header));
        let mut judging = loaded(committed(created.clone(), 1, Some(header)));

        // The second sighting arrives first: it waits, once the database
        // said no other process committed its dependency.
        let mut pass = judging.start_pass().unwrap();
        judging
            .judge(
                &mut pass,
                &other_phone,
                &message(std::slice::from_ref(&second)),
                &may_create,
            )
            .unwrap();
        let Settled::CheckRevision(pass) = judging.settle(pass, true) else {
            panic!("a change left waiting asks the database first");
        };
        assert_eq!(pass.revision(), 1);
        assert!(matches!(judging.settle(pass, false), Settled::Unchanged));
        assert!(judging.has_waiting());
        assert_eq!(
            judging.committed().unwrap().doc.get_heads(),
            created.get_heads()
        );

        // The dependency arrives: both are accepted, each with the receipt
        // of the phone that delivered it.
        let Settled::Commit(commit) =
            judge_alone(&mut judging, &phone, std::slice::from_ref(&first))
        else {
            panic!("the completed pair is committed");
        };
        assert!(!judging.has_waiting());
        assert_eq!(commit.doc.doc.get_heads(), with_both.get_heads());
        assert_eq!(
            hashes(&commit.receipts),
            HashSet::from([first.hash(), second.hash()])
        );
        let delivered_by = |hash: ChangeHash| {
            commit
                .receipts
                .iter()
                .find(|(h, _)| *h == hash)
                .map(|(_, delivery)| delivery.credential.clone())
        };
        assert_eq!(
            delivered_by(second.hash()),
            Some(other_phone.0.credential.clone())
        );
        assert_eq!(delivered_by(first.hash()), Some(phone.0.credential.clone()));
    }

    #[test]
    fn a_waiting_change_is_refused_with_the_message_that_completes_it_when_the_pair_is_not_legitimate(
    ) {
        let header = a_header();
        let created = new_notebook(header);
        let (with_record, creation) = with_sighting(&created, A, header.owner_id);
        // A decision only a coordinator takes, written on that sighting.
        let mut forbidden = with_record.clone();
        set_field(
            &mut forbidden,
            RecordKind::Sighting,
            A,
            "identificationVerificationStatus",
            &json!("verified"),
        )
        .unwrap();
        let decision = forbidden.get_last_local_change().unwrap().clone();
        let phone = phone_of(header);
        let mut judging = loaded(committed(created.clone(), 1, Some(header)));

        // Alone, the decision cannot be judged: it waits.
        assert!(matches!(
            judge_alone(&mut judging, &phone, std::slice::from_ref(&decision)),
            Settled::Unchanged
        ));
        assert!(judging.has_waiting());

        // The sighting alone would be accepted; with the change that waited
        // for it, it is refused, and nothing is applied.
        let mut pass = judging.start_pass().unwrap();
        let refusal = judging
            .judge(
                &mut pass,
                &phone,
                &message(std::slice::from_ref(&creation)),
                &may_create,
            )
            .unwrap_err();
        assert!(refusal.contains("coordinator's decision"), "{refusal}");
        assert!(matches!(judging.settle(pass, false), Settled::Unchanged));
        assert_eq!(
            judging.committed().unwrap().doc.get_heads(),
            created.get_heads()
        );
    }

    #[test]
    fn a_change_whose_dependency_another_process_committed_is_judged_on_that_commit() {
        let header = a_header();
        let created = new_notebook(header);
        let (with_first, _) = with_sighting(&created, A, header.owner_id);
        let (with_both, second) = with_sighting(&with_first, B, header.owner_id);
        let phone = phone_of(header);
        let mut judging = loaded(committed(created, 1, Some(header)));

        let mut pass = judging.start_pass().unwrap();
        judging
            .judge(
                &mut pass,
                &phone,
                &message(std::slice::from_ref(&second)),
                &may_create,
            )
            .unwrap();
        let Settled::CheckRevision(pass) = judging.settle(pass, true) else {
            panic!("a change left waiting asks the database first");
        };
        // The database holds revision 2, with the dependency: the pass is
        // withdrawn and the batch judged again on that document.
        assert_ne!(pass.revision(), 2);
        assert!(judging.withdraw(pass.into_attempt()).is_empty());
        assert!(!judging.has_waiting());
        judging.loaded(committed(with_first, 2, Some(header)));
        let mut pass = judging.start_pass().unwrap();
        judging.judge_waiting(&mut pass, &may_create).ok().unwrap();
        judging
            .judge(
                &mut pass,
                &phone,
                &message(std::slice::from_ref(&second)),
                &may_create,
            )
            .unwrap();
        let Settled::Commit(commit) = judging.settle(pass, false) else {
            panic!("the change applies on the other process's commit");
        };
        assert_eq!(commit.doc.revision, 2);
        assert_eq!(commit.doc.doc.get_heads(), with_both.get_heads());
        assert_eq!(hashes(&commit.receipts), HashSet::from([second.hash()]));
        assert!(!judging.has_waiting());
    }

    #[test]
    fn a_commit_that_finds_another_revision_is_judged_again_on_it_and_accepted() {
        let header = a_header();
        let created = new_notebook(header);
        // The volunteer's two phones each wrote a sighting; the other one's
        // was committed meanwhile by another server process.
        let (_, from_this_phone) = with_sighting(&created, A, header.owner_id);
        let (other_commit, _) = with_sighting(&created, B, header.owner_id);
        let phone = phone_of(header);
        let mut judging = loaded(committed(created, 1, Some(header)));

        let Settled::Commit(commit) =
            judge_alone(&mut judging, &phone, std::slice::from_ref(&from_this_phone))
        else {
            panic!("accepted on the document this process knew");
        };
        assert_eq!(commit.doc.revision, 1);

        // The store finds revision 2: withdrawn, reloaded, judged again.
        let writers = judging.withdraw(commit.attempt);
        assert_eq!(writers.len(), 1);
        assert!(judging.committed().is_none());
        judging.loaded(committed(other_commit.clone(), 2, Some(header)));
        let Settled::Commit(again) =
            judge_alone(&mut judging, &phone, std::slice::from_ref(&from_this_phone))
        else {
            panic!("accepted on the other process's document too");
        };
        assert_eq!(again.doc.revision, 2);
        let mut expected = other_commit;
        expected.apply_changes([from_this_phone.clone()]).unwrap();
        assert_eq!(again.doc.doc.get_heads(), expected.get_heads());
        assert_eq!(
            hashes(&again.receipts),
            HashSet::from([from_this_phone.hash()])
        );
    }

    #[test]
    fn a_commit_that_finds_another_revision_is_judged_again_on_it_and_refused() {
        // A new notebook, accepted on the empty document this process knew…
        let header = a_header();
        let phone = phone_of(header);
        let creation = new_notebook(header).get_changes(&[]);
        let mut judging = loaded(committed(Automerge::new(), 0, None));
        let Settled::Commit(commit) = judge_alone(&mut judging, &phone, &creation) else {
            panic!("a new notebook in the phone's own name is accepted");
        };

        // …but another process stored, under the same id, another
        // volunteer's notebook: judged again on it, the changes are refused.
        judging.withdraw(commit.attempt);
        let someone_else = NotebookHeader {
            territory_id: header.territory_id,
            owner_id: Uuid::new_v4(),
        };
        judging.loaded(committed(new_notebook(someone_else), 1, Some(someone_else)));
        let mut pass = judging.start_pass().unwrap();
        let refusal = judging
            .judge(&mut pass, &phone, &message(&creation), &may_create)
            .unwrap_err();
        assert_eq!(refusal, format!("refused: {}", Refusal::NotYourNotebook));
        assert!(matches!(judging.settle(pass, false), Settled::Unchanged));
    }
}
