//! The volunteers' field app (`mobile-bridge/web`, served at `/field/`) in
//! headless Chromium, against the real server and PostgreSQL: a volunteer
//! enrols a phone, loses the network, reloads the app (it opens from its
//! service worker), records three sightings (one through the offline species
//! autocomplete) and a degradation report with a photo, and comes back
//! online: the records and the photo are in the inventory exactly once. The
//! coordinator then changes the species list and the enrolled phone receives
//! it as a small delta. Screenshots at 360×740 go to
//! `target/browser-artifacts/field_app/`.

use anyhow::ensure;
use fieldnotes_tests::{
    accounts,
    browser::{Driver, Page},
    eventually, init_test_logging, phones, records, ServerProcess, TestDatabase,
};
use mobile_bridge::{DeviceCredential, Phone};
use schemas::RecordKind;
use serde_json::{json, Value};
use server::auth::{admin, Role};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Where the phone says it is: inside the territory, 9 m accuracy.
const HERE: (f64, f64, f64) = (45.7768, 4.8561, 9.0);

fn boundary() -> Value {
    json!({"type": "Polygon", "coordinates": [[
        [4.850, 45.772], [4.862, 45.772], [4.862, 45.782], [4.850, 45.782], [4.850, 45.772]
    ]]})
}

/// A TAXREF-style list (tab-separated, as TAXREF ships) of `n` taxa, with
/// the hedgehog among them; `rename` gives the hedgehog another vernacular.
fn taxref(n: usize, hedgehog_vernacular: &str) -> String {
    let mut csv = String::from("CD_NOM\tLB_NOM\tNOM_VERN\tRANG\n");
    csv.push_str(&format!(
        "60015\tErinaceus europaeus\t{hedgehog_vernacular}\tES\n"
    ));
    for i in 0..n.saturating_sub(1) {
        csv.push_str(&format!(
            "{}\tGenus{i} species{i}\tEspèce {i}\tES\n",
            900_000 + i
        ));
    }
    csv
}

async fn import_species(
    server: &ServerProcess,
    territory: Uuid,
    token: &str,
    csv: String,
) -> anyhow::Result<Value> {
    let response = reqwest::Client::new()
        .put(server.http_url(&format!("/api/territories/{territory}/species-list")))
        .bearer_auth(token)
        .header("content-type", "text/tab-separated-values")
        .body(csv)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    ensure!(status.is_success(), "species import: {status} {body}");
    Ok(body)
}

/// A camera picture, larger than the phone keeps (the app downscales it).
fn camera_photo() -> anyhow::Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(2600, 1800, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

async fn count(pool: &PgPool, sql: &str, territory: Uuid) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql)
        .bind(territory)
        .fetch_one(pool)
        .await?)
}

fn shot(browser: &mut Driver, page: Page, name: &str) -> anyhow::Result<()> {
    let path = browser.screenshot(page, name)?;
    assert!(
        std::fs::metadata(&path)?.len() > 1000,
        "{} is empty",
        path.display()
    );
    Ok(())
}

/// A server on its own database, with no map tiles, and one territory.
struct Field {
    server: ServerProcess,
    pool: PgPool,
    territory: phones::Territory,
    /// Declared last, so dropped last: the database outlives its server.
    _db: TestDatabase,
}

impl Field {
    async fn start() -> anyhow::Result<Field> {
        init_test_logging();
        let db = TestDatabase::create().await?;
        let server = ServerProcess::start_with(&db.url, &["--map-tiles-url="])?;
        let pool = db.pool().await?;
        let territory =
            phones::territory_within(&pool, "Friche Saint-Vincent", Some(&boundary())).await?;
        Ok(Field {
            server,
            pool,
            territory,
            _db: db,
        })
    }
}

/// Saves the form and waits for the home page's confirmation.
fn save(browser: &mut Driver, page: Page) -> anyhow::Result<()> {
    browser.click(page, "[data-testid=save-record]")?;
    browser.wait_for(page, "[data-testid=flash]")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteer_records_offline_in_the_phone_browser_and_everything_lands_once(
) -> anyhow::Result<()> {
    let Field {
        _db,
        server,
        pool,
        territory,
    } = Field::start().await?;
    let t = territory.id;
    admin::create_site(&pool, t, "Friche Saint-Vincent", 45.7772, 4.8555).await?;
    let coordinator =
        accounts::password_actor(&pool, "Marie", Some((t, Role::Coordinator)), false).await?;
    import_species(
        &server,
        t,
        &coordinator.token,
        taxref(2_000, "Hérisson d'Europe"),
    )
    .await?;
    let code = phones::invitation_code(&pool, &territory, "Camille").await?;

    let mut browser = Driver::start("field_app")?;
    let page = browser.new_located_page(360, 740, "fr-FR", HERE)?;

    // Enrol with the typed code (the QR scan fills the same field).
    browser.goto(page, &server.http_url("/field/"))?;
    browser.wait_for(page, "[data-testid=enrol-form]")?;
    browser.assert_accessible(page, "enrolment")?;
    shot(&mut browser, page, "enrol-360")?;
    browser.fill(page, "[data-testid=enrol-code]", &code)?;
    browser.fill(
        page,
        "[data-testid=enrol-device-name]",
        "Téléphone de Camille",
    )?;
    browser.click(page, "[data-testid=enrol-submit]")?;
    browser.wait_for(page, "[data-testid=sync-status][data-connected=true]")?;
    // The service worker holds the shell (and automerge's wasm) and controls the page.
    browser.wait_for(page, "[data-testid=sync-status][data-offline-ready=true]")?;
    browser.assert_accessible(page, "home")?;

    // No signal, and the app is reloaded: it opens from the phone.
    browser.set_offline(page, true)?;
    browser.reload(page)?;
    browser.wait_for(page, "[data-testid=sync-status][data-network=offline]")?;
    browser.wait_for(page, "[data-testid=new-sighting]")?;

    // Three sightings, the first through the species list, offline.
    browser.click(page, "[data-testid=new-sighting]")?;
    browser.fill(page, "[data-testid=species-combobox]", "hérisson")?;
    let hedgehog = "[data-testid=species-option][data-scientific-name='Erinaceus europaeus']";
    browser.wait_for(page, hedgehog)?;
    browser.assert_accessible(page, "sighting form")?;
    shot(&mut browser, page, "autocomplete-360")?;
    browser.click(page, hedgehog)?;
    browser.fill(page, "[data-testid=count]", "2")?;
    browser.click(page, "[data-testid=use-gps]")?;
    browser.wait_for(page, "[data-testid=position-accuracy]")?;
    shot(&mut browser, page, "sighting-form-360")?;
    save(&mut browser, page)?;
    for (name, lat) in [
        ("Passer domesticus", "45.7770"),
        ("Columba livia", "45.7775"),
    ] {
        browser.click(page, "[data-testid=new-sighting]")?;
        // A name typed freely (not in the list) is kept as the scientific name.
        browser.fill(page, "[data-testid=species-combobox]", name)?;
        browser.key(page, "Escape")?;
        browser.fill(page, "[data-testid=position-lat]", lat)?;
        browser.fill(page, "[data-testid=position-lon]", "4.8560")?;
        browser.key(page, "Tab")?;
        save(&mut browser, page)?;
    }

    // A degradation report with a photo from the camera.
    browser.click(page, "[data-testid=new-degradation]")?;
    browser.select(page, "[data-testid=category]", "waste_dumping")?;
    browser.fill(
        page,
        "[data-testid=description]",
        "Gravats déposés le long du chemin",
    )?;
    browser.click(page, "[data-testid=use-gps]")?;
    browser.wait_for(page, "[data-testid=position-accuracy]")?;
    browser.set_input_file(
        page,
        "[data-testid=photo-input]",
        "camera.png",
        "image/png",
        &camera_photo()?,
    )?;
    browser.wait_for(page, "[data-testid=photo-thumb]")?;
    shot(&mut browser, page, "degradation-form-360")?;
    save(&mut browser, page)?;

    // Everything waits on the phone, and says so.
    browser.wait_for_count(page, "[data-testid=record-row][data-sync-state=pending]", 4)?;
    browser.wait_for(page, "[data-testid=photos-waiting][data-count='1']")?;
    shot(&mut browser, page, "pending-offline-360")?;
    let synced_so_far = count(
        &pool,
        "SELECT count(*) FROM sightings WHERE territory_id = $1",
        t,
    )
    .await?;
    assert_eq!(synced_so_far, 0, "nothing left the phone while offline");

    // Signal again: the app syncs by itself, photos included.
    browser.set_offline(page, false)?;
    browser.wait_for(page, "[data-testid=sync-status][data-connected=true]")?;
    browser.wait_for_count(page, "[data-testid=record-row][data-sync-state=synced]", 4)?;
    browser.wait_for(page, "[data-testid=photos-waiting][data-count='0']")?;
    shot(&mut browser, page, "synced-360")?;

    // In the inventory exactly once, valid, with the list's taxon and the photo.
    eventually(
        TIMEOUT,
        "3 sightings and 1 report in the inventory",
        || async {
            let sightings = count(
                &pool,
                "SELECT count(*) FROM sightings WHERE territory_id = $1",
                t,
            )
            .await?;
            let reports = count(
                &pool,
                "SELECT count(*) FROM degradation_reports WHERE territory_id = $1",
                t,
            )
            .await?;
            ensure!(
                sightings <= 3 && reports <= 1,
                "more than was recorded: {sightings} sightings, {reports} reports"
            );
            Ok((sightings == 3 && reports == 1).then_some(()))
        },
    )
    .await?;
    let invalid = count(
        &pool,
        "SELECT count(*) FROM invalid_records WHERE territory_id = $1",
        t,
    )
    .await?;
    assert_eq!(invalid, 0);
    let (taxon, individuals): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT taxon_id, individual_count FROM sightings \
         WHERE territory_id = $1 AND scientific_name = 'Erinaceus europaeus'",
    )
    .bind(t)
    .fetch_one(&pool)
    .await?;
    assert_eq!((taxon, individuals), (Some(60015), Some(2)));
    let stored_photos: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM photos p JOIN degradation_reports d ON p.sha256 = ANY (d.photos) \
         WHERE d.territory_id = $1",
    )
    .bind(t)
    .fetch_one(&pool)
    .await?;
    assert_eq!(stored_photos, 1, "the report's photo, stored once");
    let (width, height): (i32, i32) =
        sqlx::query_as("SELECT width, height FROM photos WHERE territory_id = $1")
            .bind(t)
            .fetch_one(&pool)
            .await?;
    assert!(
        width.max(height) <= 2048,
        "downscaled on the phone: {width}×{height}"
    );

    // The coordinator renames one taxon: the enrolled phone receives a
    // delta, far below the list it first received.
    let first_sync = browser.web_socket_bytes(page)?;
    let changed = import_species(
        &server,
        t,
        &coordinator.token,
        taxref(2_000, "Hérisson commun"),
    )
    .await?;
    assert_eq!(changed["changed"], json!(1), "{changed}");
    browser.click(page, "[data-testid=new-sighting]")?;
    browser.fill(page, "[data-testid=species-combobox]", "hérisson")?;
    browser.wait_for_text(page, hedgehog, "Hérisson commun")?;
    let delta = browser.web_socket_bytes(page)? - first_sync;
    eprintln!("species list: {first_sync} bytes received before the change, {delta} for it");
    assert!(
        delta * 20 < first_sync,
        "the change cost {delta} bytes, the first sync {first_sync}"
    );

    assert_eq!(browser.page_errors()?, Vec::<String>::new());
    Ok(())
}

/// Enrols the page's device with `code` and waits until it is connected.
fn enrol(
    browser: &mut Driver,
    page: Page,
    server: &ServerProcess,
    code: &str,
) -> anyhow::Result<()> {
    browser.goto(page, &server.http_url("/field/"))?;
    browser.fill(page, "[data-testid=enrol-code]", code)?;
    browser.fill(page, "[data-testid=enrol-device-name]", "Téléphone")?;
    browser.click(page, "[data-testid=enrol-submit]")?;
    browser.wait_for(page, "[data-testid=sync-status][data-connected=true]")?;
    Ok(())
}

/// The one notebook of `territory`, once a phone synced it: (id, owner).
async fn notebook(pool: &PgPool, territory: Uuid) -> anyhow::Result<(String, Uuid)> {
    eventually(TIMEOUT, "the notebook on the server", || async {
        Ok(sqlx::query_as(
            "SELECT doc_id, owner_id FROM documents WHERE territory_id = $1 AND kind = 'notebook'",
        )
        .bind(territory)
        .fetch_optional(pool)
        .await?)
    })
    .await
}

/// An invitation for another device of `account`.
async fn second_device_code(
    pool: &PgPool,
    territory: &phones::Territory,
    account: Uuid,
) -> anyhow::Result<String> {
    let invitation = admin::create_invitation(
        pool,
        territory.id,
        Role::Volunteer,
        "Camille",
        Some(account),
        territory.coordinator,
        chrono::Duration::hours(1),
    )
    .await?;
    Ok(invitation.code)
}

/// Records a sighting of `name` at the page's GPS position; its record id.
fn record_sighting(
    browser: &mut Driver,
    page: Page,
    name: &str,
    count: &str,
) -> anyhow::Result<String> {
    browser.click(page, "[data-testid=new-sighting]")?;
    browser.fill(page, "[data-testid=species-combobox]", name)?;
    browser.key(page, "Escape")?;
    browser.fill(page, "[data-testid=count]", count)?;
    browser.click(page, "[data-testid=use-gps]")?;
    browser.wait_for(page, "[data-testid=position-accuracy]")?;
    save(browser, page)?;
    let id = browser.evaluate(
        page,
        "document.querySelector('[data-testid=record-row]').dataset.recordId",
    )?;
    Ok(id.as_str().unwrap_or_default().to_string())
}

/// Opens the record's form, sets its count and saves.
fn edit_count(browser: &mut Driver, page: Page, record: &str, count: &str) -> anyhow::Result<()> {
    browser.click(
        page,
        &format!("[data-testid=record-row][data-record-id='{record}'] [data-testid=edit-record]"),
    )?;
    browser.fill(page, "[data-testid=count]", count)?;
    save(browser, page)
}

/// Two devices of one volunteer (two browser contexts) edit the same field
/// offline: the server flags the conflict, the coordinator settles it, and
/// both pages show the settled value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_edit_one_record_offline_and_the_coordinators_resolution_reaches_both(
) -> anyhow::Result<()> {
    let Field {
        _db,
        server,
        pool,
        territory,
    } = Field::start().await?;
    let t = territory.id;
    let coordinator =
        accounts::password_actor(&pool, "Marie", Some((t, Role::Coordinator)), false).await?;
    let code = phones::invitation_code(&pool, &territory, "Camille").await?;

    let mut browser = Driver::start("field_app_two_devices")?;
    let phone_a = browser.new_located_page(360, 740, "fr-FR", HERE)?;
    enrol(&mut browser, phone_a, &server, &code)?;
    let record = record_sighting(&mut browser, phone_a, "Erinaceus europaeus", "1")?;
    let row = format!("[data-testid=record-row][data-record-id='{record}']");
    browser.wait_for(phone_a, &format!("{row}[data-sync-state=synced]"))?;

    // Camille's second phone finds the notebook the first one filled.
    let (_, camille) = notebook(&pool, t).await?;
    let second = second_device_code(&pool, &territory, camille).await?;
    let phone_b = browser.new_located_page(360, 740, "fr-FR", HERE)?;
    enrol(&mut browser, phone_b, &server, &second)?;
    browser.wait_for(phone_b, &row)?;

    // Both offline, both change the count.
    browser.set_offline(phone_a, true)?;
    browser.set_offline(phone_b, true)?;
    browser.wait_for(phone_a, "[data-testid=sync-status][data-network=offline]")?;
    browser.wait_for(phone_b, "[data-testid=sync-status][data-network=offline]")?;
    edit_count(&mut browser, phone_a, &record, "3")?;
    edit_count(&mut browser, phone_b, &record, "5")?;
    browser.set_offline(phone_a, false)?;
    browser.set_offline(phone_b, false)?;
    browser.wait_for(phone_a, &format!("{row}[data-sync-state=synced]"))?;
    browser.wait_for(phone_b, &format!("{row}[data-sync-state=synced]"))?;

    // The server keeps both values and flags the record.
    let record_id: Uuid = record.parse()?;
    let values: Value = eventually(TIMEOUT, "the conflict flagged", || async {
        let conflicts: Option<Value> =
            sqlx::query_scalar("SELECT conflicts FROM sightings WHERE id = $1 AND has_conflicts")
                .bind(record_id)
                .fetch_optional(&pool)
                .await?;
        Ok(conflicts)
    })
    .await?;
    let text = values.to_string();
    assert!(
        text.contains("individualCount") && text.contains('3') && text.contains('5'),
        "{text}"
    );

    // The coordinator settles on 4: both phones show it.
    let response = reqwest::Client::new()
        .post(server.http_url(&format!(
            "/api/territories/{t}/review/conflicts/{record_id}/resolution"
        )))
        .bearer_auth(&coordinator.token)
        .json(&json!({"field": "individualCount", "value": 4, "reason": "recompté sur la photo"}))
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "resolution: {}",
        response.status()
    );
    browser.wait_for_text(phone_a, &row, "— 4 individu")?;
    browser.wait_for_text(phone_b, &row, "— 4 individu")?;
    shot(&mut browser, phone_b, "resolved-360")?;
    assert_eq!(browser.page_errors()?, Vec::<String>::new());
    Ok(())
}

/// A record the server found invalid (written by another device of the
/// volunteer) shows its problem on the phone; fixed offline and synced, it
/// moves into the inventory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_record_shows_its_problem_and_once_fixed_offline_enters_the_inventory(
) -> anyhow::Result<()> {
    let Field {
        _db,
        server,
        pool,
        territory,
    } = Field::start().await?;
    let t = territory.id;
    let code = phones::invitation_code(&pool, &territory, "Camille").await?;
    let mut browser = Driver::start("field_app_invalid")?;
    let page = browser.new_located_page(360, 740, "fr-FR", HERE)?;
    enrol(&mut browser, page, &server, &code)?;
    let first = record_sighting(&mut browser, page, "Turdus merula", "1")?;
    browser.wait_for(
        page,
        &format!("[data-testid=record-row][data-record-id='{first}'][data-sync-state=synced]"),
    )?;

    // Another device of Camille's (an older app) writes a sighting whose
    // latitude is impossible.
    let (doc_id, camille) = notebook(&pool, t).await?;
    let second = second_device_code(&pool, &territory, camille).await?;
    let enrolled = admin::redeem_invitation(&pool, &second, "old phone").await?;
    let mut old_phone = Phone::fetch_notebook(
        &server.sync_url(),
        Some(DeviceCredential {
            device_id: enrolled.device_id,
            secret: enrolled.credential,
        }),
        doc_id.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?,
    )
    .await?;
    let mut typed = records::sighting_json(camille, "Parus major", 2);
    typed["decimalLatitude"] = json!(123.0);
    let key = typed["id"].as_str().unwrap_or_default().to_string();
    old_phone.record_raw(RecordKind::Sighting, &key, &typed)?;
    old_phone.wait_synced(TIMEOUT).await?;
    old_phone.go_offline();

    // The phone shows the problem, with its field.
    let problem = format!(
        "[data-testid=invalid-record][data-record-id='{key}'] [data-testid=invalid-problem][data-field=decimalLatitude]"
    );
    browser.wait_for_text(page, &problem, "Position (decimalLatitude)")?;
    shot(&mut browser, page, "invalid-360")?;

    // Fixed with no signal, then synced: into the inventory, out of the list.
    browser.set_offline(page, true)?;
    browser.click(
        page,
        &format!("[data-testid=invalid-record][data-record-id='{key}'] [data-testid=fix-record]"),
    )?;
    browser.fill(page, "[data-testid=position-lat]", "45.7770")?;
    browser.fill(page, "[data-testid=position-lon]", "4.8560")?;
    browser.key(page, "Tab")?;
    save(&mut browser, page)?;
    browser.set_offline(page, false)?;
    let record: Uuid = key.parse()?;
    let latitude: f64 = eventually(TIMEOUT, "the fixed record in the inventory", || async {
        Ok(
            sqlx::query_scalar("SELECT ST_Y(geom) FROM sightings WHERE id = $1")
                .bind(record)
                .fetch_optional(&pool)
                .await?,
        )
    })
    .await?;
    assert!((latitude - 45.777).abs() < 1e-6, "{latitude}");
    let still_invalid = count(
        &pool,
        "SELECT count(*) FROM invalid_records WHERE territory_id = $1",
        t,
    )
    .await?;
    assert_eq!(still_invalid, 0);
    browser.wait_for_count(page, "[data-testid=invalid-record]", 0)?;
    assert_eq!(browser.page_errors()?, Vec::<String>::new());
    Ok(())
}

/// Hours: a timer that survives a reload, then a typed duration that
/// replaces its span; the entry reaches the inventory. And the app in English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteer_logs_hours_with_the_timer_and_reads_the_app_in_english() -> anyhow::Result<()>
{
    let Field {
        _db,
        server,
        pool,
        territory,
    } = Field::start().await?;
    let t = territory.id;
    admin::create_site(&pool, t, "Jardin partagé", 45.7772, 4.8555).await?;
    // A site the coordinator retired is listed by the API, and not offered.
    let retired = admin::create_site(&pool, t, "Ancienne mare", 45.7773, 4.8556).await?;
    let retire = admin::SiteChanges {
        active: Some(false),
        ..Default::default()
    };
    admin::update_site(&pool, t, retired, &retire, territory.coordinator).await?;
    let code = phones::invitation_code(&pool, &territory, "Camille").await?;
    let mut browser = Driver::start("field_app_hours")?;
    let page = browser.new_located_page(360, 740, "fr-FR", HERE)?;
    enrol(&mut browser, page, &server, &code)?;

    browser.click(page, "[data-testid=new-timesheet]")?;
    browser.click(page, "[data-testid=timer-start]")?;
    browser.wait_for(page, "[data-testid=timer-stop]")?;
    // The timer is kept on the phone: a reload does not stop it.
    browser.reload(page)?;
    browser.wait_for(page, "[data-testid=timer-stop]")?;
    browser.click(page, "[data-testid=timer-stop]")?;
    browser.wait_for(page, "[data-testid=timer-start]")?;
    browser.fill(page, "[data-testid=duration]", "90")?;
    browser.select(page, "[data-testid=activity]", "planting")?;
    browser.select(page, "[data-testid=site-select]", "Jardin partagé")?;
    assert_eq!(
        browser.count(
            page,
            "[data-testid=site-select] option[value='Ancienne mare']"
        )?,
        0,
        "a deactivated site is not offered for a new record"
    );
    browser.assert_accessible(page, "hours form")?;
    shot(&mut browser, page, "hours-form-360")?;
    save(&mut browser, page)?;
    browser.wait_for(
        page,
        "[data-testid=record-row][data-record-kind=timesheet_entry][data-sync-state=synced]",
    )?;
    let (minutes, activity, site): (i32, String, Option<String>) =
        eventually(TIMEOUT, "the hours in the inventory", || async {
            Ok(sqlx::query_as(
                "SELECT duration_minutes, activity, site FROM timesheet_entries \
                 WHERE territory_id = $1",
            )
            .bind(t)
            .fetch_optional(&pool)
            .await?)
        })
        .await?;
    assert_eq!(
        (minutes, activity.as_str(), site.as_deref()),
        (90, "planting", Some("Jardin partagé"))
    );

    // English at the switch, kept across a reload.
    browser.goto(page, &server.http_url("/field/#/settings"))?;
    browser.click(page, "[data-testid=language-switch]")?;
    browser.goto(page, &server.http_url("/field/#/"))?;
    browser.wait_for_text(page, "main", "Hello Camille")?;
    browser.reload(page)?;
    browser.wait_for_text(page, "[data-testid=new-sighting]", "Sighting")?;
    assert_eq!(browser.page_errors()?, Vec::<String>::new());
    Ok(())
}

/// The enrolment page refuses a code the server does not know, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_invitation_code_is_refused_with_a_message() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let mut browser = Driver::start("field_app_refused")?;
    let page = browser.new_page(360, 740, "fr-FR")?;
    browser.goto(page, &server.http_url("/field/"))?;
    browser.fill(page, "[data-testid=enrol-code]", "ZZZZZ-ZZZZZ")?;
    browser.fill(page, "[data-testid=enrol-device-name]", "Téléphone")?;
    browser.click(page, "[data-testid=enrol-submit]")?;
    browser.wait_for(page, "[data-testid=enrol-error]")?;
    assert_eq!(
        browser.count(page, "[data-testid=sync-status][data-connected=true]")?,
        0
    );
    // The page is served with its policy: scripts from itself (and
    // automerge's WebAssembly), nothing from outside.
    let headers = reqwest::get(server.http_url("/field/sw.js")).await?;
    assert_eq!(
        headers.headers()["service-worker-allowed"],
        "/field/",
        "the worker's scope is the app"
    );
    let csp = headers.headers()["content-security-policy"]
        .to_str()?
        .to_string();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
        "{csp}"
    );
    Ok(())
}
