//! The route table is the spec: for every route the router serves, what each
//! kind of caller gets — anonymous, volunteer, coordinator, régie auditor,
//! admin — acting in their own territory (A) and in another (B). Allowed means
//! a 2xx; refused means 401 (no valid credential) or 403 (not their right).
//! The table must list exactly the routes of `server::http::route_list()`,
//! and every answer met must be one the OpenAPI document describes (its
//! status documented, its JSON body matching the documented schema).
//!
//! Beyond the table: what the allowed reads return is limited to the caller's
//! territories, and a volunteer's drafts are theirs alone.

use std::collections::BTreeSet;

use fieldnotes_tests::{
    accounts::{self, Actor, Fixture},
    init_test_logging,
    openapi::Spec,
    ServerProcess, TestDatabase,
};
use mobile_bridge::photos::{process_photo, PhotoSettings};
use reqwest::Method;
use serde_json::{json, Value};
use server::auth::{admin, Role};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 2xx (101 for the WebSocket).
    Allowed,
    /// 401: no credential, or not a valid one.
    Unauthenticated,
    /// 403: a valid credential without the right.
    Forbidden,
}
use Outcome::{Allowed as A, Forbidden as F, Unauthenticated as U};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Volunteer,
    Coordinator,
    Auditor,
    Admin,
}
/// The order of the columns of the table.
const WHO: [Who; 5] = [
    Who::Anonymous,
    Who::Volunteer,
    Who::Coordinator,
    Who::Auditor,
    Who::Admin,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Territory {
    /// A: where the volunteer, coordinator and auditor hold their roles.
    Own,
    /// B: where none of them does (the admin's rights are global).
    Other,
}

struct Row {
    method: &'static str,
    path: &'static str,
    own: [Outcome; 5],
    other: [Outcome; 5],
}

const fn row(
    method: &'static str,
    path: &'static str,
    own: [Outcome; 5],
    other: [Outcome; 5],
) -> Row {
    Row {
        method,
        path,
        own,
        other,
    }
}

#[rustfmt::skip]
const TABLE: &[Row] = &[
    //                                                   in territory A (own)      in territory B (other)
    //   method  path                                    anon vol coord aud adm    anon vol coord aud adm
    row("GET",  "/health",                               [A,  A,  A,  A,  A],     [A,  A,  A,  A,  A]),
    row("GET",  "/ready",                                [A,  A,  A,  A,  A],     [A,  A,  A,  A,  A]),
    row("POST", "/api/auth/login",                       [A,  A,  A,  A,  A],     [A,  A,  A,  A,  A]),
    // A device credential is not a session: a phone is revoked, not logged out.
    row("POST", "/api/auth/logout",                      [U,  F,  A,  A,  A],     [U,  F,  A,  A,  A]),
    // Public: the reset code is the secret.
    row("POST", "/api/auth/password-reset",              [A,  A,  A,  A,  A],     [A,  A,  A,  A,  A]),
    row("POST", "/api/password-resets",                  [U,  F,  F,  F,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/me",                               [U,  A,  A,  A,  A],     [U,  A,  A,  A,  A]),
    row("GET",  "/api/me/data",                          [U,  A,  A,  A,  A],     [U,  A,  A,  A,  A]),
    // Passwords and web sessions are a session's business, not a phone's.
    row("PUT",  "/api/me/password",                      [U,  F,  A,  A,  A],     [U,  F,  A,  A,  A]),
    row("GET",  "/api/me/sessions",                      [U,  F,  A,  A,  A],     [U,  F,  A,  A,  A]),
    row("DELETE", "/api/me/sessions/{id}",               [U,  F,  A,  A,  A],     [U,  F,  A,  A,  A]),
    // Public: the invitation code is the secret.
    row("POST", "/api/enrol",                            [A,  A,  A,  A,  A],     [A,  A,  A,  A,  A]),
    row("POST", "/api/invitations",                      [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    row("POST", "/api/invitations/batch",                [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    // Target: a pending invitation of the territory.
    row("POST", "/api/invitations/{id}/revoke",          [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/invitations",     [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    // Everyone lists the devices they may see (their own at least).
    row("GET",  "/api/devices",                          [U,  A,  A,  A,  A],     [U,  A,  A,  A,  A]),
    // Target: another volunteer's phone in the territory.
    row("POST", "/api/devices/{id}/revoke",              [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories",                      [U,  A,  A,  A,  A],     [U,  A,  A,  A,  A]),
    row("POST", "/api/territories",                      [U,  F,  F,  F,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}",                 [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    // Its coordinators set it up: name, description, boundary.
    row("PATCH", "/api/territories/{id}",                [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    // Who holds which role: for those who run or audit the territory.
    row("GET",  "/api/territories/{id}/members",         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    // Adding a volunteer; only an admin grants the other roles.
    row("POST", "/api/territories/{id}/members",         [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    // Target: a fresh volunteer's role; only an admin removes the other roles.
    row("DELETE", "/api/territories/{id}/members/{account_id}/{role}",
                                                         [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/sites",           [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("POST", "/api/territories/{id}/sites",           [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    // Target: a fresh site of the territory, renamed.
    row("PATCH", "/api/territories/{id}/sites/{site_id}", [U, F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/accounts",                         [U,  F,  F,  F,  A],     [U,  F,  F,  F,  A]),
    row("POST", "/api/accounts",                         [U,  F,  F,  F,  A],     [U,  F,  F,  F,  A]),
    // Target: a fresh account, not one of the callers.
    row("POST", "/api/accounts/{id}/disable",            [U,  F,  F,  F,  A],     [U,  F,  F,  F,  A]),
    row("POST", "/api/accounts/{id}/enable",             [U,  F,  F,  F,  A],     [U,  F,  F,  F,  A]),
    row("POST", "/api/accounts/{id}/erasure",            [U,  F,  F,  F,  A],     [U,  F,  F,  F,  A]),
    // `?territory=` A or B.
    row("GET",  "/api/sightings",                        [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/degradation-reports",              [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/timesheet-entries",                [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/invalid-records",                  [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    // The document in A is the volunteer's own notebook; the one in B is not.
    row("GET",  "/api/documents/{doc_id}",               [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    // The WebSocket handshake authenticates; what a peer may sync is decided per document.
    row("GET",  "/sync",                                 [U,  A,  A,  A,  A],     [U,  A,  A,  A,  A]),
    // Uploading a photo filed under the territory (`?territory=`): its
    // volunteers and coordinators; auditors write nothing. HEAD asks how much
    // of an upload the server holds.
    row("HEAD", "/api/photos/{sha256}",                  [U,  A,  A,  F,  A],     [U,  F,  F,  F,  A]),
    row("PUT",  "/api/photos/{sha256}",                  [U,  A,  A,  F,  A],     [U,  F,  F,  F,  A]),
    // A photo filed in the territory: any role there reads it.
    row("GET",  "/api/photos/{sha256}",                  [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/photos/{sha256}/thumbnail",        [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    // Public: the OpenAPI document of these routes.
    row("GET",  "/api/openapi.json",                     [A,  A,  A,  A,  A],     [A,  A,  A,  A,  A]),
    // The review: coordinators decide, régie auditors read all a coordinator
    // reads and decide nothing, volunteers neither.
    row("GET",  "/api/territories/{id}/review/records",  [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/review/counts",   [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/review/records/{record_id}",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/review/records/{record_id}/history",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("POST", "/api/territories/{id}/review/decisions", [U,  F,  A,  F,  A],    [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/review/conflicts", [U,  F,  A,  A,  A],    [U,  F,  F,  F,  A]),
    // A fresh conflicted record each time.
    row("POST", "/api/territories/{id}/review/conflicts/{record_id}/resolution",
                                                         [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/review/duplicates", [U, F,  A,  A,  A],    [U,  F,  F,  F,  A]),
    // A fresh pair each time.
    row("POST", "/api/territories/{id}/review/duplicates/merge",
                                                         [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    row("POST", "/api/territories/{id}/review/duplicates/dismiss",
                                                         [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/review/settings", [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("PUT",  "/api/territories/{id}/review/settings", [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    // Anyone's own review document, in a territory where they hold a role.
    row("GET",  "/api/territories/{id}/review-document", [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    // The species list: every member reads it (their phone syncs it); only
    // coordinators import one.
    row("GET",  "/api/territories/{id}/species-list",    [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("PUT",  "/api/territories/{id}/species-list",    [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    row("POST", "/api/territories/{id}/species-list/preview", [U, F, A, F, A],     [U,  F,  F,  F,  A]),
    // The audit trail: régie auditors and coordinators read it, nobody writes it.
    row("GET",  "/api/territories/{id}/audit/entries",   [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/audit/verification",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/records/{record_id}/audit",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/records/{record_id}/state",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    // Reports: régie auditors and coordinators issue and read them (issuing
    // changes no data); coordinators set the rates hours are valued at.
    row("GET",  "/api/territories/{id}/reports/hours",   [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("POST", "/api/territories/{id}/reports/hours",   [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/reports/hours/{sha256}",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/hourly-rates",    [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("PUT",  "/api/territories/{id}/hourly-rates/{effective_from}",
                                                         [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    // Exports: régie auditors and coordinators export; coordinators set
    // the licence, contact and sensitive taxa the exports follow.
    row("GET",  "/api/territories/{id}/exports/darwin-core-archive",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/exports/sightings.geojson",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/exports/sightings.csv",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/exports/sinp.csv", [U, F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/exports/degradation-reports.geojson",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/exports/degradation-reports.csv",
                                                         [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("GET",  "/api/territories/{id}/export-settings", [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
    row("PUT",  "/api/territories/{id}/export-settings", [U,  F,  A,  F,  A],     [U,  F,  F,  F,  A]),
    // Anyone's own notebooks, in a territory where they hold a role.
    row("GET",  "/api/territories/{id}/notebooks",       [U,  A,  A,  A,  A],     [U,  F,  F,  F,  A]),
    // The review's live updates: whoever reads the review follows it.
    row("GET",  "/api/territories/{id}/events",          [U,  F,  A,  A,  A],     [U,  F,  F,  F,  A]),
];

#[test]
fn the_table_lists_every_route_the_router_serves_and_no_other() {
    let served: BTreeSet<(String, &str)> = server::http::route_list()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_string(), path))
        .collect();
    let mut listed = BTreeSet::new();
    for row in TABLE {
        assert!(
            listed.insert((row.method.to_string(), row.path)),
            "{} {} is in the table twice",
            row.method,
            row.path
        );
    }
    let unlisted: Vec<_> = served.difference(&listed).collect();
    let not_served: Vec<_> = listed.difference(&served).collect();
    assert!(
        unlisted.is_empty() && not_served.is_empty(),
        "served but missing from the table: {unlisted:?}; in the table but not served: {not_served:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_allows_or_refuses_each_role_in_each_territory_as_the_table_says(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let fixture = accounts::seed(&pool).await?;
    let spec = Spec::built();

    let mut mismatches = Vec::new();
    let mut undocumented = Vec::new();
    let mut checked = 0;
    for row in TABLE {
        for (territory, expected) in [(Territory::Own, row.own), (Territory::Other, row.other)] {
            for (who, expected) in WHO.into_iter().zip(expected) {
                let (status, body) = perform(&server, &pool, &fixture, row, who, territory).await?;
                if let Err(fault) = spec.check_answer(row.method, row.path, status, &body) {
                    undocumented.push(format!("as {who:?} in {territory:?} territory: {fault}"));
                }
                let outcome = match status {
                    // 101: a WebSocket handshake accepted.
                    101 | 200..=299 => Some(Outcome::Allowed),
                    401 => Some(Outcome::Unauthenticated),
                    403 => Some(Outcome::Forbidden),
                    _ => None,
                };
                checked += 1;
                if outcome != Some(expected) {
                    mismatches.push(format!(
                        "{} {} as {who:?} in {territory:?} territory: expected {expected:?}, \
                         got {status} {body}",
                        row.method, row.path
                    ));
                }
            }
        }
    }
    assert_eq!(checked, TABLE.len() * 10);
    assert!(
        mismatches.is_empty(),
        "{} of {checked} cases differ from the table:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        undocumented.is_empty(),
        "{} of {checked} answers are not as the OpenAPI document says:\n{}",
        undocumented.len(),
        undocumented.join("\n")
    );
    Ok(())
}

/// Makes the request a row stands for, as `who`, aimed at `territory`;
/// requests that consume something (a session, an invitation, a device) get a
/// fresh one.
async fn perform(
    server: &ServerProcess,
    pool: &PgPool,
    fixture: &Fixture,
    row: &Row,
    who: Who,
    territory: Territory,
) -> anyhow::Result<(u16, Value)> {
    let actor: Option<&Actor> = match who {
        Who::Anonymous => None,
        Who::Volunteer => Some(&fixture.volunteer),
        Who::Coordinator => Some(&fixture.coordinator),
        Who::Auditor => Some(&fixture.auditor),
        Who::Admin => Some(&fixture.admin),
    };
    let token = actor.map(|actor| actor.token.clone());
    let (territory_id, document, inside, owner) = match territory {
        Territory::Own => (
            fixture.territory_a,
            &fixture.document_a,
            (45.775, 4.835),
            fixture.volunteer.account_id,
        ),
        Territory::Other => (
            fixture.territory_b,
            &fixture.document_b,
            (45.755, 4.845),
            fixture.other_volunteer.account_id,
        ),
    };
    let unique = Uuid::new_v4().simple().to_string();

    let (path, token, body): (String, Option<String>, Option<Value>) = match (row.method, row.path)
    {
        (
            "GET",
            "/health" | "/ready" | "/api/me" | "/api/me/data" | "/api/me/sessions" | "/api/devices"
            | "/api/territories" | "/api/openapi.json" | "/api/accounts",
        ) => (row.path.to_string(), token, None),
        ("PUT", "/api/me/password") => {
            // The same password again: the session making the change stays
            // open, and the other rows keep logging in.
            let body = actor.and_then(|actor| actor.login.as_ref()).map_or_else(
                || json!({ "oldPassword": "x", "newPassword": "y" }),
                |login| json!({ "oldPassword": login.password, "newPassword": login.password }),
            );
            (row.path.to_string(), token, Some(body))
        }
        ("DELETE", "/api/me/sessions/{id}") => {
            // A second session of the caller's own, ended from the first.
            let second = match actor.and_then(|actor| actor.login.as_ref()) {
                Some(login) => {
                    let session = admin::login(pool, &login.email, &login.password)
                        .await?
                        .expect("the actor's password logs in");
                    sqlx::query_scalar("SELECT id FROM sessions WHERE token_hash = $1")
                        .bind(server::auth::secret::fingerprint(&session.token))
                        .fetch_one(pool)
                        .await?
                }
                None => Uuid::new_v4(),
            };
            (format!("/api/me/sessions/{second}"), token, None)
        }
        ("POST", "/api/auth/login") => {
            let login = fixture.coordinator.login.as_ref().expect("a password");
            let body = json!({ "email": login.email, "password": login.password });
            (row.path.to_string(), token, Some(body))
        }
        ("POST", "/api/auth/password-reset") => {
            // An account and a code of their own for each call: a code works
            // once, and no other row's account loses its password.
            let email = format!("{unique}@example.org");
            admin::create_account(pool, "Forgetful", Some(&email), None, false).await?;
            let issued =
                server::auth::password_reset::issue(pool, fixture.admin.account_id, &email).await?;
            let body = json!({ "code": issued.code, "newPassword": "a fresh password for them" });
            (row.path.to_string(), token, Some(body))
        }
        ("POST", "/api/password-resets") => {
            let email = format!("{unique}@example.org");
            admin::create_account(pool, "Forgetful", Some(&email), None, false).await?;
            let body = json!({ "email": email });
            (row.path.to_string(), token, Some(body))
        }
        ("POST", "/api/auth/logout") => {
            // Log out a session of its own, not the one the other rows use.
            let token = match actor.and_then(|actor| actor.login.as_ref()) {
                Some(login) => admin::login(pool, &login.email, &login.password)
                    .await?
                    .map(|session| session.token),
                None => token,
            };
            (row.path.to_string(), token, None)
        }
        ("POST", "/api/enrol") => {
            let invitation = admin::create_invitation(
                pool,
                territory_id,
                Role::Volunteer,
                "New volunteer",
                None,
                fixture.admin.account_id,
                chrono::Duration::hours(1),
            )
            .await?;
            let body = json!({ "code": invitation.code, "deviceName": "Fairphone" });
            (row.path.to_string(), token, Some(body))
        }
        ("POST", "/api/invitations") => {
            let body = json!({ "territoryId": territory_id, "displayName": "Lou" });
            (row.path.to_string(), token, Some(body))
        }
        ("POST", "/api/invitations/batch") => {
            let body = json!({ "territoryId": territory_id, "prefix": "Classe 5B", "count": 2 });
            (row.path.to_string(), token, Some(body))
        }
        ("POST", "/api/invitations/{id}/revoke") => {
            let invitation = admin::create_invitation(
                pool,
                territory_id,
                Role::Volunteer,
                "Not coming",
                None,
                fixture.admin.account_id,
                chrono::Duration::hours(1),
            )
            .await?;
            (
                format!("/api/invitations/{}/revoke", invitation.id),
                token,
                None,
            )
        }
        ("GET", "/api/territories/{id}/invitations") => (
            format!("/api/territories/{territory_id}/invitations"),
            token,
            None,
        ),
        ("POST", "/api/devices/{id}/revoke") => {
            let target =
                accounts::device_actor(pool, territory_id, fixture.admin.account_id, "Target")
                    .await?;
            let device = target.device_id.expect("a device");
            (format!("/api/devices/{device}/revoke"), token, None)
        }
        ("POST", "/api/territories") => {
            let body = json!({ "name": format!("Territory {unique}") });
            (row.path.to_string(), token, Some(body))
        }
        ("GET", "/api/territories/{id}") => {
            (format!("/api/territories/{territory_id}"), token, None)
        }
        ("POST", "/api/territories/{id}/members") => {
            let account = admin::create_account(pool, "Newcomer", None, None, false).await?;
            let body = json!({ "accountId": account, "role": "volunteer" });
            (
                format!("/api/territories/{territory_id}/members"),
                token,
                Some(body),
            )
        }
        ("PATCH", "/api/territories/{id}") => (
            format!("/api/territories/{territory_id}"),
            token,
            Some(json!({ "description": format!("Described {unique}") })),
        ),
        ("GET", "/api/territories/{id}/members") => (
            format!("/api/territories/{territory_id}/members"),
            token,
            None,
        ),
        ("DELETE", "/api/territories/{id}/members/{account_id}/{role}") => {
            let account = admin::create_account(pool, "Leaving", None, None, false).await?;
            admin::add_membership(pool, account, territory_id, Role::Volunteer, None).await?;
            (
                format!("/api/territories/{territory_id}/members/{account}/volunteer"),
                token,
                None,
            )
        }
        ("PATCH", "/api/territories/{id}/sites/{site_id}") => {
            let site =
                admin::create_site(pool, territory_id, "To rename", inside.0, inside.1).await?;
            (
                format!("/api/territories/{territory_id}/sites/{site}"),
                token,
                Some(json!({ "name": format!("Site {unique}") })),
            )
        }
        (
            "POST",
            "/api/accounts/{id}/disable"
            | "/api/accounts/{id}/enable"
            | "/api/accounts/{id}/erasure",
        ) => {
            let account = admin::create_account(pool, "Target", None, None, false).await?;
            (row.path.replace("{id}", &account.to_string()), token, None)
        }
        ("GET", "/api/territories/{id}/sites") => (
            format!("/api/territories/{territory_id}/sites"),
            token,
            None,
        ),
        ("POST", "/api/territories/{id}/sites") => {
            let body = json!({
                "name": format!("Site {unique}"),
                "decimalLatitude": inside.0,
                "decimalLongitude": inside.1,
            });
            (
                format!("/api/territories/{territory_id}/sites"),
                token,
                Some(body),
            )
        }
        ("POST", "/api/accounts") => {
            let body = json!({
                "displayName": "Auditor of the régie",
                "email": format!("{unique}@example.org"),
                "password": "a long enough password",
            });
            (row.path.to_string(), token, Some(body))
        }
        (
            "GET",
            "/api/sightings"
            | "/api/degradation-reports"
            | "/api/timesheet-entries"
            | "/api/invalid-records",
        ) => (
            format!("{}?territory={territory_id}", row.path),
            token,
            None,
        ),
        ("GET", "/api/documents/{doc_id}") => (format!("/api/documents/{document}"), token, None),
        ("GET", "/sync") => return sync_handshake(server, token.as_deref()).await,
        ("HEAD", "/api/photos/{sha256}") => {
            let sha256 = seed_photo(pool, territory_id, fixture.admin.account_id).await?;
            let path = format!("/api/photos/{sha256}?territory={territory_id}");
            return send_bytes(server, Method::HEAD, &path, token.as_deref(), None).await;
        }
        ("PUT", "/api/photos/{sha256}") => {
            // A new photo each time: one already held is answered before any check of the body.
            let pixels = image::RgbImage::from_fn(16, 16, |x, y| {
                let seed = unique.as_bytes();
                image::Rgb([seed[(x % 32) as usize], seed[(y % 32) as usize], x as u8])
            });
            let mut png = Vec::new();
            pixels.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            let photo = process_photo(&png, PhotoSettings::default())?;
            let path = format!("/api/photos/{}?territory={territory_id}", photo.sha256);
            return send_bytes(
                server,
                Method::PUT,
                &path,
                token.as_deref(),
                Some(photo.jpeg),
            )
            .await;
        }
        ("GET", "/api/photos/{sha256}" | "/api/photos/{sha256}/thumbnail") => {
            let sha256 = seed_photo(pool, territory_id, fixture.admin.account_id).await?;
            let path = row.path.replace("{sha256}", &sha256);
            return send_bytes(server, Method::GET, &path, token.as_deref(), None).await;
        }
        (
            "GET",
            "/api/territories/{id}/review/records"
            | "/api/territories/{id}/review/counts"
            | "/api/territories/{id}/review/conflicts"
            | "/api/territories/{id}/review/duplicates"
            | "/api/territories/{id}/review/settings"
            | "/api/territories/{id}/review-document"
            | "/api/territories/{id}/species-list"
            | "/api/territories/{id}/audit/entries"
            | "/api/territories/{id}/audit/verification"
            | "/api/territories/{id}/hourly-rates"
            | "/api/territories/{id}/reports/hours"
            | "/api/territories/{id}/export-settings"
            | "/api/territories/{id}/notebooks",
        ) => (
            row.path.replace("{id}", &territory_id.to_string()),
            token,
            None,
        ),
        ("GET", "/api/territories/{id}/review/records/{record_id}") => {
            let record = seed_sighting(pool, territory_id, document, owner).await?;
            let path = format!("/api/territories/{territory_id}/review/records/{record}");
            (path, token, None)
        }
        ("GET", "/api/territories/{id}/review/records/{record_id}/history") => {
            let record = seed_sighting(pool, territory_id, document, owner).await?;
            let path = format!("/api/territories/{territory_id}/review/records/{record}/history");
            (path, token, None)
        }
        ("GET", "/api/territories/{id}/records/{record_id}/audit") => {
            let record = seed_audited_record(pool, territory_id, document, owner).await?;
            let path = format!("/api/territories/{territory_id}/records/{record}/audit");
            (path, token, None)
        }
        ("GET", "/api/territories/{id}/records/{record_id}/state") => {
            let record = seed_audited_record(pool, territory_id, document, owner).await?;
            let path = format!(
                "/api/territories/{territory_id}/records/{record}/state?at=2026-01-01T00:00:00Z"
            );
            (path, token, None)
        }
        ("POST", "/api/territories/{id}/review/decisions") => {
            let record = seed_sighting(pool, territory_id, document, owner).await?;
            let body = json!({"decision": "verification", "status": "2", "records": [record]});
            (
                row.path.replace("{id}", &territory_id.to_string()),
                token,
                Some(body),
            )
        }
        ("POST", "/api/territories/{id}/review/conflicts/{record_id}/resolution") => {
            let record = seed_conflict(pool, territory_id, owner).await?;
            let path =
                format!("/api/territories/{territory_id}/review/conflicts/{record}/resolution");
            (
                path,
                token,
                Some(json!({"field": "individualCount", "value": 4})),
            )
        }
        (
            "POST",
            "/api/territories/{id}/review/duplicates/merge"
            | "/api/territories/{id}/review/duplicates/dismiss",
        ) => {
            let reference = seed_sighting(pool, territory_id, document, owner).await?;
            let duplicate = seed_sighting(pool, territory_id, document, owner).await?;
            let body = json!({"reference": reference, "duplicate": duplicate});
            (
                row.path.replace("{id}", &territory_id.to_string()),
                token,
                Some(body),
            )
        }
        ("PUT", "/api/territories/{id}/review/settings") => {
            let body = json!({"duplicateDistanceM": 50.0, "duplicateWindowHours": 2.0});
            (
                row.path.replace("{id}", &territory_id.to_string()),
                token,
                Some(body),
            )
        }
        ("PUT", "/api/territories/{id}/species-list") => {
            let path = format!("/api/territories/{territory_id}/species-list");
            // A different list each time, so every import writes.
            let list = format!("CD_NOM\tLB_NOM\n3764\tParus major\n\tBufo bufo {unique}\n");
            return send_bytes(
                server,
                Method::PUT,
                &path,
                token.as_deref(),
                Some(list.into_bytes()),
            )
            .await;
        }
        ("POST", "/api/territories/{id}/species-list/preview") => {
            let path = format!("/api/territories/{territory_id}/species-list/preview");
            let list = "CD_NOM\tLB_NOM\n3764\tParus major\n".to_string();
            return send_bytes(
                server,
                Method::POST,
                &path,
                token.as_deref(),
                Some(list.into_bytes()),
            )
            .await;
        }
        ("POST", "/api/territories/{id}/reports/hours") => (
            row.path.replace("{id}", &territory_id.to_string()),
            token,
            Some(json!({"from": "2026-01-01", "to": "2026-12-31"})),
        ),
        ("GET", "/api/territories/{id}/reports/hours/{sha256}") => {
            let day = |d: &str| d.parse::<chrono::NaiveDate>().expect("a date");
            let report = server::reports::hours::issue(
                pool,
                territory_id,
                day("2026-01-01"),
                day("2026-06-30"),
                fixture.admin.account_id,
            )
            .await?;
            let path = format!(
                "/api/territories/{territory_id}/reports/hours/{}",
                report.sha256
            );
            (path, token, None)
        }
        ("PUT", "/api/territories/{id}/hourly-rates/{effective_from}") => (
            format!("/api/territories/{territory_id}/hourly-rates/2026-01-01"),
            token,
            Some(json!({"euroPerHour": "11.65", "basis": "smic"})),
        ),
        ("PUT", "/api/territories/{id}/export-settings") => (
            row.path.replace("{id}", &territory_id.to_string()),
            token,
            Some(json!({"licence": "CC-BY-4.0", "sensitiveGridMetres": 10000,
                        "sensitiveTaxa": [{"taxonId": 444432, "scientificName": "Triturus cristatus"}]})),
        ),
        ("GET", path) if path.starts_with("/api/territories/{id}/exports/") => {
            // Streamed files: the status, and the JSON of a refusal.
            let path = path.replace("{id}", &territory_id.to_string());
            let mut request = reqwest::Client::new().get(server.http_url(&path));
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await?;
            let body = if status < 300 {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)?
            };
            return Ok((status, body));
        }
        ("GET", "/api/territories/{id}/events") => {
            let path = format!("/api/territories/{territory_id}/events");
            return open_event_stream(server, &path, token.as_deref()).await;
        }
        (method, path) => panic!("the table has {method} {path}, but this test cannot call it yet"),
    };
    let method = Method::from_bytes(row.method.as_bytes())?;
    server
        .api(token.as_deref())
        .send(method, &path, body.as_ref())
        .await
}

/// A sighting of `owner`'s notebook `doc_id`, as materialisation files one.
async fn seed_sighting(
    pool: &PgPool,
    territory: Uuid,
    doc_id: &str,
    owner: Uuid,
) -> anyhow::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sightings (id, territory_id, doc_id, occurrence_id, scientific_name, \
           event_date, geom, occurrence_status, basis_of_record, recorded_by, author_id, \
           device_id, created_at, modified_at) \
         VALUES ($1, $2, $3, 'urn:uuid:' || $1, 'Bufo bufo', now() - interval '1 hour', \
           ST_SetSRID(ST_MakePoint(4.835, 45.775), 4326), 'present', 'HumanObservation', \
           'Camille', $4, 'phone', now(), now())",
    )
    .bind(id)
    .bind(territory)
    .bind(doc_id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(id)
}

/// A record the audit trail holds a change of, in `doc_id`.
async fn seed_audited_record(
    pool: &PgPool,
    territory: Uuid,
    doc_id: &str,
    owner: Uuid,
) -> anyhow::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO audit_pending (territory_id, action, actor_id, doc_id, record_id, record_kind, after) \
         VALUES ($1, 'change', $2, $3, $4, 'sighting', '{\"individualCount\": 1}')",
    )
    .bind(territory)
    .bind(owner)
    .bind(doc_id)
    .bind(id)
    .execute(pool)
    .await?;
    sqlx::query("SELECT audit_chain_pending(1000)")
        .execute(pool)
        .await?;
    Ok(id)
}

/// A notebook of `owner` stored as the sync server stores one, holding a
/// sighting whose count two phones set concurrently; returns the sighting's id.
async fn seed_conflict(pool: &PgPool, territory: Uuid, owner: Uuid) -> anyhow::Result<Uuid> {
    let header = sync::documents::NotebookHeader {
        territory_id: territory,
        owner_id: owner,
    };
    let mut phone_a = sync::documents::new_notebook(header);
    let sighting = fieldnotes_tests::records::sighting(owner, "Bufo bufo", 1);
    let record = schemas::FieldRecord::id(&sighting);
    sync::documents::put_record(&mut phone_a, &sighting)?;
    let mut phone_b = phone_a.fork();
    for (phone, count) in [(&mut phone_a, 3), (&mut phone_b, 5)] {
        sync::documents::set_field(
            phone,
            schemas::RecordKind::Sighting,
            record,
            "individualCount",
            &json!(count),
        )?;
    }
    phone_a.merge(&mut phone_b)?;
    let doc_id = fieldnotes_tests::raw_peer::new_document_id().to_string();
    sqlx::query(
        "INSERT INTO documents (doc_id, territory_id, owner_id, kind, revision) \
         VALUES ($1, $2, $3, 'notebook', 1)",
    )
    .bind(&doc_id)
    .bind(territory)
    .bind(owner)
    .execute(pool)
    .await?;
    sqlx::query("INSERT INTO automerge_chunks (key, doc_id, data) VALUES ($1 || '/incremental/seed', $1, $2)")
        .bind(&doc_id)
        .bind(phone_a.save())
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO sightings (id, territory_id, doc_id, occurrence_id, scientific_name, \
           event_date, geom, individual_count, occurrence_status, basis_of_record, recorded_by, \
           author_id, device_id, created_at, modified_at, conflicts) \
         VALUES ($1, $2, $3, 'urn:uuid:' || $1, 'Bufo bufo', now() - interval '1 hour', \
           ST_SetSRID(ST_MakePoint(4.835, 45.775), 4326), 5, 'present', 'HumanObservation', \
           'Camille', $4, 'phone', now(), now(), \
           '[{\"field\": \"individualCount\", \"winner\": 5, \"values\": [3, 5]}]')",
    )
    .bind(record)
    .bind(territory)
    .bind(&doc_id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(record)
}

/// A photo filed in `territory`, as an upload stores one; returns its address.
async fn seed_photo(pool: &PgPool, territory: Uuid, uploader: Uuid) -> anyhow::Result<String> {
    let sha256 = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO photos (sha256, territory_id, uploaded_by, size, width, height, \
           content_type, data, thumbnail) \
         VALUES ($1, $2, $3, 4, 1, 1, 'image/jpeg', '\\xffd8ffd9', '\\xffd8ffd9')",
    )
    .bind(&sha256)
    .bind(territory)
    .bind(uploader)
    .execute(pool)
    .await?;
    Ok(sha256)
}

/// Opens an event stream (which never ends by itself): a stream's status and
/// headers only, its content type checked; a refusal's status and JSON body.
async fn open_event_stream(
    server: &ServerProcess,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = reqwest::Client::new().get(server.http_url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Ok((status, response.json().await?));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    anyhow::ensure!(
        content_type.starts_with("text/event-stream"),
        "GET {path} answered {status} with Content-Type {content_type:?}"
    );
    // Dropping the response closes the stream.
    Ok((status, Value::Null))
}

/// Sends `method path` with a raw `body`; returns the status and the body as
/// JSON when it is JSON (photos are not).
async fn send_bytes(
    server: &ServerProcess,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = reqwest::Client::new().request(method, server.http_url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
    Ok((status, body))
}

/// The status of a WebSocket handshake on `/sync` (101 is allowed).
async fn sync_handshake(
    server: &ServerProcess,
    token: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = server.sync_url().as_str().into_client_request()?;
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, response)) => {
            let _ = socket.close(None).await;
            Ok((response.status().as_u16(), Value::Null))
        }
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Value::Null);
            Ok((response.status().as_u16(), body))
        }
        Err(error) => Err(error.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_hold_only_the_callers_territories_and_devices() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;

    let ids = |list: &Value, key: &str| -> BTreeSet<String> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|item| item[key].as_str().expect("an id").to_string())
            .collect()
    };
    let a = f.territory_a.to_string();
    let b = f.territory_b.to_string();

    let (_, territories) = server
        .as_(&f.volunteer.token)
        .get("/api/territories")
        .await?;
    assert_eq!(ids(&territories, "id"), BTreeSet::from([a.clone()]));
    assert_eq!(territories[0]["yourRoles"], json!(["volunteer"]));
    let (_, territories) = server.as_(&f.admin.token).get("/api/territories").await?;
    assert!(ids(&territories, "id").is_superset(&BTreeSet::from([a.clone(), b.clone()])));

    let volunteer_device = f.volunteer.device_id.unwrap().to_string();
    let other_device = f.other_volunteer.device_id.unwrap().to_string();
    let (_, devices) = server.as_(&f.volunteer.token).get("/api/devices").await?;
    assert_eq!(
        ids(&devices, "id"),
        BTreeSet::from([volunteer_device.clone()])
    );
    let (_, devices) = server.as_(&f.coordinator.token).get("/api/devices").await?;
    assert_eq!(
        ids(&devices, "id"),
        BTreeSet::from([volunteer_device.clone()])
    );
    let (_, devices) = server.as_(&f.auditor.token).get("/api/devices").await?;
    assert!(ids(&devices, "id").is_empty());
    let (_, devices) = server.as_(&f.admin.token).get("/api/devices").await?;
    assert_eq!(
        ids(&devices, "id"),
        BTreeSet::from([volunteer_device.clone(), other_device.clone()])
    );
    // One territory's volunteers' phones: the web app's page of it.
    let (_, devices) = server
        .as_(&f.admin.token)
        .get(&format!("/api/devices?territory={b}"))
        .await?;
    assert_eq!(ids(&devices, "id"), BTreeSet::from([other_device]));
    let (_, devices) = server
        .as_(&f.coordinator.token)
        .get(&format!("/api/devices?territory={b}"))
        .await?;
    assert!(ids(&devices, "id").is_empty());
    let (status, refused) = server
        .as_(&f.coordinator.token)
        .get("/api/devices?territory=nowhere")
        .await?;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["field"], "query");

    let (status, me) = server.as_(&f.volunteer.token).get("/api/me").await?;
    assert_eq!(status, 200);
    assert_eq!(me["accountId"], f.volunteer.account_id.to_string());
    assert_eq!(me["credential"]["kind"], "device");
    assert_eq!(
        me["memberships"],
        json!([{
            "territoryId": a, "territoryName": "Friche de la Croix-Rousse", "role": "volunteer"
        }])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteer_sees_only_their_own_invalid_records_and_documents() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    // Another volunteer of A, with a draft of their own.
    let neighbour =
        accounts::device_actor(&pool, f.territory_a, f.coordinator.account_id, "Neighbour").await?;
    let neighbours_notebook =
        accounts::seed_document(&pool, f.territory_a, neighbour.account_id).await?;
    accounts::seed_invalid_record(&pool, &f.document_a, f.territory_a).await?;
    accounts::seed_invalid_record(&pool, &neighbours_notebook, f.territory_a).await?;
    accounts::seed_invalid_record(&pool, &f.document_b, f.territory_b).await?;

    let documents_listed = |body: Value| -> Vec<String> {
        let mut docs: Vec<String> = body
            .as_array()
            .expect("a list")
            .iter()
            .map(|record| record["documentId"].as_str().unwrap().to_string())
            .collect();
        docs.sort();
        docs
    };
    let sorted = |mut docs: Vec<String>| {
        docs.sort();
        docs
    };
    for (who, token, expected) in [
        ("volunteer", &f.volunteer.token, vec![f.document_a.clone()]),
        (
            "neighbour",
            &neighbour.token,
            vec![neighbours_notebook.clone()],
        ),
        (
            "coordinator",
            &f.coordinator.token,
            sorted(vec![f.document_a.clone(), neighbours_notebook.clone()]),
        ),
        (
            "auditor",
            &f.auditor.token,
            sorted(vec![f.document_a.clone(), neighbours_notebook.clone()]),
        ),
        (
            "other volunteer",
            &f.other_volunteer.token,
            vec![f.document_b.clone()],
        ),
        (
            "admin",
            &f.admin.token,
            sorted(vec![
                f.document_a.clone(),
                neighbours_notebook.clone(),
                f.document_b.clone(),
            ]),
        ),
    ] {
        let (status, body) = server.as_(token).get("/api/invalid-records").await?;
        assert_eq!(status, 200, "{who}");
        assert_eq!(
            documents_listed(body),
            expected,
            "invalid records {who} sees"
        );
    }

    let neighbours = format!("/api/documents/{neighbours_notebook}");
    let (status, _) = server.as_(&f.volunteer.token).get(&neighbours).await?;
    assert_eq!(
        status, 403,
        "a volunteer reads another volunteer's notebook"
    );
    let (status, _) = server.as_(&neighbour.token).get(&neighbours).await?;
    assert_eq!(status, 200, "its owner reads it");
    let (status, _) = server.as_(&f.auditor.token).get(&neighbours).await?;
    assert_eq!(status, 200, "the territory's auditor reads it");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinators_enrol_and_add_volunteers_but_grant_no_other_role() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let a = f.territory_a;
    let coordinator = Some(f.coordinator.token.as_str());

    for role in ["coordinator", "regie_auditor"] {
        let invite = json!({ "territoryId": a, "displayName": "Sam", "role": role });
        let (status, _) = server
            .api(coordinator)
            .post("/api/invitations", &invite)
            .await?;
        assert_eq!(status, 403, "a coordinator invites a {role}");
        let (status, _) = server
            .as_(&f.admin.token)
            .post("/api/invitations", &invite)
            .await?;
        assert_eq!(status, 201, "an admin invites a {role}");

        let account = admin::create_account(&pool, "Sam", None, None, false).await?;
        let member = json!({ "accountId": account, "role": role });
        let path = format!("/api/territories/{a}/members");
        let (status, _) = server.api(coordinator).post(&path, &member).await?;
        assert_eq!(status, 403, "a coordinator makes someone a {role}");
    }

    // A second phone for one of their volunteers: yes. For the admin — which
    // would hand whoever redeems the code the admin's account — no.
    let second_phone = json!({ "territoryId": a, "displayName": "Volunteer A", "accountId": f.volunteer.account_id });
    let (status, _) = server
        .api(coordinator)
        .post("/api/invitations", &second_phone)
        .await?;
    assert_eq!(status, 201);
    let admins_phone =
        json!({ "territoryId": a, "displayName": "Admin", "accountId": f.admin.account_id });
    let (status, _) = server
        .api(coordinator)
        .post("/api/invitations", &admins_phone)
        .await?;
    assert_eq!(status, 403);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_route_and_a_wrong_method_answer_a_json_error() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let client = reqwest::Client::new();

    for (method, path, status) in [
        (Method::GET, "/api/nowhere", 404),
        (Method::POST, "/no/such/route", 404),
        (Method::DELETE, "/api/territories", 405),
        (Method::POST, "/health", 405),
    ] {
        let response = client
            .request(method.clone(), server.http_url(path))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let allow = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let body: Value = response.json().await?;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(path), "{method} {path}: {body}");
        assert!(body["error"].get("field").is_some(), "{body}");
        match status {
            405 => {
                let allow = allow.unwrap_or_default();
                assert!(allow.contains("GET"), "{method} {path}: Allow {allow:?}");
                assert!(!allow.contains(method.as_str()), "Allow {allow:?}");
            }
            _ => assert_eq!(allow, None),
        }
    }
    // A served path with a served method is unchanged.
    let (status, _) = server
        .anonymous()
        .send(Method::POST, "/api/territories", None)
        .await?;
    assert_eq!(status, 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_above_the_limit_gets_413_naming_the_limit() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let limit = server::http::MAX_JSON_BODY_BYTES;

    // 100 MB declared: refused from the headers, before the body is read.
    let hundred_mb = vec![b' '; 100 * 1024 * 1024];
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n",
        hundred_mb.len()
    );
    let (status, _, body) = server.send_raw(&head, hundred_mb).await?;
    let body: Value = serde_json::from_slice(&body)?;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["field"], "Content-Length", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&limit.to_string()), "{message}");
    assert!(
        message.contains(&(100 * 1024 * 1024).to_string()),
        "{message}"
    );

    // Chunked, so no length is declared: refused once past the limit.
    let chunk = vec![b' '; 64 * 1024];
    let mut chunked = Vec::new();
    for _ in 0..(limit / chunk.len() + 2) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /api/auth/login HTTP/1.1\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n";
    let (status, _, body) = server.send_raw(head, chunked).await?;
    let body: Value = serde_json::from_slice(&body)?;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["field"], "body", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&limit.to_string()), "{message}");

    // A body within the limit is read as before, and the server is none the worse.
    let (status, body) = server
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": "nobody@example.org", "password": "not this one" }),
        )
        .await?;
    assert_eq!(status, 401, "{body}");
    Ok(())
}
