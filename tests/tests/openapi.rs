//! The OpenAPI document (`GET /api/openapi.json`) describes exactly the
//! routes the router serves, says which need a credential and how each
//! fails, and the answers' JSON is what it documents. (The route table of
//! `http_authorization.rs` also checks each answer it gets against it.)

use std::collections::BTreeSet;

use fieldnotes_tests::{
    accounts, init_test_logging,
    openapi::{parameters_in, path_parameters, references, Spec, PUBLIC},
    ServerProcess, TestDatabase,
};
use serde_json::{json, Value};

/// Operations that answer no client error at all: they read nothing from
/// the request. They still document their 500.
const NO_CLIENT_ERROR: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/api/openapi.json"),
];

const API_ERROR: &str = "#/components/schemas/ApiError";

#[test]
fn the_document_is_openapi_3_1_and_describes_every_served_route_and_no_other() {
    let spec = Spec::built();
    let version = spec.document["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "openapi: {version:?}");
    assert_eq!(
        spec.document["info"]["version"],
        env!("CARGO_PKG_VERSION"),
        "the server's version"
    );

    // axum's `{id}` is OpenAPI's `{id}`: the paths compare as they are.
    let served: BTreeSet<(String, String)> = server::http::route_list()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_string(), path.to_string()))
        .collect();
    let documented: BTreeSet<(String, String)> = spec
        .operations()
        .into_iter()
        .map(|(method, path, _)| (method, path.to_string()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served but missing from the OpenAPI document (annotate the handler with \
         #[utoipa::path] and list it in server/src/http/openapi.rs): {undocumented:?}; \
         documented but not served: {not_served:?}"
    );
}

#[test]
fn every_operation_says_who_may_call_it_and_documents_its_errors_as_api_errors() {
    let spec = Spec::built();
    let mut faults = Vec::new();
    let mut operation_ids = BTreeSet::new();
    for (method, path, operation) in spec.operations() {
        let at = format!("{method} {path}");
        match operation["operationId"].as_str() {
            Some(id) if !operation_ids.insert(id.to_string()) => {
                faults.push(format!("{at}: operationId {id:?} is used twice"))
            }
            Some(_) => {}
            None => faults.push(format!("{at}: no operationId")),
        }

        let bearer = operation["security"]
            .as_array()
            .is_some_and(|alternatives| alternatives.contains(&json!({ "bearer": [] })));
        let public = PUBLIC.contains(&(method.as_str(), path));
        if public && !operation["security"].is_null() {
            faults.push(format!(
                "{at} is public, yet documents a security requirement"
            ));
        }
        if !public && !bearer {
            faults.push(format!(
                "{at} needs a credential, yet lacks the bearer security"
            ));
        }

        let responses = operation["responses"].as_object().expect("responses");
        let is_api_error = |status: &str| {
            responses.get(status).is_some_and(|response| {
                response.pointer("/content/application~1json/schema/$ref")
                    == Some(&json!(API_ERROR))
            })
        };
        if !public && !is_api_error("401") {
            faults.push(format!(
                "{at} needs a credential, yet documents no 401 ApiError"
            ));
        }
        if !is_api_error("500") {
            faults.push(format!("{at} documents no 500 ApiError"));
        }
        let client_errors: Vec<&String> = responses
            .keys()
            .filter(|status| status.starts_with('4') && is_api_error(status))
            .collect();
        if client_errors.is_empty() && !NO_CLIENT_ERROR.contains(&(method.as_str(), path)) {
            faults.push(format!(
                "{at} documents no 4xx response with the ApiError schema"
            ));
        }
        // Every error that has a body has this one (HEAD's, and the 404 of an
        // upload not held, have none).
        for (status, response) in responses {
            let error = status.parse::<u16>().is_ok_and(|status| status >= 400);
            if error && response.get("content").is_some() && !is_api_error(status) {
                faults.push(format!("{at}: its {status} has a body other than ApiError"));
            }
        }

        let mut in_template = path_parameters(path);
        let mut declared = parameters_in(operation, "path");
        in_template.sort();
        declared.sort();
        if in_template != declared {
            faults.push(format!(
                "{at}: path parameters {declared:?} documented, {in_template:?} in the path"
            ));
        }
    }
    for reference in references(&spec.document) {
        if spec.resolve(&reference).is_none() {
            faults.push(format!("{reference} does not resolve"));
        }
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_serves_the_document_to_anyone() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let response = reqwest::get(server.http_url("/api/openapi.json")).await?;
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/json");
    let served: Value = response.json().await?;
    assert_eq!(
        served,
        Spec::built().document,
        "the running server serves the document this build makes"
    );
    Ok(())
}

/// Every list holds a row with everything a row can carry (warnings,
/// conflicts, a status history, receipts), and each answer matches its
/// documented schema, with no field the schema does not name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_with_full_rows_match_their_documented_schemas() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let spec = Spec::built();
    let (a, document) = (f.territory_a, f.document_a.clone());
    let author = f.volunteer.account_id;
    let device = f.volunteer.device_id.expect("a device");

    // Outside the territory (a square from 45.77, 4.83), and dated in the future.
    let conflicts = json!([{ "field": "individualCount", "winner": 2, "values": [2, 3] }]);
    sqlx::query(
        "INSERT INTO sightings (id, territory_id, doc_id, occurrence_id, scientific_name, \
           taxon_id, vernacular_name, event_date, geom, coordinate_uncertainty_m, \
           individual_count, occurrence_status, basis_of_record, recorded_by, site, notes, \
           photos, author_id, device_id, created_at, modified_at, conflicts) \
         VALUES (gen_random_uuid(), $1, $2, 'urn:uuid:' || gen_random_uuid(), 'Parus major', \
           2878, 'Great tit', now() + interval '2 days', ST_SetSRID(ST_MakePoint(4.9, 45.8), 4326), \
           10, 2, 'present', 'HumanObservation', 'Volunteer A', 'Mare', 'in the plane tree', \
           ARRAY[repeat('a', 64)], $3, 'device-' || $4, now(), now(), $5)",
    )
    .bind(a)
    .bind(&document)
    .bind(author)
    .bind(device.to_string())
    .bind(&conflicts)
    .execute(&pool)
    .await?;
    let report: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO degradation_reports (id, territory_id, doc_id, category, category_detail, \
           observed_at, geom, coordinate_uncertainty_m, description, photos, site, status, \
           status_reason, author_id, device_id, created_at, modified_at, conflicts) \
         VALUES (gen_random_uuid(), $1, $2, 'other', 'tyres in the pond', now() + interval '2 days', \
           ST_SetSRID(ST_MakePoint(4.9, 45.8), 4326), 12, 'builders'' rubble', '{}', 'Mare', \
           'in_progress', 'the régie is told', $3, 'device-' || $4, now(), now(), $5) \
         RETURNING id",
    )
    .bind(a)
    .bind(&document)
    .bind(author)
    .bind(device.to_string())
    .bind(&conflicts)
    .fetch_one(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO degradation_status_history (report_id, seq, territory_id, status, reason, \
           changed_by, changed_at) \
         VALUES ($1, 1, $2, 'received', NULL, NULL, now()), \
                ($1, 2, $2, 'in_progress', 'the régie is told', $3, now())",
    )
    .bind(report)
    .bind(a)
    .bind(f.coordinator.account_id)
    .execute(&pool)
    .await?;
    // Two entries of one day adding up to more than 24 hours.
    for (started, minutes) in [("08:00", 900), ("09:00", 600)] {
        sqlx::query(
            "INSERT INTO timesheet_entries (id, territory_id, doc_id, volunteer_id, work_date, \
               started_at, ended_at, duration_minutes, activity, site, notes, approval_status, \
               approved_by, approved_at, author_id, device_id, created_at, modified_at, conflicts) \
             VALUES (gen_random_uuid(), $1, $2, $3, current_date, \
               current_date + $4::time, current_date + $4::time + make_interval(mins => $5), $5, \
               'clean_up', 'Mare', 'litter pick', 'approved', $6, now(), $3, 'device-' || $7, \
               now(), now(), $8)",
        )
        .bind(a)
        .bind(&document)
        .bind(author)
        .bind(started)
        .bind(minutes)
        .bind(f.coordinator.account_id)
        .bind(device.to_string())
        .bind(&conflicts)
        .execute(&pool)
        .await?;
    }
    accounts::seed_invalid_record(&pool, &document, a).await?;
    sqlx::query(
        "UPDATE documents SET problems = '[{\"field\": \"territoryId\", \"reason\": \"moved\"}]' \
         WHERE doc_id = $1",
    )
    .bind(&document)
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO change_receipts (doc_id, change_hash, account_id, device_id) \
         VALUES ($1, repeat('c', 64), $2, $3)",
    )
    .bind(&document)
    .bind(author)
    .bind(device)
    .execute(&pool)
    .await?;

    let admin = Some(f.admin.token.as_str());
    let territory = format!("/api/territories/{a}");
    let sites = format!("/api/territories/{a}/sites");
    let members = format!("/api/territories/{a}/members");
    let document_path = format!("/api/documents/{document}");
    let mut faults = Vec::new();
    for (routed, path, token, rows_at) in [
        ("/health", "/health", None, None),
        ("/ready", "/ready", None, None),
        ("/api/me", "/api/me", Some(f.volunteer.token.as_str()), None),
        (
            "/api/me",
            "/api/me",
            Some(f.coordinator.token.as_str()),
            None,
        ),
        ("/api/devices", "/api/devices", admin, Some("")),
        ("/api/territories", "/api/territories", admin, Some("")),
        ("/api/territories/{id}", territory.as_str(), admin, None),
        (
            "/api/territories/{id}/sites",
            sites.as_str(),
            admin,
            Some(""),
        ),
        (
            "/api/territories/{id}/members",
            members.as_str(),
            admin,
            Some(""),
        ),
        (
            "/api/accounts",
            "/api/accounts?q=coordinator%20a",
            admin,
            Some("/0/memberships"),
        ),
        (
            "/api/sightings",
            "/api/sightings",
            admin,
            Some("/0/warnings"),
        ),
        (
            "/api/degradation-reports",
            "/api/degradation-reports",
            admin,
            Some("/0/statusHistory"),
        ),
        (
            "/api/timesheet-entries",
            "/api/timesheet-entries",
            admin,
            Some("/0/warnings"),
        ),
        (
            "/api/invalid-records",
            "/api/invalid-records",
            admin,
            Some("/0/problems"),
        ),
        (
            "/api/documents/{doc_id}",
            document_path.as_str(),
            admin,
            Some("/receipts"),
        ),
    ] {
        let (status, body) = server.api(token).get(path).await?;
        if status != 200 {
            faults.push(format!("GET {path}: {status} {body}"));
            continue;
        }
        // The rows (or nested lists) exist, so their schemas are exercised.
        if let Some(pointer) = rows_at {
            let listed = body.pointer(pointer).and_then(Value::as_array);
            if listed.is_none_or(Vec::is_empty) {
                faults.push(format!("GET {path}: nothing at {pointer:?} in {body}"));
            }
        }
        if let Err(fault) = spec.check_answer("GET", routed, status, &body) {
            faults.push(fault);
        }
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
    Ok(())
}
