//! The HTTP surface: one module per resource, each registering its routes in a
//! [`Routes`] merged here, so the list of routes reads top to bottom in one
//! place — and [`route_list`] returns exactly what the router serves, which the
//! authorisation test checks its table against, and the OpenAPI test the
//! document of [`openapi`].
//!
//! Every route except `/health`, `POST /api/auth/login`, `POST /api/enrol` and
//! `GET /api/openapi.json` authenticates its caller through
//! [`extractor::AuthUser`] and then checks the caller's role in the territory
//! concerned.
//!
//! Every answer that is not a success is an [`ApiError`], JSON, including a path
//! no route serves (404) and a method a path does not serve (405, with `Allow`),
//! which axum would otherwise answer with an empty body.

use std::collections::BTreeMap;

use axum::{
    extract::DefaultBodyLimit,
    handler::Handler,
    http::{HeaderMap, Method, Uri},
    routing::{MethodFilter, MethodRouter},
    Router,
};
use sqlx::PgPool;

use crate::sync::SyncCore;

/// `/api/accounts…`: creating, listing, disabling and enabling accounts (admin).
pub mod accounts;
/// `/api/territories/{id}/audit/…`, `…/records/{id}/audit|state`: the
/// régie's audit trail, its verification, a record's history and past
/// state; `crate::audit` does the work.
pub mod audit;
/// `GET /api/devices`, `POST /api/devices/{id}/revoke`: enrolled phones, and
/// cutting off a lost one.
pub mod devices;
/// `POST /api/invitations`, `POST /api/enrol`: enrolling a phone with a
/// single-use code instead of a password typed in the field.
pub mod enrolment;
/// `GET /api/territories/{id}/events`: a territory's changes, live, as
/// server-sent events for the coordinators' web app (`crate::live`).
pub mod events;
/// `/api/territories/{id}/exports/…`, `…/export-settings`: the inventory as
/// a Darwin Core Archive, GeoJSON, CSV and SINP CSV, streamed;
/// `crate::export` writes them.
pub mod exports;
/// Authentication and the small checks handlers share, done once.
pub mod extractor;
/// `/health`: liveness and database reachability, for load balancers.
pub mod health;
/// `/api/sightings`, `/api/degradation-reports`, `/api/timesheet-entries`,
/// `/api/invalid-records`, `/api/documents/{id}`: the materialised inventory,
/// limited to the caller's territories.
pub mod inventory;
/// `GET /api/territories/{id}/notebooks`: the caller's own notebooks, for
/// their next device.
pub mod notebooks;
/// `GET /api/openapi.json`: the OpenAPI 3.1 document of these routes, from
/// the handlers' annotations; how to add a route to it is said there.
pub mod openapi;
/// `HEAD`/`PUT /api/photos/{sha256}` (resumable upload), `GET
/// /api/photos/{sha256}[/thumbnail]`: photos attached to records.
pub mod photos;
/// `/api/territories/{id}/reports/hours…`, `…/hourly-rates…`: the
/// volunteer-hours report and its rates; `crate::reports` does the work.
pub mod reports;
/// `/api/territories/{id}/review…`: coordinators' review of the inventory
/// (filters, decisions, conflicts, duplicates); `crate::review` does the work.
pub mod review;
/// `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/me`: password
/// sessions and who the caller is.
pub mod sessions;
/// `GET /api/territories/{id}/species-list`, `PUT` (import a TAXREF-style
/// CSV): the territory's species list; `crate::species` does the work.
pub mod species;
/// `/sync`: the automerge-repo WebSocket.
pub mod sync;
/// `/api/territories…`: territories, their members and their sites.
pub mod territories;
/// `/`, `/assets/…`: the coordinators' web app, built from `server/web/`.
pub mod web;

mod error;
pub use error::ApiError;

/// Largest JSON request body, in bytes; larger ones get 413 naming it. The
/// largest body a client sends is a territory's GeoJSON boundary: a commune's
/// outline at full detail is a few hundred kB. (axum's own default is the
/// same, but a limit an error message names is stated here.) Photos are not
/// JSON: their route reads its body under `--max-photo-bytes`.
pub const MAX_JSON_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub sync: SyncCore,
    /// Carries decisions to the volunteers' review documents.
    pub publisher: crate::review::publish::Publisher,
    /// Largest photo accepted, in bytes (`--max-photo-bytes`).
    pub max_photo_bytes: u64,
    /// The process's live updates (`GET /api/territories/{id}/events`).
    pub live: crate::live::Live,
    /// The server's address for people and phones (`--public-url`), without
    /// a trailing slash; None: the address each request came to.
    pub public_url: Option<String>,
    /// Cancelled when the process starts shutting down (`/ready` then says
    /// it is draining).
    pub draining: tokio_util::sync::CancellationToken,
    /// Where the review table and the exports read: a read replica when one
    /// is configured (`DATABASE_READ_URL`), else `pool`. A replica lags the
    /// primary by its replay delay (milliseconds, normally): a decision just
    /// taken may show a moment later there.
    pub read_pool: PgPool,
}

/// The server's address for links and QR codes: `--public-url` when given,
/// else the address the caller reached (behind a proxy, as the proxy says).
pub fn public_url(state: &AppState, headers: &HeaderMap) -> String {
    match &state.public_url {
        Some(url) => url.clone(),
        None => request_origin(headers),
    }
}

/// Routes as they are registered: the axum routing and the (method, path)
/// list come from the same calls, so the list cannot drift from what is served.
#[derive(Default)]
pub struct Routes {
    /// One method router per path: modules may serve different methods on one path.
    paths: BTreeMap<&'static str, MethodRouter<AppState>>,
    served: Vec<(Method, &'static str)>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Serves `handler` for `method` on `path`. Registering a method twice on
    /// one path panics at start-up, as axum does.
    pub fn route<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("axum cannot route {method} requests"));
        let on_path = self.paths.remove(path).unwrap_or_default();
        self.paths.insert(path, on_path.on(filter, handler));
        self.served.push((method, path));
        self
    }

    pub fn merge(mut self, other: Routes) -> Routes {
        for (path, routes) in other.paths {
            let on_path = self.paths.remove(path).unwrap_or_default();
            self.paths.insert(path, on_path.merge(routes));
        }
        self.served.extend(other.served);
        self
    }

    fn into_router(self) -> Router<AppState> {
        self.paths
            .into_iter()
            .fold(Router::new(), |router, (path, routes)| {
                router.route(path, routes)
            })
    }
}

/// Every route, resource by resource.
fn routes() -> Routes {
    Routes::new()
        .merge(health::routes())
        .merge(sessions::routes())
        .merge(enrolment::routes())
        .merge(devices::routes())
        .merge(territories::routes())
        .merge(accounts::routes())
        .merge(inventory::routes())
        .merge(review::routes())
        .merge(species::routes())
        .merge(audit::routes())
        .merge(reports::routes())
        .merge(exports::routes())
        .merge(notebooks::routes())
        .merge(events::routes())
        .merge(photos::routes())
        .merge(sync::routes())
        .merge(openapi::routes())
}

/// A path no route serves.
async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

/// A path served, but not for this method; axum adds the `Allow` header.
async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

/// Every (method, path) the router serves, in registration order.
pub fn route_list() -> Vec<(Method, &'static str)> {
    routes().served
}

pub fn router(state: AppState, web: &web::WebSettings) -> Router {
    routes()
        .into_router()
        // On the routes only, so each request is counted under its route's
        // pattern (unknown paths are not a route worth a series).
        .route_layer(axum::middleware::from_fn(crate::telemetry::track_http))
        // After the routes: it applies to the method routers registered so far.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_route)
        .with_state(state)
        .merge(web::router(web))
        .layer(axum::middleware::from_fn(extractor::refuse_forbidden_query))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY_BYTES))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<_>| {
                    tracing::info_span!(
                        "http",
                        method = %request.method(),
                        // The path only: the query may carry a token (`/sync?token=`).
                        path = %request.uri().path(),
                        request_id = %uuid::Uuid::new_v4(),
                    )
                },
            ),
        )
}

/// The server's address as the caller reached it (behind a proxy, as the
/// proxy says).
fn request_origin(headers: &HeaderMap) -> String {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let proto = text("x-forwarded-proto").unwrap_or("http");
    let host = text("x-forwarded-host")
        .or_else(|| text("host"))
        .unwrap_or("localhost");
    let proto = if proto == "https" { "https" } else { "http" };
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(*c))
        .collect();
    format!("{proto}://{host}")
}
