//! The territory's species list: every member learns its document id (their
//! phone syncs it for offline autocomplete); coordinators replace it by
//! importing a TAXREF-style CSV. `crate::species` does the work.

use axum::{
    body::Body,
    extract::State,
    http::{
        header::{CONTENT_LENGTH, CONTENT_TYPE},
        HeaderMap, Method,
    },
    Json,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    error::UNAUTHENTICATED,
    extractor::{AuthUser, IdPath},
    territories::require_territory,
    ApiError, AppState, Routes,
};
use crate::{
    auth::Role,
    inventory::materialise::load_committed,
    species::{
        import::{parse_species_list, read_species_list, ImportError, LineProblem, MAX_SPECIES},
        replace, species_list_document, summary,
    },
    sync::access::Delivery,
};

/// Largest species list file, in bytes. TAXREF's full national file (every
/// name of every kingdom) is about 100 MB; a territory's extract of a few
/// thousand taxa is well under 1 MB, and [`MAX_SPECIES`] lines of TAXREF's
/// columns fit. Bodies of other routes stay under the 2 MiB JSON limit.
pub const MAX_SPECIES_LIST_BYTES: usize = 16 * 1024 * 1024;

const IMPORTERS: &[Role] = &[Role::Coordinator];

pub fn routes() -> Routes {
    Routes::new()
        .route(
            Method::GET,
            "/api/territories/{id}/species-list",
            species_list,
        )
        .route(
            Method::PUT,
            "/api/territories/{id}/species-list",
            import_species_list,
        )
        .route(
            Method::POST,
            "/api/territories/{id}/species-list/preview",
            preview_species_list,
        )
}

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> ApiError {
        ApiError::BadRequest {
            field: error.field,
            message: error.message,
        }
    }
}

/// The territory's species list document.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SpeciesList {
    /// The automerge-repo document id to sync (`automerge:<id>`).
    document_id: String,
    /// Species it holds.
    species: usize,
    /// When it was last written (the first ask writes an empty list, so
    /// phones can sync it before any import).
    updated_at: Option<DateTime<Utc>>,
}

/// What an import changed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Imported {
    /// Species the list did not hold.
    added: usize,
    /// Species whose name, vernacular name or rank changed.
    changed: usize,
    /// Species the new list no longer holds.
    removed: usize,
    /// Species the list holds now.
    species: usize,
    document_id: String,
}

/// `GET /api/territories/{id}/species-list`: the id of the territory's
/// species list, which every member's phone syncs.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/species-list",
    operation_id = "speciesList",
    tag = "species",
    params(("id" = Uuid, Path, description = "The territory")),
    responses(
        (status = 200, description = "The territory's species list (its document allocated on first use)", body = SpeciesList),
        (status = 400, description = "`id` is not a UUID", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in the territory", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn species_list(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
) -> Result<Json<SpeciesList>, ApiError> {
    user.require_member(territory)?;
    require_territory(&state.pool, territory).await?;
    let doc_id = species_list_document(&state.pool, territory).await?;
    let (mut species, mut updated_at) = summary(&state.pool, &doc_id).await?;
    if updated_at.is_none() {
        // An empty list, so a phone enrolled before the first import syncs
        // a document (a peer asking for one never stored is told it is
        // unavailable) and later receives the import as changes.
        replace(
            &state.pool,
            &state.sync,
            doc_id,
            territory,
            Vec::new(),
            None,
        )
        .await
        .map_err(ApiError::Internal)?;
        (species, updated_at) = summary(&state.pool, &doc_id).await?;
    }
    Ok(Json(SpeciesList {
        document_id: doc_id.to_string(),
        species,
        updated_at,
    }))
}

/// `PUT /api/territories/{id}/species-list`: replaces the territory's list
/// with the one in the body, writing only what differs, so the phones
/// receive only that.
#[utoipa::path(
    put,
    path = "/api/territories/{id}/species-list",
    operation_id = "importSpeciesList",
    tag = "species",
    params(("id" = Uuid, Path, description = "The territory")),
    request_body(
        content = String,
        content_type = "text/csv",
        description = "A TAXREF-style list, UTF-8 (a byte-order mark is tolerated), header row \
            first. Columns by name, any case: `CD_NOM` (or `taxonId`), `LB_NOM` (or \
            `scientificName`, required), `NOM_VERN` (or `vernacularName`), `RANG` (or `rank`); \
            other columns are ignored. Separated by tabs (TAXREF's files; no quoting), `;` or `,` \
            (RFC 4180 quotes), whichever the header line uses most. One line per taxon: \
            at most 200 000, and 16 MiB. `text/tab-separated-values` and `text/plain` are \
            accepted too.",
    ),
    responses(
        (status = 200, description = "The list now holds exactly the file's species", body = Imported),
        (status = 400, description = "The file cannot be read: `field` names the column (or `body`), the message its line (`line 12: CD_NOM \"abc\" is not an integer`); nothing was changed", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators, and admins, import a list", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
        (status = 413, description = "The body is above 16 MiB (`field`: `Content-Length`, or `body`)", body = ApiError),
        (status = 415, description = "The body is not sent as CSV text (`field`: `Content-Type`)", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn import_species_list(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Imported>, ApiError> {
    user.require_role(territory, IMPORTERS, "import the species list")?;
    require_territory(&state.pool, territory).await?;
    check_content_type(&headers)?;
    let bytes = read_limited(&headers, body).await?;
    // Read whole before anything is written: a bad file changes nothing.
    let species = parse_species_list(&bytes)?;
    let doc_id = species_list_document(&state.pool, territory).await?;
    let total = species.len();
    let replaced = replace(
        &state.pool,
        &state.sync,
        doc_id,
        territory,
        species,
        Some(Delivery::of(&user.0)),
    )
    .await
    .map_err(ApiError::Internal)?;
    let changes = replaced.changes;
    Ok(Json(Imported {
        added: changes.added,
        changed: changes.changed,
        removed: changes.removed,
        species: total,
        document_id: replaced.document_id.to_string(),
    }))
}

/// What an import would change, by scientific name.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Preview {
    /// Species the list does not hold yet, sorted.
    added: Vec<String>,
    /// Species whose name, vernacular name or rank would change.
    changed: Vec<String>,
    /// Species the file no longer holds.
    removed: Vec<String>,
    /// Species the list would hold.
    species: usize,
    /// Rows that cannot be imported, by line (the first 100): while there
    /// are any, `PUT …/species-list` refuses the file, and the counts above
    /// are those of its readable rows.
    problems: Vec<LineProblem>,
    /// Problems beyond those listed.
    unlisted_problems: usize,
}

/// `POST /api/territories/{id}/species-list/preview`: what importing the
/// file would add, change and remove, and every row it cannot import,
/// without writing anything, so a coordinator checks an import (and fixes
/// the file at once, not one line per try) before applying it.
#[utoipa::path(
    post,
    path = "/api/territories/{id}/species-list/preview",
    operation_id = "previewSpeciesList",
    tag = "species",
    params(("id" = Uuid, Path, description = "The territory")),
    request_body(
        content = String,
        content_type = "text/csv",
        description = "The same file as `PUT …/species-list` takes.",
    ),
    responses(
        (status = 200, description = "What the import would change and the rows it cannot import; nothing was written", body = Preview),
        (status = 400, description = "The file cannot be read at all (its encoding, its header, more than the most species a list holds): `field` names the column (or `body`), the message its line", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators, and admins, import a list", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
        (status = 413, description = "The body is above 16 MiB (`field`: `Content-Length`, or `body`)", body = ApiError),
        (status = 415, description = "The body is not sent as CSV text (`field`: `Content-Type`)", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn preview_species_list(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(territory): IdPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Preview>, ApiError> {
    user.require_role(territory, IMPORTERS, "import the species list")?;
    require_territory(&state.pool, territory).await?;
    check_content_type(&headers)?;
    let bytes = read_limited(&headers, body).await?;
    let read = read_species_list(&bytes)?;
    let doc_id = species_list_document(&state.pool, territory).await?;
    let mut conn = state.pool.acquire().await?;
    let committed = load_committed(&mut conn, &doc_id.to_string()).await?;
    let preview = sync::documents::species::preview_species_list(&committed.doc, &read.species);
    Ok(Json(Preview {
        added: preview.added,
        changed: preview.changed,
        removed: preview.removed,
        species: read.species.len(),
        problems: read.problems,
        unlisted_problems: read.unlisted_problems,
    }))
}

/// CSV is text: `text/csv`, `text/tab-separated-values` or `text/plain`,
/// UTF-8 if a charset is given. A form or JSON body is a client mistake
/// (`curl --data-binary` sends a form unless told otherwise).
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let value = value.to_str().unwrap_or_default().to_ascii_lowercase();
    let mut parts = value.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    let charset = parts.find_map(|p| p.strip_prefix("charset="));
    let unsupported = |message: String| ApiError::UnsupportedMediaType {
        field: "Content-Type".into(),
        message,
    };
    if !matches!(
        media,
        "text/csv" | "text/tab-separated-values" | "text/plain"
    ) {
        return Err(unsupported(format!(
            "{media:?}: send the list as text/csv (with curl: -H 'Content-Type: text/csv' --data-binary @list.csv)"
        )));
    }
    match charset.map(|c| c.trim_matches('"')) {
        None | Some("utf-8" | "utf8") => Ok(()),
        Some(other) => Err(unsupported(format!(
            "charset {other:?}: the list must be UTF-8"
        ))),
    }
}

/// The body, refused with 413 past [`MAX_SPECIES_LIST_BYTES`]: before a byte
/// is read when `Content-Length` says so, else once the limit is passed.
async fn read_limited(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let too_large = |field: &str, what: String| ApiError::TooLarge {
        field: field.into(),
        message: format!(
            "{what}; a species list may be at most {MAX_SPECIES_LIST_BYTES} bytes \
             ({MAX_SPECIES} species): import the territory's extract, not all of TAXREF"
        ),
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&n| n > MAX_SPECIES_LIST_BYTES as u64) {
        return Err(too_large(
            "Content-Length",
            format!("the body is {length} bytes"),
        ));
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("body", format!("was cut: {e}")))?;
        if bytes.len() + chunk.len() > MAX_SPECIES_LIST_BYTES {
            return Err(too_large("body", "the body is longer".into()));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
