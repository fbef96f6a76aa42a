//! `GET /api/openapi.json` (public): the OpenAPI 3.1 document of the HTTP
//! API, generated with `utoipa` from the handlers' own annotations, so it is
//! written next to the code it describes.
//!
//! # Adding a route to the document
//!
//! 1. Annotate the handler with `#[utoipa::path(...)]`: the method and the
//!    path exactly as its module's `routes()` registers them, an
//!    `operation_id` unique in the API, its `params`, its `request_body`, and
//!    every status it answers in `responses` — each error with
//!    `body = ApiError` (`crate::http::ApiError`), [`UNAUTHENTICATED`](super::error::UNAUTHENTICATED) as the
//!    401's description and [`BODY_TOO_LARGE`](super::error::BODY_TOO_LARGE) as the 413's of a JSON body.
//!    Unless the route is public, add `security(("bearer" = []))`. Request
//!    and response types derive `utoipa::ToSchema`: best the row type a
//!    query builds (`crate::inventory::rows`); JSON still built by SQL is
//!    described by a struct mirroring it, marked documentation only, as
//!    `Territory` is in `territories.rs`.
//! 2. List the handler in `paths(...)` of [`ApiDoc`] below, in the order of
//!    `routes()` in `mod.rs`, as `module::handler`: the module's name becomes
//!    the operation's tag (for a module outside `http`, `use` it here, e.g.
//!    `use crate::review;` and `review::handler`), with a line in `tags(...)`.
//!
//! `tests/tests/openapi.rs` fails while a served route is missing from the
//! document (or the document has one that is not served), an operation that
//! is not public lacks the bearer security, or an operation documents no
//! error; the route table of `tests/tests/http_authorization.rs` checks that
//! every status it meets, and its body, is as documented.
//!
//! Every operation may also answer 500 (a database or internal error, an
//! `ApiError`): [`InternalError`] adds that response to each, so the
//! annotations need not.

use std::sync::OnceLock;

use axum::{
    http::{header, Method},
    response::IntoResponse,
};
use utoipa::{
    openapi::{
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
        ContentBuilder, Ref, RefOr, ResponseBuilder,
    },
    Modify, OpenApi, ToSchema,
};

use super::{
    accounts, audit, devices, enrolment, events, exports, health, inventory, notebooks, photos,
    reports, review, sessions, species, sync, territories, ApiError, Routes,
};

pub fn routes() -> Routes {
    Routes::new().route(Method::GET, "/api/openapi.json", document)
}

/// The document, built once.
pub fn openapi_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serialises")
    })
}

/// This document
///
/// Public.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "openapi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object),
    ),
)]
async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

/// The OpenAPI document of the HTTP API; `paths` lists every handler, in the
/// order of `routes()` in `mod.rs`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "fieldnotes",
        version = env!("CARGO_PKG_VERSION"),
        description = "HTTP API of the fieldnotes field survey service: accounts, territories and \
            enrolment, the materialised inventory (sightings, degradation reports, volunteer \
            hours), photos, and the automerge-repo sync WebSocket.\n\n\
            Every answer that is not a success is an `ApiError` (JSON), a path no route serves \
            (404) and a method a path does not serve (405, with `Allow`) included.",
        license(name = "AGPL-3.0-or-later", identifier = "AGPL-3.0-or-later"),
    ),
    paths(
        health::health,
        health::ready,
        sessions::login,
        sessions::logout,
        sessions::reset_password,
        sessions::me,
        sessions::my_data,
        sessions::change_password,
        sessions::sessions,
        sessions::end_session,
        enrolment::create_invitation,
        enrolment::create_invitation_batch,
        enrolment::revoke_invitation,
        enrolment::list_invitations,
        enrolment::enrol,
        devices::list,
        devices::revoke,
        territories::list,
        territories::create,
        territories::show,
        territories::update,
        territories::members,
        territories::add_member,
        territories::remove_member,
        territories::sites,
        territories::create_site,
        territories::update_site,
        accounts::list,
        accounts::create,
        accounts::disable,
        accounts::enable,
        accounts::erase,
        accounts::issue_password_reset,
        inventory::sightings,
        inventory::degradation_reports,
        inventory::timesheet_entries,
        inventory::invalid_records,
        inventory::document,
        review::records,
        review::counts,
        review::record,
        review::record_history,
        review::decide,
        review::conflict_queue,
        review::resolve_conflict,
        review::duplicate_proposals,
        review::merge_duplicates,
        review::dismiss_duplicates,
        review::get_settings,
        review::put_settings,
        review::own_review_document,
        species::species_list,
        species::import_species_list,
        species::preview_species_list,
        audit::entries,
        audit::verification,
        audit::record_audit,
        audit::record_state,
        reports::list,
        reports::issue,
        reports::fetch,
        reports::list_rates,
        reports::set_rate,
        exports::darwin_core_archive,
        exports::sightings_geojson,
        exports::sightings_csv,
        exports::sinp_csv,
        exports::degradation_geojson,
        exports::degradation_csv,
        exports::get_settings,
        exports::put_settings,
        notebooks::own_notebooks,
        events::events,
        photos::upload_status,
        photos::upload,
        photos::photo,
        photos::thumbnail,
        sync::upgrade,
        document,
    ),
    components(schemas(ApiError)),
    modifiers(&SecuritySchemes, &InternalError),
    tags(
        (name = "health", description = "Liveness and readiness, for load balancers"),
        (name = "sessions", description = "Password sessions, and who the caller is"),
        (name = "enrolment", description = "Enrolling phones with single-use invitation codes"),
        (name = "devices", description = "Enrolled phones, and revoking a lost one"),
        (name = "territories", description = "Territories, their members and their sites"),
        (name = "accounts", description = "Accounts: creating those of the people who log in with a password, finding, disabling and enabling them"),
        (name = "inventory", description = "The materialised inventory, limited to the caller's territories"),
        (name = "review", description = "Coordinators' review: the review table, decisions, conflicts, duplicates"),
        (name = "species", description = "The territory's species list: its document for the phones, and importing a TAXREF-style CSV"),
        (name = "audit", description = "The régie's audit trail: its entries and their hash-chain verification, a record's attributed history and its state at a past date"),
        (name = "reports", description = "The volunteer-hours report, issued once and checked by its hash; the hourly rates it values hours at"),
        (name = "exports", description = "The inventory as a Darwin Core Archive, GeoJSON, CSV and SINP CSV, streamed; the licence, contact and sensitive taxa they follow"),
        (name = "notebooks", description = "The caller's own notebooks, for their next device"),
        (name = "events", description = "A territory's changes, live (server-sent events)"),
        (name = "photos", description = "Resumable photo upload, photos and thumbnails"),
        (name = "sync", description = "The automerge-repo WebSocket"),
        (name = "openapi", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// Registers the schemes the operations' `security` names: `bearer`, a
/// session token or a device credential in `Authorization: Bearer`, and, for
/// `/sync` only, `token`, the same credential as `?token=`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <token>`: a session token (`fns_…`, from \
                         `POST /api/auth/login`) or a phone's device credential (`fnd_…`, from \
                         `POST /api/enrol`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The same credential as `?token=`, for WebSocket clients that cannot set \
                 headers (browsers); `/sync` only",
            ))),
        );
    }
}

/// Adds to every operation its 500: a database or internal error, logged by
/// the server, answered as an `ApiError` that says no more.
struct InternalError;

impl Modify for InternalError {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let response = ResponseBuilder::new()
            .description("A database or internal error; it has been logged")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(Ref::from_schema_name(ApiError::name()))))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                operation
                    .responses
                    .responses
                    .entry("500".to_string())
                    .or_insert_with(|| response.clone().into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick check (`tests/tests/openapi.rs` checks the rest).
    #[test]
    fn every_served_route_is_in_the_document() {
        let document: serde_json::Value = serde_json::from_str(openapi_json()).unwrap();
        assert!(document["openapi"]
            .as_str()
            .is_some_and(|version| version.starts_with("3.1")));
        for (method, path) in super::super::route_list() {
            assert!(
                document["paths"][path][method.as_str().to_lowercase()].is_object(),
                "{method} {path} is served but not in the OpenAPI document: see the top of \
                 server/src/http/openapi.rs"
            );
        }
    }
}
