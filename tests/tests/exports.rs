//! Standard exports of a territory's validated inventory (issue 12), read
//! back by the tools the receiving platforms use: the Darwin Core Archive by
//! python-dwca-reader, its meta.xml and eml.xml against their XML schemas
//! (local copies in tests/schemas/dwca) with xmllint, the GeoJSON with
//! GDAL's ogrinfo, the CSVs by a CSV reader. Every row is checked against
//! what the phones recorded; a sensitive species is generalised to its
//! Lambert-93 grid square and the export says so.

use std::{path::Path, process::Command, time::Duration};

use fieldnotes_tests::{
    api::expect_status, eventually, phones, python_venv, records, workspace_root, world::World,
    ServerProcess,
};
use mobile_bridge::Phone;
use schemas::RecordKind;
use serde_json::{json, Value};
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
    let world = World::builder("Friche de la Soie")
        .coordinator("Marie")
        .auditor("Régie de la Soie")
        .volunteer("Camille")
        .build()
        .await?;
    let (server, pool, t) = (&world.server, &world.pool, world.territory.id);
    let url = server.sync_url();
    let (coordinator, auditor) = (world.coordinator(), world.auditor());
    let camille = world.volunteer("Camille");
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
    let (status, body) = server.as_(&coordinator.token).put(&path, &settings).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, settings);
    let mut bad = settings.clone();
    bad["licence"] = json!("MIT");
    let (status, body) = server.as_(&coordinator.token).put(&path, &bad).await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("licence")),
        "{body}"
    );
    let mut bad = settings.clone();
    bad["sensitiveTaxa"] =
        json!([{"scientificName": "Bufo bufo"}, {"scientificName": "bufo BUFO"}]);
    let (status, body) = server.as_(&coordinator.token).put(&path, &bad).await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("sensitiveTaxa[1]")),
        "{body}"
    );
    let (status, _) = server.as_(&auditor.token).put(&path, &settings).await?;
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
    .execute(pool)
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
        .fetch_one(pool)
        .await?;
        Ok((sightings == 4 && reports == 2).then_some(()))
    })
    .await?;
    for (records, status) in [
        (vec![hedgehog], "1"),
        (vec![newt], "2"),
        (vec![doubtful], "3"),
    ] {
        let (code, body) = server
            .as_(&coordinator.token)
            .post(
                &format!("/api/territories/{t}/review/decisions"),
                &json!({"decision": "verification", "status": status, "records": records}),
            )
            .await?;
        assert_eq!(code, 200, "{body}");
    }
    let hedgehog_l93 = lambert93(pool, 45.7772, 4.8550).await?;
    let (newt_lat, newt_lon, newt_x, newt_y) = grid_centre(pool, 45.7811, 4.8712, 10000.0).await?;
    let work = tempfile::tempdir()?;

    // --- The Darwin Core Archive, read back by python-dwca-reader.
    let archive = work.path().join("dwca.zip");
    let (status, streamed) = download(
        server,
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
        server,
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
    let (status, body) = server
        .as_(&auditor.token)
        .get(&format!(
            "/api/territories/{t}/exports/sightings.csv?validation=1,9"
        ))
        .await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("validation")),
        "{body}"
    );
    let volunteer = camille.device.secret.clone();
    let (status, _) = server
        .as_(&volunteer)
        .get(&format!("/api/territories/{t}/exports/darwin-core-archive"))
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
            server,
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
        server,
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
        server,
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

/// Records `sightings` and `reports` (id, phone JSON) on a new phone of
/// `volunteer` and waits until the inventory holds them all.
async fn record_on_a_phone(
    server: &ServerProcess,
    pool: &PgPool,
    volunteer: &phones::Volunteer,
    sightings: &[(Uuid, Value)],
    reports: &[(Uuid, Value)],
) -> anyhow::Result<Phone> {
    let mut phone =
        Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
    for (id, json) in sightings {
        phone.record_raw(RecordKind::Sighting, &id.to_string(), json)?;
    }
    for (id, json) in reports {
        phone.record_raw(RecordKind::DegradationReport, &id.to_string(), json)?;
    }
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    let t = volunteer.territory_id;
    let expected = (sightings.len() as i64, reports.len() as i64);
    eventually(TIMEOUT, "the records in the inventory", || async {
        let counts: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM sightings WHERE territory_id = $1), \
                    (SELECT count(*) FROM degradation_reports WHERE territory_id = $1)",
        )
        .bind(t)
        .fetch_one(pool)
        .await?;
        Ok((counts == expected).then_some(()))
    })
    .await?;
    Ok(phone)
}

/// Sets the territory's export settings (grid and sensitive taxa) as its
/// coordinator.
async fn set_sensitive_taxa(
    server: &ServerProcess,
    territory: Uuid,
    coordinator: &str,
    grid: i32,
    taxa: Value,
) -> anyhow::Result<()> {
    let settings = json!({
        "licence": "CC-BY-4.0",
        "sensitiveGridMetres": grid,
        "sensitiveTaxa": taxa,
    });
    let path = format!("/api/territories/{territory}/export-settings");
    expect_status(server.as_(coordinator).put(&path, &settings).await?, 200)?;
    Ok(())
}

/// A table as exported: its header and rows of cells, read back with the
/// format's own reader (the csv crate for CSV, the Darwin Core text guide's
/// rule — tab-separated, no quoting — for the archive's files).
struct Table {
    name: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn csv(name: &str, file: &Path, delimiter: u8) -> anyhow::Result<Table> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .from_path(file)?;
        let header = reader.headers()?.iter().map(str::to_string).collect();
        let rows = reader
            .records()
            .map(|r| Ok(r?.iter().map(str::to_string).collect()))
            .collect::<anyhow::Result<_>>()?;
        Ok(Table {
            name: name.to_string(),
            header,
            rows,
        })
    }

    fn from_archive(archive: &Path, entry: &str) -> anyhow::Result<Table> {
        let text = run(Command::new("unzip").arg("-p").arg(archive).arg(entry))?;
        let mut lines = text.lines();
        let split = |line: &str| line.split('\t').map(str::to_string).collect::<Vec<_>>();
        let header = split(lines.next().unwrap_or_default());
        Ok(Table {
            name: entry.to_string(),
            header,
            rows: lines.map(split).collect(),
        })
    }

    /// The cell of `column` in the row whose `key_column` is `key`.
    fn cell(&self, key_column: &str, key: &str, column: &str) -> String {
        let index = |name: &str| {
            self.header
                .iter()
                .position(|h| h == name)
                .unwrap_or_else(|| panic!("{}: no column {name}: {:?}", self.name, self.header))
        };
        let (k, c) = (index(key_column), index(column));
        self.rows
            .iter()
            .find(|row| row[k] == key)
            .unwrap_or_else(|| panic!("{}: no row {key}", self.name))[c]
            .clone()
    }
}

/// Every sighting format of `territory` (pending sightings included), each
/// as (format, id column, latitude, longitude, notes, site — None where the
/// format has no such column) read back per occurrence id.
struct SightingFormats {
    tables: Vec<(Table, [&'static str; 4], Option<&'static str>)>,
    geojson: Value,
}

impl SightingFormats {
    async fn download(
        server: &ServerProcess,
        territory: Uuid,
        token: &str,
        dir: &Path,
    ) -> anyhow::Result<SightingFormats> {
        let get = |export: &'static str| {
            let file = dir.join(export);
            async move {
                let (status, _) = download(
                    server,
                    &format!("/api/territories/{territory}/exports/{export}?validation=0,1,2"),
                    token,
                    &file,
                )
                .await?;
                anyhow::ensure!(status == 200, "{export}: {status}");
                anyhow::Ok(file)
            }
        };
        let archive = get("darwin-core-archive").await?;
        let csv = get("sightings.csv").await?;
        let sinp = get("sinp.csv").await?;
        let geojson = serde_json::from_slice(&std::fs::read(get("sightings.geojson").await?)?)?;
        Ok(SightingFormats {
            tables: vec![
                (
                    Table::from_archive(&archive, "occurrence.txt")?,
                    [
                        "occurrenceID",
                        "decimalLatitude",
                        "decimalLongitude",
                        "occurrenceRemarks",
                    ],
                    Some("locality"),
                ),
                (
                    Table::csv("sightings.csv", &csv, b',')?,
                    [
                        "occurrenceID",
                        "decimalLatitude",
                        "decimalLongitude",
                        "notes",
                    ],
                    Some("site"),
                ),
                (
                    Table::csv("sinp.csv", &sinp, b';')?,
                    [
                        "idOrigine",
                        "latitudeWGS84",
                        "longitudeWGS84",
                        "commentaire",
                    ],
                    None,
                ),
            ],
            geojson,
        })
    }

    /// (format, latitude, longitude, notes, site) of `occurrence` in each format.
    fn of(&self, occurrence: &str) -> Vec<(String, f64, f64, String, String)> {
        let mut found = Vec::new();
        for (table, [id, lat, lon, notes], site) in &self.tables {
            let number = |column| {
                table
                    .cell(id, occurrence, column)
                    .parse::<f64>()
                    .unwrap_or(f64::NAN)
            };
            found.push((
                table.name.clone(),
                number(lat),
                number(lon),
                table.cell(id, occurrence, notes),
                site.map(|s| table.cell(id, occurrence, s))
                    .unwrap_or_default(),
            ));
        }
        let feature = self.geojson["features"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["properties"]["occurrenceID"] == occurrence)
            .unwrap_or_else(|| panic!("{occurrence} not in the GeoJSON"));
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        found.push((
            "sightings.geojson".to_string(),
            feature["geometry"]["coordinates"][1]
                .as_f64()
                .unwrap_or(f64::NAN),
            feature["geometry"]["coordinates"][0]
                .as_f64()
                .unwrap_or(f64::NAN),
            text(&feature["properties"]["notes"]),
            text(&feature["properties"]["site"]),
        ));
        found
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_taxa_are_generalised_in_every_format_whatever_the_spelling_of_their_name(
) -> anyhow::Result<()> {
    let world = World::builder("Moulin de Vaise")
        .coordinator("Marie")
        .volunteer("Camille")
        .build()
        .await?;
    let (server, pool, t) = (&world.server, &world.pool, world.territory.id);
    let coordinator = world.coordinator();
    let camille = world.volunteer("Camille");
    // A species named with its authorship, and a genus: no taxon ids, so
    // only the names can match.
    set_sensitive_taxa(
        server,
        t,
        &coordinator.token,
        1000,
        json!([
            {"scientificName": "Myotis daubentonii (Kuhl, 1817)"},
            {"scientificName": "Rhinolophus"},
        ]),
    )
    .await?;
    let spellings = [
        "Myotis daubentonii",
        "Myotis daubentonii Kuhl, 1817",
        "Myotis  daubentonii",
        "Myotis\u{a0}daubentonii",
        "Myotis\u{202f}daubentonii (Kuhl,\u{a0}1817)",
        "myotis DAUBENTONII",
        "Rhinolophus hipposideros (Bechstein, 1800)",
    ];
    let point = |i: usize| (45.7700 + i as f64 * 0.0131, 4.8000 + i as f64 * 0.0173);
    let mut sightings = Vec::new();
    for (i, name) in spellings
        .iter()
        .chain(["Pipistrellus pipistrellus"].iter())
        .enumerate()
    {
        let (latitude, longitude) = point(i);
        sightings.push(sighting(
            camille.account_id,
            name,
            // Ids on nobody's list.
            70000 + i as i64,
            latitude,
            longitude,
            json!({"notes": format!("gîte n°{i} derrière le volet"), "site": format!("Grange {i}")}),
        ));
    }
    let _phone = record_on_a_phone(server, pool, camille, &sightings, &[]).await?;
    let work = tempfile::tempdir()?;
    let formats = SightingFormats::download(server, t, &coordinator.token, work.path()).await?;
    for (i, (_, json)) in sightings.iter().enumerate() {
        let occurrence = json["occurrenceID"].as_str().expect("occurrenceID");
        let name = json["scientificName"].as_str().unwrap_or_default();
        let (latitude, longitude) = point(i);
        let (centre_lat, centre_lon, _, _) = grid_centre(pool, latitude, longitude, 1000.0).await?;
        for (format, lat, lon, notes, site) in formats.of(occurrence) {
            if i < spellings.len() {
                assert!(
                    (lat - centre_lat).abs() < 1e-6 && (lon - centre_lon).abs() < 1e-6,
                    "{format}: {name:?} at ({lat}, {lon}), not at its square's centre ({centre_lat}, {centre_lon})"
                );
                assert_eq!(
                    (notes.as_str(), site.as_str()),
                    ("", ""),
                    "{format}: {name:?}"
                );
            } else {
                assert!(
                    (lat - latitude).abs() < 1e-6 && (lon - longitude).abs() < 1e-6,
                    "{format}: {name:?} moved"
                );
                assert_eq!(notes, format!("gîte n°{i} derrière le volet"), "{format}");
            }
        }
    }
    Ok(())
}

/// True if a spreadsheet would evaluate `cell` (OWASP "CSV Injection") and
/// it is not a plain number.
fn evaluated_by_a_spreadsheet(cell: &str) -> bool {
    cell.trim_start_matches(' ')
        .starts_with(['=', '+', '-', '@', '\t', '\r'])
        && cell.parse::<f64>().is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_a_spreadsheet_would_evaluate_are_neutralised_in_every_csv_and_archive_file(
) -> anyhow::Result<()> {
    let world = World::builder("Port de Nantes")
        .coordinator("Marie")
        .volunteer("Camille")
        .build()
        .await?;
    let (server, pool, t) = (&world.server, &world.pool, world.territory.id);
    let coordinator = world.coordinator();
    let camille = world.volunteer("Camille");
    let hyperlink = "=HYPERLINK(\"http://x\",\"y\")";
    let command = "+cmd|' /C calc'!A0";
    let sum = "@SUM(1)";
    let arithmetic = "-2+3";
    let photo = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO photos (sha256, territory_id, uploaded_by, size, width, height, content_type, data, thumbnail) \
         VALUES ($1, $2, $3, 4, 1, 1, 'image/jpeg', '\\xffd8ffd9', '\\xffd8ffd9')",
    )
    .bind(&photo)
    .bind(t)
    .bind(camille.account_id)
    .execute(pool)
    .await?;
    // West of Greenwich: a negative longitude is a number, left as one.
    let (id, json) = sighting(
        camille.account_id,
        "Ardea cinerea",
        2506,
        47.2100,
        -1.5500,
        json!({
            "notes": hyperlink, "site": command, "vernacularName": sum,
            "recordedBy": arithmetic, "photos": [photo],
        }),
    );
    let (report, mut report_json) = degradation(camille.account_id, "other", 47.2110, -1.5510);
    report_json["categoryDetail"] = json!(sum);
    report_json["description"] = json!(hyperlink);
    report_json["site"] = json!(command);
    let _phone = record_on_a_phone(
        server,
        pool,
        camille,
        &[(id, json.clone())],
        &[(report, report_json)],
    )
    .await?;
    let work = tempfile::tempdir()?;
    let formats = SightingFormats::download(server, t, &coordinator.token, work.path()).await?;
    let degradation_file = work.path().join("degradation-reports.csv");
    let (status, _) = download(
        server,
        &format!("/api/territories/{t}/exports/degradation-reports.csv"),
        &coordinator.token,
        &degradation_file,
    )
    .await?;
    assert_eq!(status, 200);
    let archive = work.path().join("darwin-core-archive");
    let mut tables: Vec<Table> = formats
        .tables
        .into_iter()
        .map(|(table, _, _)| table)
        .collect();
    tables.push(Table::from_archive(&archive, "multimedia.txt")?);
    tables.push(Table::csv(
        "degradation-reports.csv",
        &degradation_file,
        b',',
    )?);

    let occurrence = json["occurrenceID"].as_str().expect("occurrenceID");
    let report = report.to_string();
    let quoted = |text: &str| format!("'{text}");
    for (table, key_column, key, column, expected) in [
        (
            "occurrence.txt",
            "occurrenceID",
            occurrence,
            "occurrenceRemarks",
            quoted(hyperlink),
        ),
        (
            "occurrence.txt",
            "occurrenceID",
            occurrence,
            "locality",
            quoted(command),
        ),
        (
            "occurrence.txt",
            "occurrenceID",
            occurrence,
            "vernacularName",
            quoted(sum),
        ),
        (
            "occurrence.txt",
            "occurrenceID",
            occurrence,
            "recordedBy",
            quoted(arithmetic),
        ),
        (
            "occurrence.txt",
            "occurrenceID",
            occurrence,
            "decimalLongitude",
            "-1.550000".into(),
        ),
        (
            "multimedia.txt",
            "occurrenceID",
            occurrence,
            "rightsHolder",
            quoted(arithmetic),
        ),
        (
            "sightings.csv",
            "occurrenceID",
            occurrence,
            "notes",
            quoted(hyperlink),
        ),
        (
            "sightings.csv",
            "occurrenceID",
            occurrence,
            "site",
            quoted(command),
        ),
        (
            "sightings.csv",
            "occurrenceID",
            occurrence,
            "vernacularName",
            quoted(sum),
        ),
        (
            "sightings.csv",
            "occurrenceID",
            occurrence,
            "recordedBy",
            quoted(arithmetic),
        ),
        (
            "sightings.csv",
            "occurrenceID",
            occurrence,
            "decimalLongitude",
            "-1.550000".into(),
        ),
        (
            "sinp.csv",
            "idOrigine",
            occurrence,
            "commentaire",
            quoted(hyperlink),
        ),
        (
            "sinp.csv",
            "idOrigine",
            occurrence,
            "nomVernaculaire",
            quoted(sum),
        ),
        (
            "sinp.csv",
            "idOrigine",
            occurrence,
            "observateur",
            quoted(arithmetic),
        ),
        (
            "sinp.csv",
            "idOrigine",
            occurrence,
            "longitudeWGS84",
            "-1.550000".into(),
        ),
        (
            "degradation-reports.csv",
            "id",
            &report,
            "description",
            quoted(hyperlink),
        ),
        (
            "degradation-reports.csv",
            "id",
            &report,
            "site",
            quoted(command),
        ),
        (
            "degradation-reports.csv",
            "id",
            &report,
            "categoryDetail",
            quoted(sum),
        ),
        (
            "degradation-reports.csv",
            "id",
            &report,
            "decimalLongitude",
            "-1.551000".into(),
        ),
    ] {
        let table = tables
            .iter()
            .find(|candidate| candidate.name == table)
            .expect("table");
        assert_eq!(
            table.cell(key_column, key, column),
            expected,
            "{table}: {column}",
            table = table.name
        );
    }
    // And no other cell of any file either.
    for table in &tables {
        assert!(!table.rows.is_empty(), "{} is empty", table.name);
        for row in &table.rows {
            for cell in row {
                assert!(
                    !evaluated_by_a_spreadsheet(cell),
                    "{}: a spreadsheet would evaluate {cell:?}",
                    table.name
                );
            }
        }
    }
    Ok(())
}
