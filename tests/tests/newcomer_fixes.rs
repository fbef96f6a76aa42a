//! What a newcomer hit on the server side (issue 24, item 5), each fixed and
//! checked here through the API: conflict values dated by their change, in
//! RFC 3339; bookkeeping fields (`modifiedAt`) never offered as conflicts; a
//! sighting's taxon found by name when it came without an id; decimal
//! commas in amounts; a Darwin Core Archive whose files are readable; the
//! server's address in the invitation's QR payload; a stable code on every
//! refusal; no credential in the field app's sync URL or the server's log.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fieldnotes_tests::{
    accounts, eventually, init_test_logging, records, world::World, ServerProcess, TestDatabase,
};
use mobile_bridge::Phone;
use schemas::RecordKind;
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The conflict queue's entry for `record`, as the coordinator reads it.
async fn queued(world: &World, record: uuid::Uuid) -> anyhow::Result<Value> {
    let t = world.territory.id;
    let (status, page) = world
        .server
        .as_(&world.coordinator().token)
        .get(&format!(
            "/api/territories/{t}/review/conflicts?kind=sighting"
        ))
        .await?;
    assert_eq!(status, 200, "{page}");
    Ok(page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == record.to_string()))
        .cloned()
        .unwrap_or_else(|| panic!("record {record} in the conflict queue: {page}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_values_are_dated_when_their_phone_wrote_them_in_rfc_3339() -> anyhow::Result<()> {
    let started = Utc::now();
    let mut world = World::builder("Prairie des Saules")
        .coordinator("Marie")
        .volunteer("Camille")
        .second_device("Camille")
        .two_phone_conflict("Camille")
        .build()
        .await?;
    let record = world.take_conflict().record;
    let finished = Utc::now();

    let item = queued(&world, record).await?;
    let count = item["conflicts"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["field"] == "individualCount"))
        .unwrap_or_else(|| panic!("individualCount in conflict: {item}"));
    let values = count["values"].as_array().expect("values");
    assert_eq!(values.len(), 2, "{count}");
    let a_few_minutes = chrono::Duration::minutes(5);
    for value in values {
        let written = value["writtenAt"]
            .as_str()
            .unwrap_or_else(|| panic!("writtenAt as a string: {value}"));
        let at: DateTime<Utc> = DateTime::parse_from_rfc3339(written)
            .unwrap_or_else(|e| panic!("writtenAt {written} in RFC 3339: {e}"))
            .into();
        assert!(
            started - a_few_minutes <= at && at <= finished + a_few_minutes,
            "{written} is when the phone wrote it, between {started} and {finished}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_list_only_the_fields_in_disagreement_not_modified_at(
) -> anyhow::Result<()> {
    let mut world = World::builder("Prairie des Saules")
        .coordinator("Marie")
        .volunteer("Camille")
        .second_device("Camille")
        .two_phone_conflict("Camille")
        .build()
        .await?;
    let mut conflict = world.take_conflict();
    let record = conflict.record;
    let url = world.server.sync_url();

    // A second offline round, as phones edit: the field and `modifiedAt`.
    conflict.phone_a.go_offline();
    conflict.phone_b.go_offline();
    for (phone, notes) in [
        (&conflict.phone_a, "deux adultes"),
        (&conflict.phone_b, "un adulte, un jeune"),
    ] {
        let now = Utc::now().to_rfc3339();
        phone.edit(RecordKind::Sighting, record, "notes", &json!(notes))?;
        phone.edit(RecordKind::Sighting, record, "modifiedAt", &json!(now))?;
    }
    for phone in [&mut conflict.phone_a, &mut conflict.phone_b] {
        phone.go_online(&url).await?;
        phone.wait_synced(TIMEOUT).await?;
    }
    let stored: Value = eventually(TIMEOUT, "both rounds in the inventory", || async {
        let conflicts: Option<Value> =
            sqlx::query_scalar("SELECT conflicts FROM sightings WHERE id = $1 AND has_conflicts")
                .bind(record)
                .fetch_optional(&world.pool)
                .await?;
        let notes_in = conflicts
            .as_ref()
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["field"] == "notes"));
        Ok(conflicts.filter(|_| notes_in))
    })
    .await?;
    let fields = |conflicts: &Value| -> Vec<String> {
        let mut fields: Vec<String> = conflicts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["field"].as_str().map(str::to_string))
            .collect();
        fields.sort();
        fields
    };
    assert_eq!(fields(&stored), ["individualCount", "notes"], "{stored}");
    let item = queued(&world, record).await?;
    assert_eq!(
        fields(&item["conflicts"]),
        ["individualCount", "notes"],
        "{item}"
    );

    // Resolving a bookkeeping field is refused, naming it.
    let t = world.territory.id;
    let (status, body) = world
        .server
        .as_(&world.coordinator().token)
        .post(
            &format!("/api/territories/{t}/review/conflicts/{record}/resolution"),
            &json!({"field": "modifiedAt", "value": Utc::now().to_rfc3339()}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "field", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("modifiedAt")),
        "{body}"
    );
    Ok(())
}

/// Sightings of `Parus major` with and without a taxon id, and a misspelt
/// one, as the field app and `fieldkit` send them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighting_without_taxon_id_is_resolved_by_name_for_duplicates_exports_and_warnings(
) -> anyhow::Result<()> {
    let world = World::builder("Bois de la Cerisaie")
        .coordinator("Marie")
        .volunteer("Camille")
        .build()
        .await?;
    let (server, t) = (&world.server, world.territory.id);
    let marie = world.coordinator();
    let camille = world.volunteer("Camille");

    let list = "CD_NOM;LB_NOM;NOM_VERN\n3764;Parus major;Mésange charbonnière\n\
                534742;Cyanistes caeruleus;Mésange bleue\n";
    let response = reqwest::Client::new()
        .put(server.http_url(&format!("/api/territories/{t}/species-list")))
        .bearer_auth(&marie.token)
        .header("content-type", "text/csv")
        .body(list)
        .send()
        .await?;
    assert_eq!(response.status(), 200, "{}", response.text().await?);

    // The field app's, with its id; fieldkit's, 11 m north and a minute
    // later, typed with odd case and spaces and no id; a misspelt one.
    let at = Utc::now() - chrono::Duration::minutes(30);
    let sighting = |name: &str, taxon: Option<i64>, north_m: f64, minutes: i64| {
        let mut json = records::sighting_json(camille.account_id, name, 1);
        json["eventDate"] = json!((at + chrono::Duration::minutes(minutes)).to_rfc3339());
        json["decimalLatitude"] = json!(45.7772 + north_m / 111_195.0);
        json["coordinateUncertaintyInMeters"] = json!(5.0);
        if let Some(id) = taxon {
            json["taxonID"] = json!(id);
        }
        json
    };
    let app = sighting("Parus major", Some(3764), 0.0, 0);
    let fieldkit = sighting("parus  Major", None, 11.0, 1);
    let misspelt = sighting("Parus majr", None, 2000.0, 300);
    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    for record in [&app, &fieldkit, &misspelt] {
        phone.record_raw(RecordKind::Sighting, record["id"].as_str().unwrap(), record)?;
    }
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    let id = |record: &Value| record["id"].as_str().unwrap().to_string();
    let taxa: Vec<(String, Option<i64>)> = eventually(TIMEOUT, "the three sightings", || async {
        let rows: Vec<(uuid::Uuid, Option<i64>)> = sqlx::query_as(
            "SELECT id, taxon_id FROM sightings WHERE territory_id = $1 ORDER BY event_date",
        )
        .bind(t)
        .fetch_all(&world.pool)
        .await?;
        Ok((rows.len() == 3).then(|| {
            rows.into_iter()
                .map(|(id, taxon)| (id.to_string(), taxon))
                .collect()
        }))
    })
    .await?;
    assert_eq!(
        taxa,
        [
            (id(&app), Some(3764)),
            (id(&fieldkit), Some(3764)),
            (id(&misspelt), None)
        ]
    );

    // Proposed as duplicates.
    let (status, page) = server
        .as_(&marie.token)
        .get(&format!("/api/territories/{t}/review/duplicates"))
        .await?;
    assert_eq!(status, 200, "{page}");
    let pairs: Vec<[String; 2]> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let mut ids = [
                pair["a"]["id"].as_str().unwrap().to_string(),
                pair["b"]["id"].as_str().unwrap().to_string(),
            ];
            ids.sort();
            ids
        })
        .collect();
    let mut expected = [id(&app), id(&fieldkit)];
    expected.sort();
    assert_eq!(pairs, [expected], "{page}");

    // Only the misspelt one is warned about.
    let (status, rows) = server
        .as_(&marie.token)
        .get(&format!("/api/sightings?territory={t}"))
        .await?;
    assert_eq!(status, 200, "{rows}");
    for row in rows.as_array().unwrap() {
        let unknown: Vec<&Value> = row["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["code"] == "unknownName")
            .collect();
        if row["id"] == id(&misspelt) {
            assert_eq!(unknown.len(), 1, "{row}");
            assert_eq!(unknown[0]["field"], "scientificName", "{row}");
        } else {
            assert!(unknown.is_empty(), "{row}");
        }
    }

    // The SINP export names the taxon of the one that came without an id.
    let (status, body) = server
        .as_(&marie.token)
        .post(
            &format!("/api/territories/{t}/review/decisions"),
            &json!({"decision": "verification", "status": "1", "records": [id(&fieldkit)]}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let response = reqwest::Client::new()
        .get(server.http_url(&format!("/api/territories/{t}/exports/sinp.csv")))
        .bearer_auth(&marie.token)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let sinp = response.text().await?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(sinp.as_bytes());
    let header = reader.headers()?.clone();
    let cd_nom = header.iter().position(|h| h == "cdNom").expect("cdNom");
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    assert_eq!(rows.len(), 1, "{sinp}");
    assert_eq!(&rows[0][cd_nom], "3764", "{sinp}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hourly_rate_typed_with_a_decimal_comma_is_accepted() -> anyhow::Result<()> {
    let world = World::builder("Berges de la Saône")
        .coordinator("Marie")
        .build()
        .await?;
    let (server, t) = (&world.server, world.territory.id);
    let marie = world.coordinator();
    let set = |from: &'static str, euros: &'static str| {
        let path = format!("/api/territories/{t}/hourly-rates/{from}");
        async move {
            server
                .as_(&marie.token)
                .put(&path, &json!({"euroPerHour": euros, "basis": "smic"}))
                .await
        }
    };
    let (status, rates) = set("2026-01-01", "11,88").await?;
    assert_eq!(status, 200, "{rates}");
    assert_eq!(rates[0]["centsPerHour"], 1188, "{rates}");
    for bad in ["11,8,8", "11,888", "onze"] {
        let (status, body) = set("2026-02-01", bad).await?;
        assert_eq!(
            (status, &body["error"]["field"]),
            (400, &json!("euroPerHour")),
            "{bad}: {body}"
        );
    }
    Ok(())
}

/// Each entry of a zip's central directory: its name, the host its
/// attributes are for (3: Unix) and its external attributes.
fn zip_entries(zip: &[u8]) -> Vec<(String, u8, u32)> {
    let u16_at = |at: usize| u16::from_le_bytes([zip[at], zip[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(zip[at..at + 4].try_into().unwrap());
    let end = (0..=zip.len() - 22)
        .rev()
        .find(|&at| zip[at..at + 4] == [0x50, 0x4b, 0x05, 0x06])
        .expect("the end of the central directory");
    let (count, mut at) = (u16_at(end + 10), u32_at(end + 16) as usize);
    let mut entries = Vec::new();
    for _ in 0..count {
        assert_eq!(
            zip[at..at + 4],
            [0x50, 0x4b, 0x01, 0x02],
            "a central header"
        );
        let name_len = u16_at(at + 28);
        let name = String::from_utf8_lossy(&zip[at + 46..at + 46 + name_len]).to_string();
        entries.push((name, zip[at + 5], u32_at(at + 38)));
        at += 46 + name_len + u16_at(at + 30) + u16_at(at + 32);
    }
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_darwin_core_archive_unzips_to_files_everyone_can_read() -> anyhow::Result<()> {
    let world = World::builder("Marais du Vernay")
        .coordinator("Marie")
        .build()
        .await?;
    let t = world.territory.id;
    let response = reqwest::Client::new()
        .get(
            world
                .server
                .http_url(&format!("/api/territories/{t}/exports/darwin-core-archive")),
        )
        .bearer_auth(&world.coordinator().token)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let zip = response.bytes().await?;
    let entries = zip_entries(&zip);
    let names: Vec<&str> = entries.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["occurrence.txt", "multimedia.txt", "meta.xml", "eml.xml"]
    );
    for (name, host, attributes) in &entries {
        assert_eq!(*host, 3, "{name}: Unix attributes");
        assert_eq!(
            attributes >> 16,
            0o100644,
            "{name}: a regular file, rw-r--r-- ({:o})",
            attributes >> 16
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qr_payload_carries_the_servers_public_address() -> anyhow::Result<()> {
    // Without --public-url: the address the coordinator reached.
    let world = World::builder("Îles du Rhône")
        .coordinator("Marie")
        .build()
        .await?;
    let invite = json!({ "territoryId": world.territory.id, "displayName": "Lou" });
    let (status, invitation) = world
        .server
        .as_(&world.coordinator().token)
        .post("/api/invitations", &invite)
        .await?;
    assert_eq!(status, 201, "{invitation}");
    let qr: Value = serde_json::from_str(invitation["qrPayload"].as_str().unwrap())?;
    assert_eq!(qr["code"], invitation["code"], "{qr}");
    let reached = world.server.http_url("");
    assert_eq!(qr["server"], reached.trim_end_matches('/'), "{qr}");

    // With it: that address, whatever the request came to.
    let world = World::builder("Îles du Rhône")
        .coordinator("Marie")
        .server_args(&["--public-url", "https://terrain.example.org/"])
        .build()
        .await?;
    let invite = json!({ "territoryId": world.territory.id, "displayName": "Lou" });
    let (status, invitation) = world
        .server
        .as_(&world.coordinator().token)
        .post("/api/invitations", &invite)
        .await?;
    assert_eq!(status, 201, "{invitation}");
    let qr: Value = serde_json::from_str(invitation["qrPayload"].as_str().unwrap())?;
    assert_eq!(qr["server"], "https://terrain.example.org", "{qr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_a_stable_code_the_openapi_document_describes() -> anyhow::Result<()> {
    let world = World::builder("Coteaux de Vénissieux")
        .coordinator("Marie")
        .volunteer("Camille")
        .build()
        .await?;
    let (server, t) = (&world.server, world.territory.id);
    let marie = world.coordinator();
    let code_of = |(status, body): (u16, Value)| {
        (
            status,
            body["error"]["code"].as_str().unwrap_or("none").to_string(),
        )
    };
    let email = marie.login.as_ref().unwrap().email.clone();
    let wrong_password = json!({"email": email, "password": "not the password"});
    assert_eq!(
        code_of(
            server
                .anonymous()
                .post("/api/auth/login", &wrong_password)
                .await?
        ),
        (401, "wrong_password".to_string())
    );
    assert_eq!(
        code_of(server.anonymous().get("/api/sightings").await?),
        (401, "unauthenticated".to_string())
    );
    let unknown = json!({"code": "ZZZZZ-ZZZZZ", "deviceName": "Lou's phone"});
    assert_eq!(
        code_of(server.anonymous().post("/api/enrol", &unknown).await?),
        (401, "unknown_invitation".to_string())
    );
    let invite = json!({ "territoryId": t, "displayName": "Lou" });
    let (status, invitation) = server
        .as_(&marie.token)
        .post("/api/invitations", &invite)
        .await?;
    assert_eq!(status, 201, "{invitation}");
    let redeem = json!({"code": invitation["code"], "deviceName": "Lou's phone"});
    let (status, body) = server.anonymous().post("/api/enrol", &redeem).await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        code_of(server.anonymous().post("/api/enrol", &redeem).await?),
        (410, "invitation_used".to_string())
    );
    let camille = &world.volunteer("Camille").device.secret;
    assert_eq!(
        code_of(
            server
                .as_(camille)
                .put(
                    &format!("/api/territories/{t}/hourly-rates/2026-01-01"),
                    &json!({"euroPerHour": "12", "basis": "smic"}),
                )
                .await?
        ),
        (403, "forbidden".to_string())
    );
    let (status, body) = server
        .as_(&marie.token)
        .get(&format!("/api/territories/{t}/review/records?limit=0"))
        .await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid")),
        "{body}"
    );
    assert_eq!(body["error"]["field"], "limit", "{body}");

    // The document says so: every error body has a `code`.
    let (status, document) = server.anonymous().get("/api/openapi.json").await?;
    assert_eq!(status, 200);
    let detail = &document["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["properties"]["code"]["type"], "string", "{detail}");
    assert!(
        detail["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("code"))),
        "{detail}"
    );
    Ok(())
}

/// A WebSocket upgrade to `/sync` with the field app's cookie, from a page of
/// `origin`: its HTTP status (101 when it connected).
async fn sync_with_cookie(
    server: &ServerProcess,
    credential: &str,
    origin: &str,
) -> anyhow::Result<u16> {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Error};
    let mut request = server.sync_url().as_str().into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(
        "cookie",
        format!("theme=dark; fieldnotes_sync={credential}").parse()?,
    );
    headers.insert("origin", origin.parse()?);
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => Ok(response.status().as_u16()),
        Err(Error::Http(response)) => Ok(response.status().as_u16()),
        Err(other) => Err(other.into()),
    }
}

/// The field app's sync URL holds no credential (the browser prints it when
/// offline): the credential goes in a cookie the server takes from its own
/// origin only, and the server logs no credential of either way in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_credential_travels_in_a_same_origin_cookie_and_reaches_no_log(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let log = tempfile::NamedTempFile::new()?;
    let server =
        ServerProcess::start_logged(&db.url, log.path(), "debug,tower_http=trace,axum=trace")?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let credential = &f.volunteer.token;

    let own_origin = server.http_url("");
    assert_eq!(
        sync_with_cookie(&server, credential, own_origin.trim_end_matches('/')).await?,
        101
    );
    assert_eq!(
        sync_with_cookie(&server, credential, "https://elsewhere.example").await?,
        401,
        "another site's page cannot sync on the phone's cookie"
    );
    let mut query = server.sync_url();
    query.set_query(Some(&format!("token={credential}")));
    tokio_tungstenite::connect_async(query.as_str()).await?;

    let text = std::fs::read_to_string(log.path())?;
    assert!(text.contains("sync connection authenticated"), "{text}");
    assert!(
        !text.contains(credential.as_str()),
        "the credential in the log"
    );
    let secret = credential.trim_start_matches("fnd_");
    assert!(!text.contains(secret), "the credential in the log");
    Ok(())
}
