//! The decision on one message: whether its changes may be applied to the
//! document as the server committed it. Which document it is (a notebook,
//! not a review document or a species list), whose (its owner's only), in
//! which territory, whether its header stays, and which changes wait for a
//! dependency; every value the changes write is then judged by
//! [`super::values`].

use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use super::{refusal::Refusal, rights::WriterRights, values::judge_written};
use crate::documents::{
    check_header_unchanged, read_header, review::is_review_document,
    species::is_species_list_document, wire::chunk_changes,
};

/// How many changes one judgement applies. A phone back from a day offline
/// sends a few hundred; tens of thousands at once is a peer flooding the server.
pub const MAX_CHANGES_PER_MESSAGE: usize = 10_000;

/// Operations in one change. The longest legitimate change, a record whose
/// free texts are all at their limit written by the JavaScript client (one
/// operation per character), stays far below.
pub const MAX_OPERATIONS_PER_CHANGE: usize = 100_000;

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
        /// The committed document with the allowed changes applied, when no
        /// change waits (a document with waiting changes holds them queued,
        /// and is not one to commit): the caller need not apply them again.
        applied_to: Option<Box<Automerge>>,
    },
    Refused(Refusal),
}

/// Decides whether `chunks` (the change chunks of a sync message, after those
/// still waiting from earlier messages) may be applied to `committed`, the
/// document as the server has stored it.
///
/// Only the document's established owner may leave changes waiting: once a
/// dependency arrives automerge applies whatever waited for it, so a waiting
/// change is judged with the owner's rights when it becomes applicable.
pub fn authorize_notebook_changes(
    committed: &Automerge,
    chunks: &[Vec<u8>],
    rights: &WriterRights,
) -> Decision {
    // automerge panics on some malformed changes it accepts to parse (an
    // operation on an object that does not exist): such a change is refused,
    // and nothing shared is left half-updated (the judgement works on a copy).
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Err(refusal) = check_counts(chunks) {
            return Decision::Refused(refusal);
        }
        decide(committed, chunks, rights)
    }))
    .unwrap_or(Decision::Refused(Refusal::Unapplicable))
}

/// Changes per message and operations per change, counted before anything
/// is loaded, so that an oversize message costs its parsing only.
fn check_counts(chunks: &[Vec<u8>]) -> Result<(), Refusal> {
    let mut changes = 0;
    for chunk in chunks {
        for change in chunk_changes(chunk).map_err(Refusal::NotANotebook)? {
            changes += 1;
            if changes > MAX_CHANGES_PER_MESSAGE {
                return Err(Refusal::TooManyChanges {
                    limit: MAX_CHANGES_PER_MESSAGE,
                    got: changes,
                });
            }
            if change.len() > MAX_OPERATIONS_PER_CHANGE {
                return Err(Refusal::ChangeTooLarge {
                    limit: MAX_OPERATIONS_PER_CHANGE,
                    got: change.len(),
                });
            }
        }
    }
    Ok(())
}

fn decide(committed: &Automerge, chunks: &[Vec<u8>], rights: &WriterRights) -> Decision {
    if is_review_document(committed) {
        return Decision::Refused(Refusal::ReviewDocument);
    }
    if is_species_list_document(committed) {
        return Decision::Refused(Refusal::SpeciesListDocument);
    }
    let mut after = committed.clone();
    for chunk in chunks {
        // Chunks have passed `check_counts` (`wire::chunk_changes`); what still fails to load
        // cannot be judged and is refused.
        if let Err(error) = after.load_incremental(chunk) {
            return Decision::Refused(Refusal::NotANotebook(error.to_string()));
        }
    }
    let missing = after.get_missing_deps(&[]);
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
        match read_header(committed) {
            Ok(header) if header.owner_id == rights.account_id => {}
            Ok(_) => return Decision::Refused(Refusal::NotYourNotebook),
            Err(_) => return Decision::Refused(Refusal::UnknownHistory),
        }
    }
    if after.get_heads() == committed.get_heads() {
        // Nothing new applies: a duplicate, or only changes that wait.
        return Decision::Allowed {
            applied: Vec::new(),
            waiting,
            missing,
            applied_to: None,
        };
    }
    match check(committed, &after, rights) {
        Ok(()) => Decision::Allowed {
            applied: after
                .get_changes_meta(&committed.get_heads())
                .iter()
                .map(|change| change.hash)
                .collect(),
            applied_to: waiting.is_empty().then(|| Box::new(after)),
            waiting,
            missing,
        },
        Err(refusal) => Decision::Refused(refusal),
    }
}

/// The changes in `chunks` that `after` holds unapplied, each once.
fn waiting_changes(after: &Automerge, chunks: &[Vec<u8>]) -> Result<Vec<Change>, Refusal> {
    let mut waiting: Vec<Change> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for chunk in chunks {
        for change in chunk_changes(chunk).map_err(Refusal::NotANotebook)? {
            let hash = change.hash();
            if after.get_change_by_hash(&hash).is_none() && seen.insert(hash) {
                waiting.push(change);
            }
        }
    }
    Ok(waiting)
}

fn check(before: &Automerge, after: &Automerge, rights: &WriterRights) -> Result<(), Refusal> {
    if is_review_document(after) {
        return Err(Refusal::ReviewDocument);
    }
    if is_species_list_document(after) {
        return Err(Refusal::SpeciesListDocument);
    }
    // The header only: the records are judged by what the changes write.
    let header = read_header(after).map_err(|problems| {
        Refusal::NotANotebook(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let established = read_header(before).ok();
    match &established {
        Some(established) => {
            if established.owner_id != rights.account_id {
                return Err(Refusal::NotYourNotebook);
            }
            if let Some(violation) = check_header_unchanged(established, &header).first() {
                return Err(Refusal::HeaderChanged {
                    field: violation.field,
                });
            }
        }
        None => {
            if header.owner_id != rights.account_id {
                return Err(Refusal::OwnerMismatch);
            }
        }
    }
    if !rights.notebook_territories.contains(&header.territory_id) {
        return Err(Refusal::TerritoryNotAllowed {
            territory: header.territory_id,
        });
    }
    let new_changes = after.get_changes(&before.get_heads());
    judge_written(established.as_ref(), after, &new_changes, rights)
}
