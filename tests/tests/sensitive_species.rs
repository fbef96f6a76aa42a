//! Who reads the exact position and notes of a sensitive species' sighting
//! (a bat roost): the territory's coordinators and régie auditors, admins,
//! and the volunteer who recorded it. Every other volunteer — with their
//! phone's device credential or a web session — gets it generalised to its
//! grid square without site or notes, on `GET /api/sightings`, and on every
//! other route the server serves nothing of it at all.

use std::time::Duration;

use fieldnotes_tests::{accounts, eventually, records, world::World, ServerProcess};
use mobile_bridge::Phone;
use reqwest::Method;
use schemas::RecordKind;
use serde_json::{json, Value};
use server::auth::Role;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);
/// The roost, as the observer's phone placed it.
const LATITUDE: f64 = 45.78113;
const LONGITUDE: f64 = 4.87127;
const NOTES: &str = "gîte derrière le volet de la grange";
const SITE: &str = "Grange du moulin";
const GRID_METRES: f64 = 1000.0;

/// The centre of the Lambert-93 square of `GRID_METRES` the roost is in, in WGS84.
async fn roost_square_centre(pool: &sqlx::PgPool) -> anyhow::Result<(f64, f64)> {
    Ok(sqlx::query_as(
        "SELECT ST_Y(c), ST_X(c) \
         FROM ST_Transform(ST_SetSRID(ST_MakePoint($1, $2), 4326), 2154) p \
         CROSS JOIN LATERAL ST_Transform(ST_SetSRID(ST_MakePoint( \
           floor(ST_X(p) / $3) * $3 + $3 / 2, floor(ST_Y(p) / $3) * $3 + $3 / 2), 2154), 4326) c",
    )
    .bind(LONGITUDE)
    .bind(LATITUDE)
    .bind(GRID_METRES)
    .fetch_one(pool)
    .await?)
}

/// GET `path` as the holder of `token`: the status and the body as text (an
/// event stream's body is not read: it never ends).
async fn get_text(
    server: &ServerProcess,
    path: &str,
    token: &str,
) -> anyhow::Result<(u16, String)> {
    let response = reqwest::Client::new()
        .get(server.http_url(path))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status().as_u16();
    let streamed = response
        .headers()
        .get("content-type")
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    if streamed {
        return Ok((status, String::new()));
    }
    Ok((
        status,
        String::from_utf8_lossy(&response.bytes().await?).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_territory_s_reviewers_admins_and_the_observer_read_a_sensitive_sighting_exactly(
) -> anyhow::Result<()> {
    let world = World::builder("Moulin de la Feyssine")
        .coordinator("Marie")
        .auditor("Régie")
        .admin()
        .volunteer("Camille")
        .build()
        .await?;
    let (server, pool, t) = (&world.server, &world.pool, world.territory.id);
    let (coordinator, auditor, admin) = (world.coordinator(), world.auditor(), world.admin());
    let observer = world.volunteer("Camille");
    let other_phone = accounts::device_actor(pool, t, coordinator.account_id, "Léo").await?;
    let other_session =
        accounts::password_actor(pool, "Inès", Some((t, Role::Volunteer)), false).await?;

    // The genus is on the list, by name only.
    let (status, body) = server
        .as_(&coordinator.token)
        .put(
            &format!("/api/territories/{t}/export-settings"),
            &json!({
                "licence": "CC-BY-4.0",
                "sensitiveGridMetres": GRID_METRES as i32,
                "sensitiveTaxa": [{"scientificName": "Myotis"}],
            }),
        )
        .await?;
    assert_eq!(status, 200, "{body}");

    let mut roost =
        records::sighting_json(observer.account_id, "Myotis daubentonii (Kuhl, 1817)", 4);
    roost["decimalLatitude"] = json!(LATITUDE);
    roost["decimalLongitude"] = json!(LONGITUDE);
    roost["notes"] = json!(NOTES);
    roost["site"] = json!(SITE);
    let roost_id: Uuid = roost["id"].as_str().expect("id").parse()?;
    let toad = records::sighting_json(observer.account_id, "Bufo bufo", 2);
    let mut phone = Phone::new_notebook(observer.notebook(), Some(observer.device.clone())).await?;
    for record in [&roost, &toad] {
        phone.record_raw(
            RecordKind::Sighting,
            record["id"].as_str().expect("id"),
            record,
        )?;
    }
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    let doc_id: String = eventually(TIMEOUT, "the roost in the inventory", || async {
        Ok(
            sqlx::query_scalar("SELECT doc_id FROM sightings WHERE id = $1")
                .bind(roost_id)
                .fetch_optional(pool)
                .await?,
        )
    })
    .await?;
    // Two phones once wrote the notes concurrently: both values are kept,
    // and must not go where the notes do not.
    sqlx::query(
        "UPDATE sightings SET conflicts = jsonb_build_array(jsonb_build_object( \
           'field', 'notes', 'winner', $2::text, 'values', jsonb_build_array($2::text, 'sous le toit'))) \
         WHERE id = $1",
    )
    .bind(roost_id)
    .bind(NOTES)
    .execute(pool)
    .await?;
    let (centre_lat, centre_lon) = roost_square_centre(pool).await?;

    let list = format!("/api/sightings?territory={t}");
    let find_roost = |rows: &Value| -> Value {
        rows.as_array()
            .into_iter()
            .flatten()
            .find(|row| row["id"] == json!(roost_id))
            .cloned()
            .unwrap_or_else(|| panic!("the roost is not listed: {rows}"))
    };
    for (who, token) in [
        ("another volunteer's phone", other_phone.token.as_str()),
        ("another volunteer's session", other_session.token.as_str()),
    ] {
        let (status, rows) = server.as_(token).get(&list).await?;
        assert_eq!(status, 200, "{who}: {rows}");
        let row = find_roost(&rows);
        let (lat, lon) = (
            row["decimalLatitude"].as_f64().unwrap_or(f64::NAN),
            row["decimalLongitude"].as_f64().unwrap_or(f64::NAN),
        );
        assert!(
            (lat - centre_lat).abs() < 1e-9 && (lon - centre_lon).abs() < 1e-9,
            "{who} reads the square's centre ({centre_lat}, {centre_lon}), not ({lat}, {lon})"
        );
        assert_eq!(
            (&row["notes"], &row["site"]),
            (&Value::Null, &Value::Null),
            "{who}"
        );
        // Half the square's diagonal, rounded up.
        assert_eq!(
            row["coordinateUncertaintyInMeters"].as_f64(),
            Some(708.0),
            "{who}"
        );
        assert_eq!(row["conflicts"], json!([]), "{who}");
        assert!(
            row["dataGeneralizations"]
                .as_str()
                .is_some_and(|text| text.contains("1000 m square")),
            "{who}: {row}"
        );
        // The toad is nobody's secret.
        let toad_row = rows
            .as_array()
            .into_iter()
            .flatten()
            .find(|row| row["id"] == toad["id"])
            .expect("the toad");
        assert_eq!(
            toad_row["decimalLatitude"], toad["decimalLatitude"],
            "{who}"
        );
        assert_eq!(toad_row["site"], toad["site"], "{who}");
    }

    for (who, token) in [
        ("the observer", observer.device.secret.as_str()),
        ("a coordinator", coordinator.token.as_str()),
        ("a régie auditor", auditor.token.as_str()),
        ("an admin", admin.token.as_str()),
    ] {
        let (status, rows) = server.as_(token).get(&list).await?;
        assert_eq!(status, 200, "{who}: {rows}");
        let row = find_roost(&rows);
        assert_eq!(
            (&row["decimalLatitude"], &row["decimalLongitude"]),
            (&json!(LATITUDE), &json!(LONGITUDE)),
            "{who} reads the exact position: {row}"
        );
        assert_eq!(
            (&row["notes"], &row["site"]),
            (&json!(NOTES), &json!(SITE)),
            "{who}"
        );
        assert_eq!(
            row["coordinateUncertaintyInMeters"].as_f64(),
            Some(12.0),
            "{who}"
        );
        assert_eq!(row["conflicts"][0]["values"][1], "sous le toit", "{who}");
        assert_eq!(row["dataGeneralizations"], "", "{who}");
    }

    // The review shows the territory's reviewers the record as it is.
    for (who, token) in [
        ("a coordinator", &coordinator.token),
        ("a régie auditor", &auditor.token),
    ] {
        let (status, body) = get_text(
            server,
            &format!("/api/territories/{t}/review/records/{roost_id}"),
            token,
        )
        .await?;
        assert_eq!(status, 200, "{who}: {body}");
        assert!(
            body.contains(&LATITUDE.to_string()) && body.contains(NOTES),
            "{who}: {body}"
        );
    }

    // Every route the server serves, as each of these volunteers, with the
    // roost's territory, record and notebook in its path: none answers the
    // exact position, the site or the notes (most refuse outright).
    let exact = [
        LATITUDE.to_string(),
        LONGITUDE.to_string(),
        NOTES.to_string(),
        SITE.to_string(),
        "sous le toit".to_string(),
    ];
    let mut read = 0;
    for (method, template) in server::http::route_list() {
        if method != Method::GET || template == "/sync" {
            // Writes change nothing a volunteer reads back here; the sync
            // channel gives another person's notebook to nobody but its
            // reviewers (tests/tests/sync_authorization.rs).
            continue;
        }
        let path = template
            .replace("{id}", &t.to_string())
            .replace("{record_id}", &roost_id.to_string())
            .replace("{doc_id}", &doc_id)
            .replace("{sha256}", &"ab".repeat(32))
            .replace("{effective_from}", "2026-01-01");
        let path = if path == "/api/sightings" {
            list.clone()
        } else {
            path
        };
        for (who, token) in [
            ("another volunteer's phone", other_phone.token.as_str()),
            ("another volunteer's session", other_session.token.as_str()),
        ] {
            let (status, body) = get_text(server, &path, token).await?;
            // The review, the audit trail, the exports and the live events
            // are their territory's reviewers' only.
            let reviewers_only = ["/review/", "/audit/", "/records/", "/exports/", "/events"]
                .iter()
                .any(|part| template.contains(part));
            assert!(
                status == 403 || !reviewers_only,
                "{who}: GET {path} answered {status}"
            );
            for secret in &exact {
                assert!(
                    !body.contains(secret.as_str()),
                    "{who}: GET {path} ({status}) answers {secret:?}: {body}"
                );
            }
            read += 1;
        }
    }
    assert!(read > 20, "only {read} routes read");
    Ok(())
}
