//! Setting up a territory through the API the coordinators' web app uses
//! (issue 24): renaming and redrawing it, listing and removing its members,
//! renaming, moving, retiring its sites, finding accounts, disabling and
//! enabling one. Removing a role or disabling an account closes the open
//! sync connections of the person at once, on a real server and PostgreSQL.

use std::time::Duration;

use anyhow::Context;
use fieldnotes_tests::{
    api::expect_status,
    raw_peer::{new_document_id, RawPeer},
    records,
    world::World,
};
use reqwest::Method;
use serde_json::{json, Value};
use server::auth::admin;
use sync::documents::{new_notebook, put_raw_record, NotebookHeader};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A square of side 0.01° whose south-west corner is (`lon`, `lat`).
fn square(lon: f64, lat: f64) -> Value {
    json!({
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01],
                         [lon, lat + 0.01], [lon, lat]]],
    })
}

/// The `field` of an error answer.
fn field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or_default()
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

/// The error messages a sync connection received before the server closed it.
async fn closing_errors(peer: &mut RawPeer) -> anyhow::Result<Vec<String>> {
    Ok(peer
        .messages_until_closed(TIMEOUT)
        .await?
        .into_iter()
        .filter(|m| m.kind == "error")
        .filter_map(|m| m.message)
        .collect())
}

/// Opens the territory's live updates as the holder of `token`, read up to
/// `event: ready`.
async fn open_events(world: &World, token: &str) -> anyhow::Result<reqwest::Response> {
    let path = format!("/api/territories/{}/events", world.territory.id);
    let mut response = reqwest::Client::new()
        .get(world.server.http_url(&path))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(response.status() == 200, "{}", response.status());
    let mut seen = String::new();
    while !seen.contains("event: ready") {
        let chunk = tokio::time::timeout(TIMEOUT, response.chunk())
            .await??
            .context("the stream ended before it was ready")?;
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    Ok(response)
}

/// Waits for a live-updates stream to end, well before its periodic
/// recheck (a minute) would end it.
async fn stream_ends(mut response: reqwest::Response) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(15), async {
        while response.chunk().await?.is_some() {}
        anyhow::Ok(())
    })
    .await
    .context("the stream is still open")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_renames_redraws_and_undraws_the_territory() -> anyhow::Result<()> {
    let world = World::builder("Friche des Buers")
        .boundary(square(4.88, 45.77))
        .coordinator("Marie")
        .auditor("Régie des Buers")
        .admin()
        .build()
        .await?;
    let t = world.territory.id;
    let path = format!("/api/territories/{t}");
    let marie = world.server.as_(&world.coordinator().token);

    let renamed = expect_status(
        marie
            .send(
                Method::PATCH,
                &path,
                Some(&json!({"name": "  Friche des Buers Nord ", "description": "Une friche"})),
            )
            .await?,
        200,
    )?;
    assert_eq!(renamed["name"], "Friche des Buers Nord");
    assert_eq!(renamed["description"], "Une friche");
    assert_eq!(renamed["boundary"]["type"], "MultiPolygon", "{renamed}");
    assert_eq!(renamed["yourRoles"], json!(["coordinator"]));
    // The answer is the territory as GET shows it.
    assert_eq!(expect_status(marie.get(&path).await?, 200)?, renamed);

    let redrawn = expect_status(
        marie
            .send(
                Method::PATCH,
                &path,
                Some(&json!({"boundary": square(4.90, 45.78), "description": "  "})),
            )
            .await?,
        200,
    )?;
    assert_eq!(redrawn["name"], "Friche des Buers Nord", "unchanged");
    assert_eq!(redrawn["description"], Value::Null, "a blank one clears it");
    assert_eq!(
        redrawn["boundary"]["coordinates"][0][0][0],
        json!([4.90, 45.78]),
        "{redrawn}"
    );

    // Refused with the field named, and nothing changed.
    for (body, named) in [
        (
            json!({"boundary": {"type": "Point", "coordinates": [4.9, 45.78]}}),
            "boundary",
        ),
        (
            json!({"boundary": {"type": "Polygon", "coordinates": [[[4.9, 45.78], [4.91, 45.79], [4.91, 45.78], [4.9, 45.79], [4.9, 45.78]]]}}),
            "boundary",
        ),
        (json!({"name": "   "}), "name"),
        (json!({"nom": "Friche"}), "nom"),
    ] {
        let (status, answer) = marie.send(Method::PATCH, &path, Some(&body)).await?;
        assert_eq!((status, field(&answer)), (400, named), "{body}: {answer}");
    }
    assert_eq!(expect_status(marie.get(&path).await?, 200)?, redrawn);

    let undrawn = expect_status(
        marie
            .send(Method::PATCH, &path, Some(&json!({"boundary": null})))
            .await?,
        200,
    )?;
    assert_eq!(undrawn["boundary"], Value::Null);
    assert_eq!(undrawn["name"], "Friche des Buers Nord");

    // The régie's auditor reads it and changes nothing; an admin changes any,
    // and an unknown one is not found.
    let (status, _) = world
        .server
        .as_(&world.auditor().token)
        .send(Method::PATCH, &path, Some(&json!({"name": "Autre"})))
        .await?;
    assert_eq!(status, 403);
    let admin = world.server.as_(&world.admin().token);
    let (status, answer) = admin
        .send(
            Method::PATCH,
            &format!("/api/territories/{}", Uuid::new_v4()),
            Some(&json!({"name": "Nowhere"})),
        )
        .await?;
    assert_eq!(status, 404, "{answer}");
    let by_admin = expect_status(
        admin
            .send(
                Method::PATCH,
                &path,
                Some(&json!({"description": "Suivie par la régie"})),
            )
            .await?,
        200,
    )?;
    assert_eq!(by_admin["description"], "Suivie par la régie");
    assert_eq!(by_admin["yourRoles"], json!([]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_listed_and_a_coordinator_removes_volunteers_only() -> anyhow::Result<()> {
    let world = World::builder("Berges du Rhône")
        .coordinator("Marie")
        .auditor("Régie des berges")
        .admin()
        .volunteer("Camille")
        .second_device("Camille")
        .build()
        .await?;
    let t = world.territory.id;
    let camille = world.volunteer("Camille");
    let marie = world.coordinator();
    let members_path = format!("/api/territories/{t}/members");

    let members = expect_status(
        world
            .server
            .as_(&world.auditor().token)
            .get(&members_path)
            .await?,
        200,
    )?;
    let rows = members.as_array().expect("an array");
    let names: Vec<(&str, &str)> = rows
        .iter()
        .map(|m| {
            (
                m["displayName"].as_str().unwrap(),
                m["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("Camille", "volunteer"),
            ("Coordinator of Berges du Rhône", "coordinator"),
            ("Marie", "coordinator"),
            ("Régie des berges", "regie_auditor"),
        ],
        "by display name then role: {members}"
    );
    let camille_row = &rows[0];
    assert_eq!(camille_row["accountId"], json!(camille.account_id));
    assert_eq!(camille_row["email"], Value::Null, "a phone-only volunteer");
    assert_eq!(camille_row["activeDevices"], 2, "two phones");
    assert_eq!(camille_row["disabled"], false);
    assert!(camille_row["grantedAt"].is_string());
    let marie_row = &rows[2];
    assert_eq!(
        marie_row["email"].as_str(),
        marie.login.as_ref().map(|login| login.email.as_str())
    );
    assert_eq!(marie_row["activeDevices"], 0);

    // A volunteer does not list them.
    let (status, _) = world
        .server
        .as_(&camille.device.secret)
        .get(&members_path)
        .await?;
    assert_eq!(status, 403);

    // A coordinator removes volunteers, not another coordinator.
    let as_marie = world.server.as_(&marie.token);
    let coordinator_role = format!("{members_path}/{}/coordinator", world.territory.coordinator);
    let (status, body) = as_marie
        .send(Method::DELETE, &coordinator_role, None)
        .await?;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("only an admin"), "{body}");
    for (path, named) in [
        (format!("{members_path}/not-a-uuid/volunteer"), "accountId"),
        (
            format!("{members_path}/{}/gardener", camille.account_id),
            "role",
        ),
        (
            format!(
                "/api/territories/nope/members/{}/volunteer",
                camille.account_id
            ),
            "id",
        ),
    ] {
        let (status, body) = as_marie.send(Method::DELETE, &path, None).await?;
        assert_eq!((status, field(&body)), (400, named), "{path}: {body}");
    }
    // Marie holds no volunteer role here.
    let (status, body) = as_marie
        .send(
            Method::DELETE,
            &format!("{members_path}/{}/volunteer", marie.account_id),
            None,
        )
        .await?;
    assert_eq!(status, 404, "{body}");

    // An admin removes a coordinator role.
    let (status, body) = world
        .server
        .as_(&world.admin().token)
        .send(Method::DELETE, &coordinator_role, None)
        .await?;
    assert_eq!(status, 204, "{body}");
    let members = expect_status(as_marie.get(&members_path).await?, 200)?;
    assert_eq!(members.as_array().map(Vec::len), Some(3), "{members}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_volunteer_closes_their_sync_connection_and_they_write_no_more(
) -> anyhow::Result<()> {
    let world = World::builder("Ruisseau des Planches")
        .coordinator("Marie")
        .volunteer("Camille")
        .build()
        .await?;
    let t = world.territory.id;
    let camille = world.volunteer("Camille");
    let mut open = RawPeer::connect(&world.server.sync_url(), &camille.device).await?;

    let (status, body) = world
        .server
        .as_(&world.coordinator().token)
        .send(
            Method::DELETE,
            &format!(
                "/api/territories/{t}/members/{}/volunteer",
                camille.account_id
            ),
            None,
        )
        .await?;
    assert_eq!(status, 204, "{body}");
    let errors = closing_errors(&mut open).await?;
    assert!(
        errors.iter().any(|e| e.contains("roles changed")),
        "the open connection is told and closed: {errors:?}"
    );

    // The phone's credential still works (it was not revoked), with the
    // roles the account holds now: none.
    let me = expect_status(
        world
            .server
            .as_(&camille.device.secret)
            .get("/api/me")
            .await?,
        200,
    )?;
    assert!(
        !me.to_string().contains(&t.to_string()),
        "no role in the territory any more: {me}"
    );
    let mut notebook = new_notebook(NotebookHeader {
        territory_id: t,
        owner_id: camille.account_id,
    });
    let sighting = records::sighting_json(camille.account_id, "Alcedo atthis", 1);
    put_raw_record(
        &mut notebook,
        schemas::RecordKind::Sighting,
        sighting["id"].as_str().unwrap(),
        &sighting,
    )?;
    let mut peer = RawPeer::connect(&world.server.sync_url(), &camille.device).await?;
    let message = fieldnotes_tests::raw_peer::all_changes_message(&notebook).encode();
    peer.send_sync(&new_document_id(), &message).await?;
    let errors = closing_errors(&mut peer).await?;
    assert!(
        errors.iter().any(|e| e.contains("notebook")),
        "writing into the territory is refused: {errors:?}"
    );
    let sightings: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings")
        .fetch_one(&world.pool)
        .await?;
    assert_eq!(sightings, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_is_renamed_moved_inside_the_boundary_retired_and_restored() -> anyhow::Result<()> {
    let world = World::builder("Friche Saint-Vincent")
        .boundary(square(4.83, 45.77))
        .coordinator("Marie")
        .volunteer("Camille")
        .build()
        .await?;
    let t = world.territory.id;
    let marie = world.server.as_(&world.coordinator().token);
    let created = expect_status(
        marie
            .post(
                &format!("/api/territories/{t}/sites"),
                &json!({"name": "Mare", "decimalLatitude": 45.775, "decimalLongitude": 4.835}),
            )
            .await?,
        201,
    )?;
    let site = created["id"].as_str().unwrap().to_string();
    let path = format!("/api/territories/{t}/sites/{site}");
    let patch = |body: Value| {
        let path = path.clone();
        async move { marie.send(Method::PATCH, &path, Some(&body)).await }
    };

    let renamed = expect_status(patch(json!({"name": " Mare aux tritons "})).await?, 200)?;
    assert_eq!(renamed["name"], "Mare aux tritons");
    assert_eq!(renamed["active"], true);
    assert_eq!(renamed["decimalLatitude"], 45.775);
    let moved = expect_status(
        patch(json!({"decimalLatitude": 45.776, "decimalLongitude": 4.836})).await?,
        200,
    )?;
    assert_eq!(
        (&moved["decimalLatitude"], &moved["decimalLongitude"]),
        (&json!(45.776), &json!(4.836))
    );
    assert_eq!(moved["name"], "Mare aux tritons");

    for (body, named, says) in [
        (
            json!({"decimalLatitude": 45.777}),
            "decimalLongitude",
            "both",
        ),
        (
            json!({"decimalLongitude": 4.837}),
            "decimalLatitude",
            "both",
        ),
        (
            json!({"decimalLatitude": 4.836, "decimalLongitude": 45.776}),
            "decimalLatitude",
            "outside the territory's boundary",
        ),
        (json!({"name": ""}), "name", "empty"),
        (json!({"active": "no"}), "active", ""),
    ] {
        let (status, answer) = patch(body.clone()).await?;
        assert_eq!((status, field(&answer)), (400, named), "{body}: {answer}");
        assert!(message(&answer).contains(says), "{answer}");
    }

    let retired = expect_status(patch(json!({"active": false})).await?, 200)?;
    assert_eq!(retired["active"], false);
    // Listed still, to a volunteer too, flagged.
    let listed = expect_status(
        world
            .server
            .as_(&world.volunteer("Camille").device.secret)
            .get(&format!("/api/territories/{t}/sites"))
            .await?,
        200,
    )?;
    assert_eq!(listed, json!([retired]));
    let (deactivated_by,): (Option<Uuid>,) =
        sqlx::query_as("SELECT deactivated_by FROM sites WHERE id = $1::uuid")
            .bind(&site)
            .fetch_one(&world.pool)
            .await?;
    assert_eq!(deactivated_by, Some(world.coordinator().account_id));

    let restored = expect_status(patch(json!({"active": true})).await?, 200)?;
    assert_eq!(restored["active"], true);
    let listed = expect_status(
        marie.get(&format!("/api/territories/{t}/sites")).await?,
        200,
    )?;
    assert_eq!(listed[0]["active"], true);

    // A site of another territory is not found through this one.
    let elsewhere = admin::create_territory(&world.pool, "Ailleurs", None).await?;
    let foreign = admin::create_site(&world.pool, elsewhere, "Berge", 45.0, 4.0).await?;
    let (status, answer) = marie
        .send(
            Method::PATCH,
            &format!("/api/territories/{t}/sites/{foreign}"),
            Some(&json!({"name": "Mine"})),
        )
        .await?;
    assert_eq!(status, 404, "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_finds_accounts_by_a_part_of_their_name_or_email() -> anyhow::Result<()> {
    let world = World::builder("Zone humide du Grand Large")
        .coordinator("Marie Dupont")
        .auditor("Régie du Grand Large")
        .admin()
        .volunteer("Camille")
        .build()
        .await?;
    let admin = world.server.as_(&world.admin().token);

    let all = expect_status(admin.get("/api/accounts").await?, 200)?;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["displayName"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "by display name");
    assert_eq!(names.len(), 5, "{all}");

    let found = expect_status(admin.get("/api/accounts?q=DUPONT").await?, 200)?;
    let marie = world.coordinator();
    assert_eq!(
        found,
        json!([{
            "id": marie.account_id,
            "displayName": "Marie Dupont",
            "email": marie.login.as_ref().unwrap().email,
            "isAdmin": false,
            "disabled": false,
            "erased": false,
            "createdAt": found[0]["createdAt"],
            "memberships": [{
                "territoryId": world.territory.id,
                "territoryName": "Zone humide du Grand Large",
                "role": "coordinator",
            }],
        }])
    );
    // By a part of the email, in any case.
    let email = &marie.login.as_ref().unwrap().email;
    let by_email = expect_status(
        admin
            .get(&format!("/api/accounts?q={}", email[..12].to_uppercase()))
            .await?,
        200,
    )?;
    assert_eq!(by_email[0]["id"], json!(marie.account_id), "{by_email}");
    let two = expect_status(admin.get("/api/accounts?limit=2").await?, 200)?;
    assert_eq!(two.as_array().map(Vec::len), Some(2));
    let none = expect_status(admin.get("/api/accounts?q=nobody%20here").await?, 200)?;
    assert_eq!(none, json!([]));

    for query in ["limit=0", "limit=1001"] {
        let (status, body) = admin.get(&format!("/api/accounts?{query}")).await?;
        assert_eq!((status, field(&body)), (400, "limit"), "{query}: {body}");
    }
    let (status, _) = world.server.as_(&marie.token).get("/api/accounts").await?;
    assert_eq!(status, 403);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_is_cut_off_at_once_and_an_enabled_one_comes_back() -> anyhow::Result<()>
{
    let world = World::builder("Parc de la Feyssine")
        .coordinator("Marie")
        .admin()
        .volunteer("Camille")
        .build()
        .await?;
    let admin = world.server.as_(&world.admin().token);
    let marie = world.coordinator();
    let login = marie.login.as_ref().unwrap();
    let camille = world.volunteer("Camille");
    let disable = |account: Uuid| format!("/api/accounts/{account}/disable");
    let enable = |account: Uuid| format!("/api/accounts/{account}/enable");

    // Marie: her open live stream ends, her session is refused, her
    // password too.
    let stream = open_events(&world, &marie.token).await?;
    let disabled = expect_status(
        admin.post(&disable(marie.account_id), &json!({})).await?,
        200,
    )?;
    assert_eq!(disabled["disabled"], true);
    assert_eq!(disabled["id"], json!(marie.account_id));
    assert_eq!(disabled["memberships"][0]["role"], "coordinator");
    stream_ends(stream).await?;
    let (status, _) = world.server.as_(&marie.token).get("/api/me").await?;
    assert_eq!(status, 401, "her session is refused");
    let credentials = json!({"email": login.email, "password": login.password});
    let (status, _) = world
        .server
        .anonymous()
        .post("/api/auth/login", &credentials)
        .await?;
    assert_eq!(status, 401, "her password no longer logs in");

    // Camille: her phone's open sync connection closes, and it is refused,
    // without being revoked.
    let mut open = RawPeer::connect(&world.server.sync_url(), &camille.device).await?;
    let disabled = expect_status(
        admin.post(&disable(camille.account_id), &json!({})).await?,
        200,
    )?;
    assert_eq!(disabled["disabled"], true);
    let errors = closing_errors(&mut open).await?;
    assert!(
        errors.iter().any(|e| e.contains("account disabled")),
        "the open connection is told and closed: {errors:?}"
    );
    let (status, _) = world
        .server
        .as_(&camille.device.secret)
        .get("/api/me")
        .await?;
    assert_eq!(status, 401);
    assert!(RawPeer::connect(&world.server.sync_url(), &camille.device)
        .await
        .is_err());
    let (revoked, disabled_by): (bool, Option<Uuid>) = sqlx::query_as(
        "SELECT d.revoked_at IS NOT NULL, a.disabled_by \
         FROM devices d JOIN accounts a ON a.id = d.account_id WHERE d.id = $1",
    )
    .bind(camille.device.device_id)
    .fetch_one(&world.pool)
    .await?;
    assert_eq!(
        (revoked, disabled_by),
        (false, Some(world.admin().account_id))
    );

    // Again: nothing changes. Oneself: refused. Unknown: not found.
    let again = expect_status(
        admin.post(&disable(camille.account_id), &json!({})).await?,
        200,
    )?;
    assert_eq!(again["disabled"], true);
    let (status, body) = admin
        .post(&disable(world.admin().account_id), &json!({}))
        .await?;
    assert_eq!((status, field(&body)), (409, "id"), "{body}");
    let (status, _) = admin.post(&disable(Uuid::new_v4()), &json!({})).await?;
    assert_eq!(status, 404);
    let (status, _) = world
        .server
        .as_(&marie.token)
        .post(&enable(camille.account_id), &json!({}))
        .await?;
    assert_eq!(status, 401);

    // Enabled: the phone syncs again; Marie logs in again, her old session
    // stays ended.
    let enabled = expect_status(
        admin.post(&enable(camille.account_id), &json!({})).await?,
        200,
    )?;
    assert_eq!(enabled["disabled"], false);
    expect_status(
        world
            .server
            .as_(&camille.device.secret)
            .get("/api/me")
            .await?,
        200,
    )?;
    RawPeer::connect(&world.server.sync_url(), &camille.device).await?;
    expect_status(
        admin.post(&enable(marie.account_id), &json!({})).await?,
        200,
    )?;
    expect_status(
        world
            .server
            .anonymous()
            .post("/api/auth/login", &credentials)
            .await?,
        200,
    )?;
    let (status, _) = world.server.as_(&marie.token).get("/api/me").await?;
    assert_eq!(
        status, 401,
        "the session ended when the account was disabled"
    );
    Ok(())
}
