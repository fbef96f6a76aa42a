//! `/api/territories/{id}/exports/…`: a territory's inventory as a Darwin
//! Core Archive, GeoJSON, CSV and SINP-oriented CSV, and the settings they
//! follow (`…/export-settings`). `crate::export` writes them; here each is
//! streamed: the writer runs in its own task into one end of a pipe whose
//! other end is the response body. Régie auditors, coordinators and admins
//! export; coordinators (and admins) change the settings.

use std::io;

use axum::{
    body::Body,
    extract::{rejection::QueryRejection, Path, Query, State},
    http::{header, HeaderMap, HeaderValue, Method},
    response::{IntoResponse, Response},
    Json,
};
use futures::{future::BoxFuture, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncWriteExt, BufWriter, DuplexStream};
use tokio_util::io::ReaderStream;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
    extractor::{self, AuthUser, JsonBody},
    territories::require_territory,
    ApiError, AppState, Routes,
};
use crate::{
    auth::Role,
    export::{
        dwca, flat, rows,
        settings::{self, ExportSettings},
        ExportError, SightingScope, DEFAULT_STATUSES,
    },
};

const EXPORTERS: &[Role] = &[Role::Coordinator, Role::RegieAuditor];
const SETTERS: &[Role] = &[Role::Coordinator];
/// Bytes the pipe between an export's writer and its response holds.
const PIPE_BYTES: usize = 64 * 1024;
/// Exports one process streams at once: each holds a database connection
/// for as long as its client takes to read it, and the pool is shared with
/// the sync core.
static EXPORT_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);
/// What a client refused a slot is told to wait.
const RETRY_EXPORT_AFTER: std::time::Duration = std::time::Duration::from_secs(10);
const BUSY: &str =
    "Four exports are already being streamed by this server: retry after `Retry-After` seconds";

pub fn routes() -> Routes {
    Routes::new()
        .route(
            Method::GET,
            "/api/territories/{id}/exports/darwin-core-archive",
            darwin_core_archive,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/exports/sightings.geojson",
            sightings_geojson,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/exports/sightings.csv",
            sightings_csv,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/exports/sinp.csv",
            sinp_csv,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/exports/degradation-reports.geojson",
            degradation_geojson,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/exports/degradation-reports.csv",
            degradation_csv,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/export-settings",
            get_settings,
        )
        .route(
            Method::PUT,
            "/api/territories/{id}/export-settings",
            put_settings,
        )
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ScopeQuery {
    /// Comma-separated SINP validation statuses (0 to 6) to export; `1,2`
    /// (certain or probable) when absent. Duplicates are never exported.
    validation: Option<String>,
}

fn scope(
    territory: Uuid,
    query: Result<Query<ScopeQuery>, QueryRejection>,
) -> Result<SightingScope, ApiError> {
    let statuses = match extractor::query(query)?.validation {
        None => DEFAULT_STATUSES.to_vec(),
        Some(list) => {
            let mut statuses = Vec::new();
            for part in list.split(',') {
                match part.trim().parse::<i16>() {
                    Ok(status @ 0..=6) if !statuses.contains(&status) => statuses.push(status),
                    _ => {
                        return Err(ApiError::bad_request(
                            "validation",
                            format!("must list statuses 0 to 6, each once, separated by commas (got {list:?})"),
                        ))
                    }
                }
            }
            statuses
        }
    };
    Ok(SightingScope {
        territory,
        statuses,
    })
}

async fn check(state: &AppState, user: &AuthUser, territory: Uuid) -> Result<(), ApiError> {
    user.require_role(territory, EXPORTERS, "export the territory's inventory")?;
    require_territory(&state.pool, territory).await
}

type Produce = Box<
    dyn FnOnce(sqlx::PgPool, BufWriter<DuplexStream>) -> BoxFuture<'static, Result<(), ExportError>>
        + Send,
>;

/// The response of an export written by `produce`, streamed. A failure
/// after the first bytes cannot change the status any more: the body then
/// ends with an error, so the client sees a broken transfer, never a short
/// file that looks whole.
fn streamed(
    state: &AppState,
    territory: Uuid,
    what: &'static str,
    content_type: &'static str,
    file_name: String,
    produce: Produce,
) -> Result<Response, ApiError> {
    let slot = EXPORT_SLOTS
        .try_acquire()
        .map_err(|_| ApiError::TooManyRequests {
            message: "four exports are already being streamed by this server; retry shortly".into(),
            retry_after: RETRY_EXPORT_AFTER,
        })?;
    let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let (done, finished) = tokio::sync::oneshot::channel();
    // Long scans: on the read replica when there is one.
    let pool = state.read_pool.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let started = std::time::Instant::now();
        let result = produce(pool, BufWriter::new(writer)).await;
        match &result {
            Ok(()) => {
                tracing::info!(%territory, export = what, elapsed_ms = started.elapsed().as_millis() as u64, "export written")
            }
            Err(error) => {
                tracing::warn!(%territory, export = what, error = %format!("{error:#}"), "export failed")
            }
        }
        done.send(result).ok();
    });
    let tail = futures::stream::once(finished).filter_map(|result| async move {
        match result {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(Err(io::Error::other(format!("export failed: {error}")))),
            Err(_) => Some(Err(io::Error::other("export task ended"))),
        }
    });
    let body = Body::from_stream(ReaderStream::new(reader).chain(tail));
    let disposition = format!("attachment; filename=\"{file_name}\"");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

/// Finishes a flat export: everything buffered goes out.
async fn finish(mut out: BufWriter<DuplexStream>) -> Result<(), ExportError> {
    out.flush().await?;
    out.shutdown().await?;
    Ok(())
}

/// `GET …/exports/darwin-core-archive`.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/exports/darwin-core-archive",
    operation_id = "exportDarwinCoreArchive",
    tag = "exports",
    params(("id" = Uuid, Path, description = "The territory"), ScopeQuery),
    responses(
        (status = 200, description = "A Darwin Core Archive (zip: meta.xml, eml.xml, occurrence.txt, multimedia.txt) of the validated sightings, streamed; sensitive taxa generalised", content_type = "application/zip"),
        (status = 400, description = "`validation` is malformed (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's régie auditors and coordinators export it", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
        (status = 429, description = BUSY, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn darwin_core_archive(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    headers: HeaderMap,
    query: Result<Query<ScopeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    check(&state, &user, territory).await?;
    let scope = scope(territory, query)?;
    let export_settings = settings::get(&state.pool, territory).await?;
    let territory_name: String = sqlx::query_scalar("SELECT name FROM territories WHERE id = $1")
        .bind(territory)
        .fetch_one(&state.pool)
        .await?;
    let base_url = super::public_url(&state, &headers);
    streamed(
        &state,
        territory,
        "darwin-core-archive",
        "application/zip",
        format!("fieldnotes-{territory}-dwca.zip"),
        Box::new(move |pool, out| {
            Box::pin(async move {
                let mut tx = rows::snapshot(&pool).await?;
                let publisher = dwca::Publisher {
                    territory_id: territory,
                    territory_name: &territory_name,
                    settings: &export_settings,
                    base_url: &base_url,
                };
                dwca::write(&mut tx, &scope, &publisher, out).await
            })
        }),
    )
}

macro_rules! flat_sighting_export {
    ($name:ident, $path:literal, $operation:literal, $writer:path, $content_type:literal, $file:literal, $description:literal) => {
        #[doc = concat!("`GET ", $path, "`.")]
        #[utoipa::path(
            get,
            path = $path,
            operation_id = $operation,
            tag = "exports",
            params(("id" = Uuid, Path, description = "The territory"), ScopeQuery),
            responses(
                (status = 200, description = $description, content_type = $content_type),
                (status = 400, description = "`validation` is malformed (named in `field`)", body = ApiError),
                (status = 401, description = UNAUTHENTICATED, body = ApiError),
                (status = 403, description = "Only the territory's régie auditors and coordinators export it", body = ApiError),
                (status = 404, description = "No such territory", body = ApiError),
                (status = 429, description = BUSY, body = ApiError),
            ),
            security(("bearer" = [])),
        )]
        async fn $name(
            State(state): State<AppState>,
            user: AuthUser,
            Path(territory): Path<Uuid>,
            query: Result<Query<ScopeQuery>, QueryRejection>,
        ) -> Result<Response, ApiError> {
            check(&state, &user, territory).await?;
            let scope = scope(territory, query)?;
            streamed(
                &state,
                territory,
                $operation,
                $content_type,
                format!(concat!("fieldnotes-{}-", $file), territory),
                Box::new(move |pool, mut out| {
                    Box::pin(async move {
                        let mut tx = rows::snapshot(&pool).await?;
                        $writer(&mut tx, &scope, &mut out).await?;
                        finish(out).await
                    })
                }),
            )
        }
    };
}

macro_rules! flat_degradation_export {
    ($name:ident, $path:literal, $operation:literal, $writer:path, $content_type:literal, $file:literal, $description:literal) => {
        #[doc = concat!("`GET ", $path, "`.")]
        #[utoipa::path(
            get,
            path = $path,
            operation_id = $operation,
            tag = "exports",
            params(("id" = Uuid, Path, description = "The territory")),
            responses(
                (status = 200, description = $description, content_type = $content_type),
                (status = 401, description = UNAUTHENTICATED, body = ApiError),
                (status = 403, description = "Only the territory's régie auditors and coordinators export it", body = ApiError),
                (status = 404, description = "No such territory", body = ApiError),
                (status = 429, description = BUSY, body = ApiError),
            ),
            security(("bearer" = [])),
        )]
        async fn $name(
            State(state): State<AppState>,
            user: AuthUser,
            Path(territory): Path<Uuid>,
        ) -> Result<Response, ApiError> {
            check(&state, &user, territory).await?;
            streamed(
                &state,
                territory,
                $operation,
                $content_type,
                format!(concat!("fieldnotes-{}-", $file), territory),
                Box::new(move |pool, mut out| {
                    Box::pin(async move {
                        let mut tx = rows::snapshot(&pool).await?;
                        $writer(&mut tx, territory, &mut out).await?;
                        finish(out).await
                    })
                }),
            )
        }
    };
}

flat_sighting_export!(
    sightings_geojson,
    "/api/territories/{id}/exports/sightings.geojson",
    "exportSightingsGeoJson",
    flat::sightings_geojson,
    "application/geo+json",
    "sightings.geojson",
    "The validated sightings as a GeoJSON FeatureCollection (WGS84), streamed; sensitive taxa generalised"
);
flat_sighting_export!(
    sightings_csv,
    "/api/territories/{id}/exports/sightings.csv",
    "exportSightingsCsv",
    flat::sightings_csv,
    "text/csv; charset=utf-8",
    "sightings.csv",
    "The validated sightings as CSV (comma-separated, header row), streamed; sensitive taxa generalised"
);
flat_sighting_export!(
    sinp_csv,
    "/api/territories/{id}/exports/sinp.csv",
    "exportSinpCsv",
    flat::sinp_csv,
    "text/csv; charset=utf-8",
    "sinp.csv",
    "The validated sightings for French SINP platforms (`;`-separated: cdNom, nomCite, dateDebut, dateFin, observateur, statutValidation, WGS84 and Lambert-93 coordinates, floutage), streamed"
);
flat_degradation_export!(
    degradation_geojson,
    "/api/territories/{id}/exports/degradation-reports.geojson",
    "exportDegradationReportsGeoJson",
    flat::degradation_geojson,
    "application/geo+json",
    "degradation-reports.geojson",
    "Every degradation report as a GeoJSON FeatureCollection (WGS84) with its follow-up status, streamed"
);
flat_degradation_export!(
    degradation_csv,
    "/api/territories/{id}/exports/degradation-reports.csv",
    "exportDegradationReportsCsv",
    flat::degradation_csv,
    "text/csv; charset=utf-8",
    "degradation-reports.csv",
    "Every degradation report as CSV with its follow-up status, streamed"
);

/// `GET …/export-settings`.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/export-settings",
    operation_id = "exportSettings",
    tag = "exports",
    params(("id" = Uuid, Path, description = "The territory")),
    responses(
        (status = 200, description = "The licence, contact and sensitive taxa the exports follow", body = ExportSettings),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's régie auditors and coordinators read them", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn get_settings(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
) -> Result<Json<ExportSettings>, ApiError> {
    check(&state, &user, territory).await?;
    Ok(Json(settings::get(&state.pool, territory).await?))
}

/// `PUT …/export-settings`: replaces them (the sensitive taxa list whole).
#[utoipa::path(
    put,
    path = "/api/territories/{id}/export-settings",
    operation_id = "exportSetSettings",
    tag = "exports",
    params(("id" = Uuid, Path, description = "The territory")),
    request_body = ExportSettings,
    responses(
        (status = 200, description = "The settings now", body = ExportSettings),
        (status = 400, description = "A value is not accepted (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators change them", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn put_settings(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    JsonBody(new): JsonBody<ExportSettings>,
) -> Result<Json<ExportSettings>, ApiError> {
    user.require_role(territory, SETTERS, "change the export settings")?;
    require_territory(&state.pool, territory).await?;
    new.validate().map_err(|invalid| ApiError::BadRequest {
        field: invalid.field,
        message: invalid.message,
    })?;
    settings::put(&state.pool, territory, &new, user.0.account_id).await?;
    Ok(Json(settings::get(&state.pool, territory).await?))
}
