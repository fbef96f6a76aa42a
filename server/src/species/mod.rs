//! A territory's species list, without HTTP: the routes in `http::species`
//! parse requests and call these.
//!
//! The list lives in one automerge document per territory (`sync::species`),
//! so the phones sync it like their notebooks and an update reaches them as
//! the changes they lack, not as a new download. It is written only here,
//! through the sync core (a [`ServerWrite`]: stored, then pushed to the
//! phones holding it), and only what differs from what it holds is written.
//! - [`import`]: reading a TAXREF-style CSV into species, all or nothing.

pub mod import;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sync::{
    protocol::DocumentId,
    species::{put_species_list, species_count, ListChanges, Species},
};
use uuid::Uuid;

use crate::{
    materialise::load_committed,
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

/// Makes the list of `territory` hold exactly `species` (unique keys, as
/// [`import::parse_species_list`] gives them), on behalf of `by` (the
/// change's receipt names them; None: the server's own write). Returns what
/// changed.
pub async fn replace(
    sync: &SyncCore,
    doc_id: DocumentId,
    territory: Uuid,
    species: Vec<Species>,
    by: Option<Delivery>,
) -> Result<ListChanges, String> {
    // The edit runs again if another process committed first: the counts
    // are those of the run that was stored.
    let changes = Arc::new(Mutex::new(ListChanges::default()));
    let counted = changes.clone();
    let write = ServerWrite {
        edit: Box::new(move |doc| {
            let written = put_species_list(doc, territory, &species)
                .map_err(|error| Box::new(error) as EditError)?;
            *counted.lock().expect("species counts poisoned") = written;
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
    let changes = *changes.lock().expect("species counts poisoned");
    tracing::info!(
        %territory,
        doc_id = %doc_id,
        added = changes.added,
        changed = changes.changed,
        removed = changes.removed,
        "species list replaced"
    );
    Ok(changes)
}
