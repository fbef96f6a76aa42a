//! A territory's species list, without HTTP: the routes in `http::species`
//! parse requests and call these.
//!
//! The list lives in one automerge document per territory (`sync::documents::species`),
//! so the phones sync it like their notebooks and an update reaches them as
//! the changes they lack, not as a new download. It is written only here,
//! through the sync core (a [`ServerWrite`]: stored, then pushed to the
//! phones holding it), and only what differs from what it holds is written.
//! - [`import`]: reading a TAXREF-style CSV into species, all or nothing.
//! - [`resolve`]: a sighting's taxon id found by name in the list, when the
//!   client sent none.
//!
//! A document keeps its whole history, and a new phone fetches it all: a
//! list re-imported whole again and again would grow for ever. When its
//! history outweighs what it holds ([`MAX_HISTORY_FACTOR`]), the list is
//! written as a fresh document and the territory moved to it
//! ([`move_to_fresh`]): `GET …/species-list` names the new one, which the
//! phones follow; the former one stays readable, and no longer changes.

pub mod import;
pub mod resolve;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sync::{
    documents::species::{put_species_list, species_count, ListChanges, Species},
    protocol::DocumentId,
};
use uuid::Uuid;

use crate::{
    inventory::materialise::load_committed,
    sync::{access::Delivery, EditError, ServerWrite, SyncCore, WriteFailure},
};

/// The id of `territory`'s species list, allocated on first use. Its
/// `documents` row (kind `species_list`, no owner) is written before any
/// change, so the id is known to be the species list from the start and no
/// peer can create another document under it.
pub async fn species_list_document(
    pool: &PgPool,
    territory: Uuid,
) -> Result<DocumentId, sqlx::Error> {
    let fresh = DocumentId::from_bytes(*Uuid::new_v4().as_bytes()).to_string();
    sqlx::query(
        "INSERT INTO documents (doc_id, territory_id, kind) VALUES ($1, $2, 'species_list') \
         ON CONFLICT (territory_id) WHERE kind = 'species_list' DO NOTHING",
    )
    .bind(&fresh)
    .bind(territory)
    .execute(pool)
    .await?;
    let doc_id: String = sqlx::query_scalar(
        "SELECT doc_id FROM documents WHERE territory_id = $1 AND kind = 'species_list'",
    )
    .bind(territory)
    .fetch_one(pool)
    .await?;
    DocumentId::parse(&doc_id).map_err(|reason| sqlx::Error::Decode(reason.into()))
}

/// What the list holds now: how many species, and when it was last written
/// (None: never).
pub async fn summary(
    pool: &PgPool,
    doc_id: &DocumentId,
) -> Result<(usize, Option<DateTime<Utc>>), sqlx::Error> {
    let key = doc_id.to_string();
    let mut conn = pool.acquire().await?;
    let committed = load_committed(&mut conn, &key).await?;
    if !committed.is_stored() {
        return Ok((0, None));
    }
    let updated_at: DateTime<Utc> =
        sqlx::query_scalar("SELECT updated_at FROM documents WHERE doc_id = $1")
            .bind(&key)
            .fetch_one(&mut *conn)
            .await?;
    Ok((species_count(&committed.doc), Some(updated_at)))
}

/// How many operations a list's document may hold, as a multiple of those a
/// fresh write of the list takes, before it is rewritten as a fresh
/// document. Twice: a whole re-import (every entry changed) or as many
/// one-taxon edits as the list has entries; a new phone's first fetch then
/// stays within about twice the list's own size, and a list edited a few
/// taxa at a time is rarely moved (each move has every phone fetch it anew).
pub const MAX_HISTORY_FACTOR: u64 = 2;

/// Operations a fresh write of `species` takes: the header's four, and per
/// entry its map and each field it has.
fn fresh_operations(species: &[Species]) -> u64 {
    let entries: u64 = species
        .iter()
        .map(|s| {
            2 + u64::from(s.vernacular_name.is_some())
                + u64::from(s.taxon_id.is_some())
                + u64::from(s.rank.is_some())
        })
        .sum();
    4 + entries
}

/// What [`replace`] did.
#[derive(Debug, Clone, Copy)]
pub struct Replaced {
    pub changes: ListChanges,
    /// The territory's list now: `doc_id`, or the fresh document it moved to.
    pub document_id: DocumentId,
}

/// Makes the list of `territory` hold exactly `species` (unique keys, as
/// [`import::parse_species_list`] gives them), on behalf of `by` (the
/// change's receipt names them; None: the server's own write). Returns what
/// changed.
pub async fn replace(
    pool: &PgPool,
    sync: &SyncCore,
    doc_id: DocumentId,
    territory: Uuid,
    species: Vec<Species>,
    by: Option<Delivery>,
) -> Result<Replaced, String> {
    let species = Arc::new(species);
    let most_operations = MAX_HISTORY_FACTOR * fresh_operations(&species);
    let (changes, outgrown) = write_list(
        sync,
        doc_id,
        territory,
        species.clone(),
        by.clone(),
        most_operations,
    )
    .await?;
    let document_id = if outgrown {
        move_to_fresh(pool, sync, doc_id, territory, species, by).await?
    } else {
        doc_id
    };
    Ok(Replaced {
        changes,
        document_id,
    })
}

/// Writes `species` into the list `doc_id` (what differs only); what
/// changed, and whether the document then holds more than
/// `most_operations`.
async fn write_list(
    sync: &SyncCore,
    doc_id: DocumentId,
    territory: Uuid,
    species: Arc<Vec<Species>>,
    by: Option<Delivery>,
    most_operations: u64,
) -> Result<(ListChanges, bool), String> {
    // The edit runs again if another process committed first: the counts
    // are those of the run that was stored.
    let changes = Arc::new(Mutex::new((ListChanges::default(), false)));
    let counted = changes.clone();
    let write = ServerWrite {
        edit: Box::new(move |doc| {
            let written = put_species_list(doc, territory, &species)
                .map_err(|error| Box::new(error) as EditError)?;
            let outgrown = automerge::ReadDoc::stats(&*doc).num_ops > most_operations;
            *counted.lock().expect("species counts poisoned") = (written, outgrown);
            Ok(())
        }),
        on_behalf_of: by,
        history: Vec::new(),
    };
    match sync.write(doc_id, write).await {
        Ok(_) => {}
        Err(WriteFailure::Refused(error)) => return Err(error.to_string()),
        Err(WriteFailure::Storage(reason)) => return Err(reason),
    }
    let (changes, outgrown) = *changes.lock().expect("species counts poisoned");
    tracing::info!(
        %territory,
        doc_id = %doc_id,
        added = changes.added,
        changed = changes.changed,
        removed = changes.removed,
        "species list replaced"
    );
    Ok((changes, outgrown))
}

/// Writes `species` as a fresh document and makes it the territory's list
/// in place of `current`; returns the territory's list after. The new
/// document is written before the move, so the list named is never one half
/// written. If another import moved the list first, `species` (this import,
/// the later one) is written into the list it moved to.
async fn move_to_fresh(
    pool: &PgPool,
    sync: &SyncCore,
    current: DocumentId,
    territory: Uuid,
    species: Arc<Vec<Species>>,
    by: Option<Delivery>,
) -> Result<DocumentId, String> {
    let storage = |error: sqlx::Error| format!("moving the species list: {error}");
    let fresh = DocumentId::from_bytes(*Uuid::new_v4().as_bytes());
    sqlx::query(
        "INSERT INTO documents (doc_id, territory_id, kind) \
         VALUES ($1, $2, 'species_list_inactive')",
    )
    .bind(fresh.to_string())
    .bind(territory)
    .execute(pool)
    .await
    .map_err(storage)?;
    write_list(
        sync,
        fresh,
        territory,
        species.clone(),
        by.clone(),
        u64::MAX,
    )
    .await?;
    let mut tx = pool.begin().await.map_err(storage)?;
    let retired = sqlx::query(
        "UPDATE documents SET kind = 'species_list_inactive' \
         WHERE doc_id = $1 AND kind = 'species_list'",
    )
    .bind(current.to_string())
    .execute(&mut *tx)
    .await
    .map_err(storage)?
    .rows_affected();
    if retired == 0 {
        // Another import moved the list meanwhile; the fresh one stays aside.
        tx.rollback().await.map_err(storage)?;
        let moved_to = species_list_document(pool, territory)
            .await
            .map_err(storage)?;
        write_list(sync, moved_to, territory, species, by, u64::MAX).await?;
        return Ok(moved_to);
    }
    sqlx::query("UPDATE documents SET kind = 'species_list' WHERE doc_id = $1")
        .bind(fresh.to_string())
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
    tx.commit().await.map_err(storage)?;
    tracing::info!(%territory, from = %current, to = %fresh, "species list moved to a fresh document: its history outweighed it");
    Ok(fresh)
}
