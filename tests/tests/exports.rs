//! Standard exports of a territory's validated inventory (issue 12), read
//! back by the tools the receiving platforms use: the Darwin Core Archive by
//! python-dwca-reader, its meta.xml and eml.xml against their XML schemas
//! (local copies in tests/schemas/dwca) with xmllint, the GeoJSON with
//! GDAL's ogrinfo, the CSVs by a CSV reader. Every row is checked against
//! what the phones recorded; a sensitive species is generalised to its
//! Lambert-93 grid square and the export says so.

use std::{path::Path, process::Command, time::Duration};

use fieldnotes_tests::{
    accounts::{self, call},
    eventually, init_test_logging, phones, python_venv, records, workspace_root, ServerProcess,
    TestDatabase,
};
use mobile_bridge::Phone;
use reqwest::Method;
use schemas::RecordKind;
use serde_json::{json, Value};
use server::auth::Role;
use sqlx::PgPool;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A sighting as the phone writes it, at (`latitude`, `longitude`).
fn sighting(
    author: Uuid,
    name: &str,
    taxon: i64,
    latitude: f64,
    longitude: f64,
    extra: Value,
) -> (Uuid, Value) {
    let mut json = records::sighting_json(author, name, 2);
    json["taxonID"] = json!(taxon);
    json["decimalLatitude"] = json!(latitude);
    json["decimalLongitude"] = json!(longitude);
    if let (Value::Object(map), Value::Object(extra)) = (&mut json, extra) {
        map.extend(extra);
    }
    let id = json["id"].as_str().expect("id").parse().expect("uuid");
    (id, json)
}

fn degradation(author: Uuid, category: &str, latitude: f64, longitude: f64) -> (Uuid, Value) {
    let id = Uuid::new_v4();
    let now = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    (
        id,
        json!({
            "id": id, "authorId": author, "deviceId": "phone-test",
            "createdAt": now, "modifiedAt": now, "observedAt": now,
            "category": category, "description": "Gravats déversés au bord du fossé",
            "decimalLatitude": latitude, "decimalLongitude": longitude,
            "site": "Fossé nord",
        }),
    )
}

/// The Lambert-93 square centre (and its WGS84 position) a point falls in,
/// computed from the coordinates the phone sent.
async fn grid_centre(
    pool: &PgPool,
    latitude: f64,
    longitude: f64,
    grid: f64,
) -> anyhow::Result<(f64, f64, f64, f64)> {
    let (x, y): (f64, f64) = sqlx::query_as(
        "SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint($1, $2), 4326), 2154) p",
    )
    .bind(longitude)
    .bind(latitude)
    .fetch_one(pool)
    .await?;
    let (cx, cy) = (
        (x / grid).floor() * grid + grid / 2.0,
        (y / grid).floor() * grid + grid / 2.0,
    );
    let (lat, lon): (f64, f64) = sqlx::query_as(
        "SELECT ST_Y(p), ST_X(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint($1, $2), 2154), 4326) p",
    )
    .bind(cx)
    .bind(cy)
    .fetch_one(pool)
    .await?;
    Ok((lat, lon, cx, cy))
}

/// Lambert-93 of an exact point.
async fn lambert93(pool: &PgPool, latitude: f64, longitude: f64) -> anyhow::Result<(f64, f64)> {
    Ok(sqlx::query_as(
        "SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint($1, $2), 4326), 2154) p",
    )
    .bind(longitude)
    .bind(latitude)
    .fetch_one(pool)
    .await?)
}

/// GETs `path` into `file`; returns the status and whether the answer
/// announced no length (streamed).
async fn download(
    server: &ServerProcess,
    path: &str,
    token: &str,
    file: &Path,
) -> anyhow::Result<(u16, bool)> {
    let response = reqwest::Client::new()
        .get(server.http_url(path))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status().as_u16();
    let streamed = response.headers().get("content-length").is_none();
    std::fs::write(file, response.bytes().await?)?;
    Ok((status, streamed))
}

fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command.output()?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

fn close(a: &Value, b: f64) -> bool {
    a.as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .or_else(|| a.as_f64())
        .is_some_and(|a| (a - b).abs() < 1e-6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_read_back_by_gbif_sinp_and_gis_tools_match_the_inventory_and_generalise_sensitive_species(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let url = server.sync_url();
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Friche de la Soie").await?;
    let t = territory.id;
    let coordinator =
        accounts::password_actor(&pool, "Marie", Some((t, Role::Coordinator)), false).await?;
    let auditor = accounts::password_actor(
        &pool,
        "Régie de la Soie",
        Some((t, Role::RegieAuditor)),
        false,
    )
    .await?;
    let camille = phones::enrol_volunteer(&pool, &territory, "Camille").await?;
    let a = camille.account_id;

    // The licence, the contact, and the crested newt as a sensitive taxon.
    let settings = json!({
        "licence": "CC-BY-4.0",
        "organisation": "Régie de la Soie",
        "contactName": "Marie Curtil",
        "contactEmail": "regie@example.org",
        "sensitiveGridMetres": 10000,
        "sensitiveTaxa": [{"taxonId": 444432, "scientificName": "Triturus cristatus"}],
    });
    let path = format!("/api/territories/{t}/export-settings");
    let (status, body) = call(
        &server,
        Method::PUT,
        &path,
        Some(&coordinator.token),
        Some(&settings),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, settings);
    let mut bad = settings.clone();
    bad["licence"] = json!("MIT");
    let (status, body) = call(
        &server,
        Method::PUT,
        &path,
        Some(&coordinator.token),
        Some(&bad),
    )
    .await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("licence")),
        "{body}"
    );
    let mut bad = settings.clone();
    bad["sensitiveTaxa"] =
        json!([{"scientificName": "Bufo bufo"}, {"scientificName": "bufo BUFO"}]);
    let (status, body) = call(
        &server,
        Method::PUT,
        &path,
        Some(&coordinator.token),
        Some(&bad),
    )
    .await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("sensitiveTaxa[1]")),
        "{body}"
    );
    let (status, _) = call(
        &server,
        Method::PUT,
        &path,
        Some(&auditor.token),
        Some(&settings),
    )
    .await?;
    assert_eq!(status, 403, "a régie auditor changes no setting");

    // A photo the server holds, for the hedgehog.
    let photo = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO photos (sha256, territory_id, uploaded_by, size, width, height, content_type, data, thumbnail) \
         VALUES ($1, $2, $3, 4, 1, 1, 'image/jpeg', '\\xffd8ffd9', '\\xffd8ffd9')",
    )
    .bind(&photo)
    .bind(t)
    .bind(a)
    .execute(&pool)
    .await?;

    let (hedgehog, hedgehog_json) = sighting(
        a,
        "Erinaceus europaeus",
        60015,
        45.7772,
        4.8550,
        json!({
            "photos": [photo], "notes": "sous la haie", "site": "Haie des Gones",
        }),
    );
    let (newt, newt_json) = sighting(
        a,
        "Triturus cristatus",
        444432,
        45.7811,
        4.8712,
        json!({
            "notes": "derrière le portail vert", "site": "Mare secrète",
        }),
    );
    let (doubtful, doubtful_json) = sighting(a, "Lynx lynx", 60912, 45.7790, 4.8601, json!({}));
    let (pending, pending_json) = sighting(a, "Pica pica", 3967, 45.7801, 4.8622, json!({}));
    let (dumping, dumping_json) = degradation(a, "waste_dumping", 45.7760, 4.8570);
    let (light, light_json) = degradation(a, "light_pollution", 45.7765, 4.8580);
    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    for (id, json) in [
        (hedgehog, &hedgehog_json),
        (newt, &newt_json),
        (doubtful, &doubtful_json),
        (pending, &pending_json),
    ] {
        phone.record_raw(RecordKind::Sighting, &id.to_string(), json)?;
    }
    for (id, json) in [(dumping, &dumping_json), (light, &light_json)] {
        phone.record_raw(RecordKind::DegradationReport, &id.to_string(), json)?;
    }
    phone.go_online(&url).await?;
    phone.wait_synced(TIMEOUT).await?;
    eventually(TIMEOUT, "the records in the inventory", || async {
        let (sightings, reports): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM sightings WHERE territory_id = $1), \
                    (SELECT count(*) FROM degradation_reports WHERE territory_id = $1)",
        )
        .bind(t)
        .fetch_one(&pool)
        .await?;
        Ok((sightings == 4 && reports == 2).then_some(()))
    })
    .await?;
    for (records, status) in [
        (vec![hedgehog], "1"),
        (vec![newt], "2"),
        (vec![doubtful], "3"),
    ] {
        let (code, body) = call(
            &server,
            Method::POST,
            &format!("/api/territories/{t}/review/decisions"),
            Some(&coordinator.token),
            Some(&json!({"decision": "verification", "status": status, "records": records})),
        )
        .await?;
        assert_eq!(code, 200, "{body}");
    }
    let hedgehog_l93 = lambert93(&pool, 45.7772, 4.8550).await?;
    let (newt_lat, newt_lon, newt_x, newt_y) = grid_centre(&pool, 45.7811, 4.8712, 10000.0).await?;
    let work = tempfile::tempdir()?;

    // --- The Darwin Core Archive, read back by python-dwca-reader.
    let archive = work.path().join("dwca.zip");
    let (status, streamed) = download(
        &server,
        &format!("/api/territories/{t}/exports/darwin-core-archive"),
        &auditor.token,
        &archive,
    )
    .await?;
    assert_eq!(status, 200);
    assert!(streamed, "the archive is streamed, not sized in advance");
    let python = python_venv()?;
    let read = run(Command::new(&python)
        .arg(workspace_root().join("tests/python/read_dwca.py"))
        .arg(&archive)
        .arg(work.path()))?;
    let archive: Value = serde_json::from_str(&read)?;
    assert_eq!(
        archive["files"],
        json!(["eml.xml", "meta.xml", "multimedia.txt", "occurrence.txt"])
    );
    assert_eq!(
        archive["coreRowType"],
        "http://rs.tdwg.org/dwc/terms/Occurrence"
    );
    assert_eq!(
        archive["extensionRowTypes"],
        json!(["http://rs.gbif.org/terms/1.0/Multimedia"])
    );
    assert_eq!(
        archive["metadataTitle"],
        "Urban nature inventory of Friche de la Soie"
    );
    let rows = archive["rows"].as_array().expect("rows");
    // Validated only: the hedgehog (certain) and the newt (probable).
    assert_eq!(rows.len(), 2, "{archive}");
    let dwc = |row: &Value, term: &str| {
        row["data"][format!("http://rs.tdwg.org/dwc/terms/{term}")].clone()
    };
    let by_name = |name: &str| {
        rows.iter()
            .find(|r| dwc(r, "scientificName") == name)
            .unwrap_or_else(|| panic!("{name} not in the archive: {archive}"))
    };
    let h = by_name("Erinaceus europaeus");
    assert_eq!(dwc(h, "occurrenceID"), hedgehog_json["occurrenceID"]);
    assert_eq!(h["id"], hedgehog_json["occurrenceID"]);
    assert_eq!(dwc(h, "taxonID"), "60015");
    assert_eq!(dwc(h, "recordedBy"), "Camille Martin");
    assert!(
        close(&dwc(h, "decimalLatitude"), 45.7772) && close(&dwc(h, "decimalLongitude"), 4.8550),
        "{h}"
    );
    assert_eq!(dwc(h, "coordinateUncertaintyInMeters"), "12");
    assert_eq!(dwc(h, "locality"), "Haie des Gones");
    assert_eq!(dwc(h, "occurrenceRemarks"), "sous la haie");
    assert_eq!(
        dwc(h, "identificationVerificationStatus"),
        "1 - Certain - très probable"
    );
    assert_eq!(dwc(h, "dataGeneralizations"), "");
    assert_eq!(
        h["data"]["http://purl.org/dc/terms/license"],
        "http://creativecommons.org/licenses/by/4.0/legalcode"
    );
    let media = h["extensions"].as_array().expect("extensions");
    assert_eq!(media.len(), 1, "{h}");
    let identifier = media[0]["data"]["http://purl.org/dc/terms/identifier"]
        .as_str()
        .unwrap_or("");
    assert!(
        identifier.ends_with(&format!("/api/photos/{photo}")),
        "{identifier}"
    );
    assert_eq!(
        media[0]["data"]["http://purl.org/dc/terms/type"],
        "StillImage"
    );
    assert_eq!(
        media[0]["data"]["http://purl.org/dc/terms/format"],
        "image/jpeg"
    );
    let n = by_name("Triturus cristatus");
    assert!(
        close(&dwc(n, "decimalLatitude"), newt_lat) && close(&dwc(n, "decimalLongitude"), newt_lon),
        "{n}"
    );
    assert_eq!(dwc(n, "coordinateUncertaintyInMeters"), "7072");
    assert_eq!(dwc(n, "locality"), "", "the sensitive site is withheld");
    assert_eq!(
        dwc(n, "occurrenceRemarks"),
        "",
        "the sensitive notes are withheld"
    );
    assert!(
        dwc(n, "dataGeneralizations")
            .as_str()
            .unwrap_or("")
            .contains("10000 m square"),
        "{n}"
    );
    assert!(
        dwc(n, "informationWithheld")
            .as_str()
            .unwrap_or("")
            .contains("Exact coordinates"),
        "{n}"
    );
    assert_eq!(dwc(n, "identificationVerificationStatus"), "2 - Probable");
    assert_eq!(n["extensions"], json!([]));

    // meta.xml and eml.xml against their schemas.
    let schemas = workspace_root().join("tests/schemas/dwca");
    for (file, schema) in [("meta.xml", "tdwg_dwc_text.xsd"), ("eml.xml", "eml.xsd")] {
        run(Command::new("xmllint")
            .args(["--noout", "--nonet", "--schema"])
            .arg(schemas.join(schema))
            .arg(work.path().join(file)))?;
    }
    let eml = std::fs::read_to_string(work.path().join("eml.xml"))?;
    assert!(
        eml.contains("<organizationName>Régie de la Soie</organizationName>"),
        "{eml}"
    );
    assert!(
        eml.contains("<electronicMailAddress>regie@example.org</electronicMailAddress>"),
        "{eml}"
    );
    assert!(eml.contains("2 sightings"), "{eml}");
    // A schema that fails is a failing check: a broken eml.xml is refused.
    let broken = work.path().join("broken-eml.xml");
    std::fs::write(
        &broken,
        eml.replace("<pubDate>", "<pubDate>June ").as_bytes(),
    )?;
    assert!(run(Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schemas.join("eml.xsd"))
        .arg(&broken))
    .is_err());

    // Other statuses on request; a malformed list is refused, naming it.
    let with_doubtful = work.path().join("doubtful.csv");
    let (status, _) = download(
        &server,
        &format!("/api/territories/{t}/exports/sightings.csv?validation=3"),
        &auditor.token,
        &with_doubtful,
    )
    .await?;
    assert_eq!(status, 200);
    let mut reader = csv::Reader::from_path(&with_doubtful)?;
    let doubtful_rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    assert_eq!(doubtful_rows.len(), 1);
    assert_eq!(&doubtful_rows[0][0], doubtful.to_string());
    let (status, body) = call(
        &server,
        Method::GET,
        &format!("/api/territories/{t}/exports/sightings.csv?validation=1,9"),
        Some(&auditor.token),
        None,
    )
    .await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("validation")),
        "{body}"
    );
    let volunteer = camille.device.secret.clone();
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("/api/territories/{t}/exports/darwin-core-archive"),
        Some(&volunteer),
        None,
    )
    .await?;
    assert_eq!(status, 403, "volunteers do not export the territory");

    // --- GeoJSON, opened by GDAL.
    for (export, count, fields) in [
        (
            "sightings.geojson",
            2,
            [
                "scientificName",
                "taxonID",
                "validationStatus",
                "dataGeneralizations",
                "informationWithheld",
            ],
        ),
        (
            "degradation-reports.geojson",
            2,
            ["category", "status", "description", "site", "observedAt"],
        ),
    ] {
        let file = work.path().join(export);
        let (status, _) = download(
            &server,
            &format!("/api/territories/{t}/exports/{export}"),
            &coordinator.token,
            &file,
        )
        .await?;
        assert_eq!(status, 200);
        let info = run(Command::new("ogrinfo")
            .args(["-ro", "-al", "-so"])
            .arg(&file))?;
        assert!(
            info.contains(&format!("Feature Count: {count}")),
            "{export}: {info}"
        );
        assert!(info.contains("Geometry: Point"), "{export}: {info}");
        for field in fields {
            assert!(
                info.contains(&format!("{field}: ")),
                "{export} lacks {field}: {info}"
            );
        }
        let collection: Value = serde_json::from_slice(&std::fs::read(&file)?)?;
        if export == "sightings.geojson" {
            let newt_feature = collection["features"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["properties"]["id"] == json!(newt))
                .expect("the newt");
            let coordinates = &newt_feature["geometry"]["coordinates"];
            assert!(
                close(&coordinates[0], newt_lon) && close(&coordinates[1], newt_lat),
                "{newt_feature}"
            );
            assert_eq!(newt_feature["properties"]["site"], Value::Null);
        } else {
            let ids: Vec<Value> = collection["features"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| f["properties"]["id"].clone())
                .collect();
            assert_eq!(ids.len(), 2);
            assert!(
                ids.contains(&json!(dumping)) && ids.contains(&json!(light)),
                "{collection}"
            );
        }
    }

    // --- The SINP CSV: TAXREF ids, both coordinate systems, floutage.
    let file = work.path().join("sinp.csv");
    let (status, _) = download(
        &server,
        &format!("/api/territories/{t}/exports/sinp.csv"),
        &auditor.token,
        &file,
    )
    .await?;
    assert_eq!(status, 200);
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_path(&file)?;
    let header = reader.headers()?.clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}: {header:?}"))
    };
    let sinp: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    assert_eq!(sinp.len(), 2);
    let row = |cd_nom: &str| {
        sinp.iter()
            .find(|r| &r[column("cdNom")] == cd_nom)
            .expect("row")
    };
    let h = row("60015");
    assert_eq!(&h[column("nomCite")], "Erinaceus europaeus");
    assert_eq!(&h[column("observateur")], "Camille Martin");
    assert_eq!(&h[column("statutValidation")], "1");
    assert_eq!(&h[column("statutObservation")], "Pr");
    assert_eq!(&h[column("dateDebut")], &h[column("dateFin")]);
    assert_eq!(&h[column("xLambert93")], format!("{:.0}", hedgehog_l93.0));
    assert_eq!(&h[column("yLambert93")], format!("{:.0}", hedgehog_l93.1));
    assert_eq!(&h[column("floutage")], "NON");
    let n = row("444432");
    assert_eq!(&n[column("xLambert93")], format!("{newt_x:.0}"));
    assert_eq!(&n[column("yLambert93")], format!("{newt_y:.0}"));
    assert_eq!(&n[column("floutage")], "OUI (maille 10000 m)");
    assert_eq!(&n[column("commentaire")], "");

    // --- The degradation CSV.
    let file = work.path().join("degradation.csv");
    let (status, _) = download(
        &server,
        &format!("/api/territories/{t}/exports/degradation-reports.csv"),
        &auditor.token,
        &file,
    )
    .await?;
    assert_eq!(status, 200);
    let mut reader = csv::Reader::from_path(&file)?;
    let reports: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    assert_eq!(reports.len(), 2);
    assert!(reports
        .iter()
        .any(|r| r[0] == dumping.to_string() && &r[1] == "waste_dumping" && &r[9] == "received"));
    Ok(())
}
