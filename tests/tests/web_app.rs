//! The coordinators' and régies' web app in a real browser (headless Debian
//! Chromium through playwright-core, one browser for the whole binary): a
//! coordinator logs in, filters the review table and validates a sighting,
//! resolves a conflict (both phones then read the resolved value), merges a
//! duplicate, approves hours (then sees them valued in euros), moves a
//! degradation report (offered only the moves the server allows), reads a
//! sighting's plausibility warning in the table and on its page and the
//! invalid records behind the dashboard's count, and sees a sighting
//! a phone syncs appear on the open dashboard without reloading; a régie
//! auditor gets the same pages without any action control; English replaces
//! French at the switch. An admin sets up a territory (its drawn boundary,
//! its first coordinator), the coordinator adds a site, and a disabled
//! account's page is logged out. A wrong password and a refused decision show the
//! server's own message, in French and in English. Screenshots of the
//! dashboard, map, review table and conflict view at 1280 and 768 px go to
//! `target/browser-artifacts/`.

use std::time::Duration;

use anyhow::{anyhow, Context};
use chrono::Utc;
use fieldnotes_tests::{
    accounts::{self, Actor},
    browser::{Driver, Page},
    eventually, init_test_logging,
    phones::{self, Volunteer},
    records, ServerProcess, TestDatabase,
};
use mobile_bridge::{
    photos::{process_photo, PhotoSettings},
    Phone,
};
use schemas::{DegradationReport, FieldRecord, RecordKind, Sighting, TimesheetEntry};
use serde_json::{json, Value};
use server::{
    auth::{admin, Role},
    reports::rates::{self, HourlyRate},
};
use sqlx::PgPool;
use sync::documents::read_notebook;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A territory around the Friche Saint-Vincent with everything a reviewer
/// meets: a sighting two phones edited apart (a conflict), one to validate,
/// two blackbirds 20 m and 30 minutes apart (a possible duplicate), an hours
/// entry and a degradation report, all recorded and synced by real phones.
struct Survey {
    db: TestDatabase,
    pool: PgPool,
    server: ServerProcess,
    territory: Uuid,
    coordinator: Actor,
    auditor: Actor,
    camille: Volunteer,
    phone_a: Phone,
    phone_b: Phone,
    conflicted: Uuid,
    to_validate: Uuid,
    blackbirds: [Uuid; 2],
    hours: Uuid,
    report: Uuid,
}

fn boundary() -> Value {
    json!({"type": "Polygon", "coordinates": [[
        [4.850, 45.772], [4.862, 45.772], [4.862, 45.782], [4.850, 45.782], [4.850, 45.772]
    ]]})
}

fn moved(mut raw: Value, north_m: f64, minutes_earlier: i64) -> Value {
    let lat = raw["decimalLatitude"].as_f64().unwrap() + north_m / 111_320.0;
    raw["decimalLatitude"] = json!(lat);
    let date = Utc::now() - chrono::Duration::minutes(5 + minutes_earlier);
    raw["eventDate"] = json!(date.to_rfc3339());
    raw
}

fn report_json(author: Uuid) -> Value {
    let now = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    json!({
        "id": Uuid::new_v4().to_string(), "authorId": author.to_string(), "deviceId": "phone-test",
        "createdAt": now, "modifiedAt": now, "category": "waste_dumping", "observedAt": now,
        "decimalLatitude": 45.7768, "decimalLongitude": 4.8561, "coordinateUncertaintyInMeters": 8.0,
        "description": "Gravats déposés le long du chemin", "site": "Friche Saint-Vincent",
    })
}

/// A record as the phone's validation types it.
fn typed<R: FieldRecord>(raw: &Value) -> anyhow::Result<R> {
    R::from_raw(raw).map_err(|problems| anyhow!("invalid sample record: {problems:?}"))
}

/// A small photo, processed as the phone does and uploaded by the phone's
/// credential; its address.
async fn upload_photo(
    server: &ServerProcess,
    territory: Uuid,
    token: &str,
) -> anyhow::Result<String> {
    let pixels = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 120])
    });
    let mut png = Vec::new();
    pixels.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    let photo = process_photo(&png, PhotoSettings::default())?;
    let response = reqwest::Client::new()
        .put(server.http_url(&format!(
            "/api/photos/{}?territory={territory}",
            photo.sha256
        )))
        .bearer_auth(token)
        .body(photo.jpeg)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "photo upload: {}",
        response.status()
    );
    Ok(photo.sha256)
}

async fn rows(pool: &PgPool, sql: &str, territory: Uuid) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql)
        .bind(territory)
        .fetch_one(pool)
        .await?)
}

impl Survey {
    async fn seed() -> anyhow::Result<Survey> {
        let db = TestDatabase::create().await?;
        // No tiles: the test machine has no network, and the map must work without.
        let server = ServerProcess::start_with(&db.url, &["--map-tiles-url="])?;
        let url = server.sync_url();
        let pool = db.pool().await?;
        let territory =
            phones::territory_within(&pool, "Friche Saint-Vincent", Some(&boundary())).await?;
        let t = territory.id;
        admin::create_site(&pool, t, "Friche Saint-Vincent", 45.7772, 4.8555).await?;
        let coordinator = accounts::password_actor(
            &pool,
            "Marie Coordination",
            Some((t, Role::Coordinator)),
            false,
        )
        .await?;
        let auditor = accounts::password_actor(
            &pool,
            "Régie des Pentes",
            Some((t, Role::RegieAuditor)),
            false,
        )
        .await?;
        let camille = phones::enrol_volunteer(&pool, &territory, "Camille").await?;
        let second_device = phones::enrol_second_device(&pool, &territory, &camille).await?;
        let bob = phones::enrol_volunteer(&pool, &territory, "Bob").await?;

        let mut phone_a =
            Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
        let hedgehog = records::sighting(camille.account_id, "Erinaceus europaeus", 1);
        let photo = upload_photo(&server, t, &camille.device.secret).await?;
        let mut tit_raw = records::sighting_json(camille.account_id, "Parus major", 2);
        tit_raw["photos"] = json!([photo]);
        // 0.005° of longitude (about 390 m) west of the boundary, well beyond
        // its 12 m uncertainty: a plausibility warning.
        tit_raw["decimalLongitude"] = json!(4.845);
        let tit = typed::<Sighting>(&tit_raw)?;
        let blackbird_a = typed::<Sighting>(&moved(
            records::sighting_json(camille.account_id, "Turdus merula", 1),
            0.0,
            0,
        ))?;
        let hours = typed::<TimesheetEntry>(&records::timesheet_json(camille.account_id))?;
        let report = typed::<DegradationReport>(&report_json(camille.account_id))?;
        phone_a.record(&hedgehog)?;
        phone_a.record(&tit)?;
        phone_a.record(&blackbird_a)?;
        phone_a.record(&hours)?;
        phone_a.record(&report)?;
        phone_a.go_online(&url).await?;
        phone_a.wait_synced(TIMEOUT).await?;

        let mut bob_phone = Phone::new_notebook(bob.notebook(), Some(bob.device.clone())).await?;
        let blackbird_b = typed::<Sighting>(&moved(
            records::sighting_json(bob.account_id, "Turdus merula", 1),
            20.0,
            30,
        ))?;
        bob_phone.record(&blackbird_b)?;
        bob_phone.go_online(&url).await?;
        bob_phone.wait_synced(TIMEOUT).await?;

        // The hedgehog's count, edited on both of Camille's phones offline.
        let mut phone_b =
            Phone::fetch_notebook(&url, Some(second_device), phone_a.notebook_id()).await?;
        phone_a.go_offline();
        phone_b.go_offline();
        phone_a.edit(
            RecordKind::Sighting,
            hedgehog.id(),
            "individualCount",
            &json!(3),
        )?;
        phone_b.edit(
            RecordKind::Sighting,
            hedgehog.id(),
            "individualCount",
            &json!(5),
        )?;
        phone_a.go_online(&url).await?;
        phone_b.go_online(&url).await?;
        phone_a.wait_synced(TIMEOUT).await?;
        phone_b.wait_synced(TIMEOUT).await?;
        eventually(
            TIMEOUT,
            "the inventory holds every record and the conflict",
            || async {
                let sightings = rows(
                    &pool,
                    "SELECT count(*) FROM sightings WHERE territory_id = $1",
                    t,
                )
                .await?;
                let conflicts = rows(
                    &pool,
                    "SELECT count(*) FROM sightings WHERE territory_id = $1 AND has_conflicts",
                    t,
                )
                .await?;
                let others = rows(
                    &pool,
                    "SELECT (SELECT count(*) FROM timesheet_entries WHERE territory_id = $1) \
                      + (SELECT count(*) FROM degradation_reports WHERE territory_id = $1)",
                    t,
                )
                .await?;
                Ok((sightings == 4 && conflicts == 1 && others == 2).then_some(()))
            },
        )
        .await?;
        // A sighting the phone's validation would refuse, as materialisation
        // files one (no scientific name), in a notebook of Camille's.
        let notebook = accounts::seed_document(&pool, t, camille.account_id).await?;
        let mut nameless = records::sighting_json(camille.account_id, "", 1);
        nameless
            .as_object_mut()
            .expect("an object")
            .remove("scientificName");
        sqlx::query(
            "INSERT INTO invalid_records (doc_id, kind, record_key, territory_id, raw, problems) \
             VALUES ($1, 'sighting', $2, $3, $4, \
                     '[{\"field\": \"scientificName\", \"reason\": \"missing\"}]')",
        )
        .bind(&notebook)
        .bind(nameless["id"].as_str().expect("an id"))
        .bind(t)
        .bind(&nameless)
        .execute(&pool)
        .await?;
        // Hours are valued at 11.88 € an hour (the SMIC of 2025) since 2020.
        rates::set(
            &pool,
            t,
            &HourlyRate {
                effective_from: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).expect("a date"),
                cents_per_hour: 1188,
                basis: "smic".into(),
                note: None,
            },
            coordinator.account_id,
        )
        .await?;
        Ok(Survey {
            db,
            pool,
            server,
            territory: t,
            coordinator,
            auditor,
            camille,
            phone_a,
            phone_b,
            conflicted: hedgehog.id(),
            to_validate: tit.id(),
            blackbirds: [blackbird_a.id(), blackbird_b.id()],
            hours: hours.id(),
            report: report.id(),
        })
    }

    fn page_url(&self, page: &str) -> String {
        self.server
            .http_url(&format!("/#/t/{}/{page}", self.territory))
    }
}

/// Logs `actor` in through the login form, with the keyboard for the submit.
fn log_in(browser: &mut Driver, page: Page, survey: &Survey, actor: &Actor) -> anyhow::Result<()> {
    let login = actor.login.as_ref().expect("a password account");
    log_in_as(browser, page, &survey.server, &login.email, &login.password)
}

/// What the server answers a wrong email or password (`server::http::sessions`).
const WRONG_PASSWORD: &str = "the email or the password is wrong";

/// A wrong password is refused with the server's message (the body's
/// `error.message`), in French, then in English at the login page's switch;
/// the page is left in French.
fn a_wrong_password_shows_the_servers_message(
    browser: &mut Driver,
    page: Page,
    survey: &Survey,
    actor: &Actor,
) -> anyhow::Result<()> {
    let login = actor.login.as_ref().expect("a password account");
    let refused = ".login [role=alert]";
    browser.goto(page, &survey.server.http_url("/"))?;
    browser.fill(page, "#login-email", &login.email)?;
    browser.fill(page, "#login-password", "not the password")?;
    browser.key(page, "Enter")?;
    browser.wait_for_text(
        page,
        refused,
        &format!("Connexion refusée : {WRONG_PASSWORD}"),
    )?;

    browser.click(page, "[data-testid=language-switch]")?;
    browser.wait_for_text(page, "#login-title", "Log in")?;
    browser.fill(page, "#login-password", "still not it")?;
    browser.key(page, "Enter")?;
    browser.wait_for_text(page, refused, &format!("Login refused: {WRONG_PASSWORD}"))?;

    browser.click(page, "[data-testid=language-switch]")?;
    browser.wait_for_text(page, "#login-title", "Connexion")?;
    Ok(())
}

/// Hours returned without a reason are refused by the server (400, field
/// `reason`): its message and the field show under the entry, in French, then
/// in English after the switch; the page is left in French.
fn returning_hours_without_a_reason_shows_the_servers_message(
    browser: &mut Driver,
    page: Page,
    entry: &str,
) -> anyhow::Result<()> {
    let refusal = "hours are returned to the volunteer with a reason (reason)";
    let refused = format!("{entry} [data-testid=action-error]");
    browser.click(page, &format!("{entry} button:has-text('Renvoyer')"))?;
    browser.wait_for_text(page, &refused, &format!("Erreur : {refusal}"))?;

    browser.click(page, "[data-testid=language-switch]")?;
    browser.wait_for_text(page, "h1", "Volunteer hours")?;
    browser.click(page, &format!("{entry} button:has-text('Return')"))?;
    browser.wait_for_text(page, &refused, &format!("Error: {refusal}"))?;

    browser.click(page, "[data-testid=language-switch]")?;
    browser.wait_for_text(page, "h1", "Heures bénévoles")?;
    Ok(())
}

/// The page at 1280 px and at 768 px (a tablet), as two screenshots.
fn screenshots(browser: &mut Driver, page: Page, name: &str) -> anyhow::Result<()> {
    for width in [1280, 768] {
        browser.set_viewport(page, width, 900)?;
        let path = browser.screenshot(page, &format!("{name}-{width}"))?;
        assert!(
            std::fs::metadata(&path)?.len() > 1000,
            "{} is empty",
            path.display()
        );
    }
    browser.set_viewport(page, 1280, 900)
}

fn field_on_phone(phone: &Phone, record: Uuid, field: &str) -> (Value, bool) {
    phone.read(|doc| {
        let read = read_notebook(doc);
        let state = read
            .records
            .iter()
            .find(|r| r.key == record.to_string())
            .expect("the phone holds the record");
        (
            state.raw[field].clone(),
            state.conflicts.iter().any(|c| c.field == field),
        )
    })
}

/// The payload of the QR code on `name`'s invitation card, decoded from the
/// drawn SVG by the field app's own decoder (jsQR, loaded into the page).
fn qr_code_on_card(browser: &mut Driver, page: Page, name: &str) -> anyhow::Result<Value> {
    let jsqr = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mobile-bridge/web/node_modules/jsqr/dist/jsQR.js"
    ))?;
    browser.evaluate(page, &jsqr)?;
    let decoded = browser.evaluate(
        page,
        &format!(
            r#"(async () => {{
              const card = [...document.querySelectorAll('[data-testid=invitation-card]')]
                .find((c) => c.querySelector('.card-name').textContent === {name});
              const svg = new XMLSerializer().serializeToString(card.querySelector('svg'));
              const image = new Image();
              image.src = URL.createObjectURL(new Blob([svg], {{ type: 'image/svg+xml' }}));
              await image.decode();
              const canvas = Object.assign(document.createElement('canvas'), {{ width: 400, height: 400 }});
              const context = canvas.getContext('2d');
              context.imageSmoothingEnabled = false;
              context.drawImage(image, 0, 0, 400, 400);
              const decode = window.jsQR.default || window.jsQR;
              const found = decode(context.getImageData(0, 0, 400, 400).data, 400, 400);
              return found && found.data;
            }})()"#,
            name = json!(name)
        ),
    )?;
    let text = decoded.as_str().expect("the card's QR code decodes");
    Ok(serde_json::from_str(text)?)
}

/// The coordinator invites five volunteers by name and gets a sheet of cards
/// to print; one code, read off the printed sheet, enrols a phone in the
/// field app, which syncs, and the list then shows that invitation redeemed;
/// a pending one is revoked; the phone, reported lost, is revoked on the
/// page and its sync closes at once. A batch over the bound shows the
/// server's message.
async fn volunteers_are_invited_on_a_printed_sheet_and_a_lost_phone_revoked(
    browser: &mut Driver,
    page: Page,
    survey: &Survey,
) -> anyhow::Result<()> {
    browser.goto(page, &survey.page_url("invitations"))?;
    browser.wait_for_text(page, "h1", "Inviter des bénévoles")?;
    browser.check(page, "input[name=invitation-mode][value=list]")?;

    let too_many: Vec<String> = (1..=101).map(|n| format!("Bénévole {n}")).collect();
    browser.fill(page, "#invite-names", &too_many.join("\n"))?;
    browser.click(page, "[data-testid=invitation-form] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=invitation-form] [data-testid=action-error]",
        "Erreur : a batch has from 1 to 100 invitations (got 101) (names)",
    )?;

    browser.fill(page, "#invite-names", "Alix\nBasile\nChloé\nDylan\nEmma")?;
    browser.click(page, "[data-testid=invitation-form] button[type=submit]")?;
    browser.wait_for_count(page, "[data-testid=invitation-card]", 5)?;
    browser.wait_for_count(
        page,
        "[data-testid=invitation-card] [data-testid=card-qr] path",
        5,
    )?;
    browser.wait_for(page, "tr[data-invitation-name='Chloé'][data-state=pending]")?;
    browser.assert_accessible(page, "invitations, with the cards")?;
    screenshots(browser, page, "invitations")?;

    // Printed: the cards only, each with the field app's address.
    browser.emulate_media(page, "print")?;
    let visible =
        |selector: &str| format!("document.querySelector(\"{selector}\").checkVisibility()");
    assert_eq!(
        browser.evaluate(page, &visible("[data-testid=invitation-form]"))?,
        json!(false)
    );
    assert_eq!(
        browser.evaluate(page, &visible("header.top"))?,
        json!(false)
    );
    assert_eq!(
        browser.evaluate(page, &visible("[data-testid=invitations]"))?,
        json!(false)
    );
    assert_eq!(browser.evaluate(page, &visible("ul.cards"))?, json!(true));
    browser.screenshot(page, "invitations-printed")?;
    let card = browser.text(page, "[data-testid=invitation-card]:has-text('Chloé')")?;
    assert!(
        card.contains(&survey.server.http_url("/field/")),
        "the field app's address: {card}"
    );
    let code = browser.text(
        page,
        "[data-testid=invitation-card]:has-text('Chloé') [data-testid=card-code]",
    )?;
    browser.emulate_media(page, "screen")?;
    assert_eq!(
        qr_code_on_card(browser, page, "Chloé")?["code"].as_str(),
        Some(code.trim()),
        "the card's QR code holds its code"
    );

    // Chloé's phone: the field app, in a context of its own, enrols with the
    // code read from the printed card and syncs.
    let phone = browser.new_page(390, 844, "fr-FR")?;
    browser.goto(phone, &survey.server.http_url("/field/"))?;
    browser.fill(phone, "[data-testid=enrol-code]", code.trim())?;
    browser.fill(
        phone,
        "[data-testid=enrol-device-name]",
        "Téléphone de Chloé",
    )?;
    browser.click(phone, "[data-testid=enrol-submit]")?;
    browser.wait_for(phone, "[data-testid=sync-status][data-connected=true]")?;
    let device: Uuid = sqlx::query_scalar("SELECT id FROM devices WHERE name = $1")
        .bind("Téléphone de Chloé")
        .fetch_one(&survey.pool)
        .await?;

    // The codes were shown once: reloaded, the page lists states only.
    browser.reload(page)?;
    browser.wait_for(
        page,
        "tr[data-invitation-name='Chloé'][data-state=redeemed]",
    )?;
    assert_eq!(browser.count(page, "[data-testid=invitation-card]")?, 0);
    browser.click(page, "tr[data-invitation-name='Dylan'] button")?;
    browser.wait_for(page, "tr[data-invitation-name='Dylan'][data-state=revoked]")?;

    let row = format!("[data-testid=devices] tr[data-device-id='{device}']");
    browser.wait_for_text(page, &row, "Chloé")?;
    browser.click(page, &format!("{row} button"))?;
    browser.wait_for_text(page, &row, "Révoqué le")?;
    assert_eq!(
        browser.dialogs(page)?,
        [
            "Révoquer l’invitation de Dylan ? Son code ne pourra plus servir.",
            "Révoquer le téléphone « Téléphone de Chloé » de Chloé ? Il ne pourra plus se synchroniser ; ce qu’il n’a pas encore envoyé y reste.",
        ],
        "each revocation asked first"
    );
    // The phone's sync closes at once, and its credential is refused when
    // it tries again.
    browser.wait_for(phone, "[data-testid=sync-status][data-connected=false]")?;
    let revoked: bool =
        sqlx::query_scalar("SELECT revoked_at IS NOT NULL FROM devices WHERE id = $1")
            .bind(device)
            .fetch_one(&survey.pool)
            .await?;
    assert!(revoked, "the lost phone is revoked");
    browser.close_page(phone)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_reviews_the_territory_in_the_browser_and_sees_phones_sync_live(
) -> anyhow::Result<()> {
    init_test_logging();
    let survey = Survey::seed().await?;
    let pool = &survey.pool;
    let mut browser = Driver::start("coordinator")?;
    let page = browser.new_page(1280, 900, "fr-FR")?;
    a_wrong_password_shows_the_servers_message(&mut browser, page, &survey, &survey.coordinator)?;
    log_in(&mut browser, page, &survey, &survey.coordinator)?;
    // One territory: the app goes straight to its dashboard.
    browser.wait_for_text(page, "h1", "Tableau de bord")?;

    // The dashboard's figures are the inventory's.
    browser.wait_for_text(page, "[data-testid=total-sighting]", "4")?;
    assert_eq!(
        browser.text(page, "[data-testid=total-degradation_report]")?,
        "1"
    );
    assert_eq!(
        browser.text(page, "[data-testid=total-timesheet_entry]")?,
        "1"
    );
    browser.wait_for_text(page, "[data-testid=tile-conflicts]", "1")?;
    browser.wait_for_text(page, "[data-testid=tile-duplicates]", "1")?;
    browser.wait_for_text(page, "[data-testid=tile-pending-hours]", "2")?;
    browser.assert_accessible(page, "dashboard")?;
    screenshots(&mut browser, page, "dashboard")?;

    // The map shows one marker per sighting of the table's filter, the
    // territory's outline and its site, with no tiles at all.
    browser.goto(page, &survey.page_url("map"))?;
    browser.wait_for_text(page, "[data-testid=map-count]", "4")?;
    browser.wait_for_count(page, "[data-testid=map] path.record-marker", 4)?;
    assert_eq!(
        browser.count(page, "[data-testid=map] path.territory-outline")?,
        1
    );
    assert_eq!(
        browser.count(page, "[data-testid=map] path.site-marker")?,
        1
    );
    assert_eq!(
        browser.count(page, "[data-testid=map] img.leaflet-tile")?,
        0
    );
    browser.assert_accessible(page, "map")?;
    screenshots(&mut browser, page, "map")?;
    // A point opens its record.
    browser.click(page, "[data-testid=map] path.record-marker >> nth=-1")?;
    browser.wait_for(page, "[data-field=scientificName]")?;
    let hash = browser.evaluate(page, "location.hash")?;
    assert!(
        hash.as_str().unwrap_or("").contains("/record/"),
        "a marker opens its record: {hash}"
    );

    // The review table: filtered by taxon, one row; validated in bulk.
    browser.goto(page, &survey.page_url("table"))?;
    browser.wait_for_count(
        page,
        "[data-testid=review-table] tbody tr[data-record-id]",
        4,
    )?;
    browser.assert_accessible(page, "review table")?;
    screenshots(&mut browser, page, "review-table")?;
    browser.fill(page, "#filter-taxon", "parus major")?;
    browser.click(page, "[data-testid=filter-apply]")?;
    browser.wait_for_count(
        page,
        "[data-testid=review-table] tbody tr[data-record-id]",
        1,
    )?;
    let row = format!("tr[data-record-id='{}']", survey.to_validate);
    // The tit lies outside the territory: the review API says so, worded as
    // the inventory's rows word it, and so does its row.
    let http = reqwest::Client::new();
    let listed: Value = http
        .get(survey.server.http_url(&format!(
            "/api/territories/{}/review/records?taxon=Parus%20major",
            survey.territory
        )))
        .bearer_auth(&survey.coordinator.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let inventory: Value = http
        .get(
            survey
                .server
                .http_url(&format!("/api/sightings?territory={}", survey.territory)),
        )
        .bearer_auth(&survey.coordinator.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let tit_in_inventory = inventory
        .as_array()
        .expect("a list")
        .iter()
        .find(|row| row["id"] == json!(survey.to_validate))
        .expect("the tit is in the inventory");
    assert_eq!(
        listed["items"][0]["warnings"][0]["code"],
        "outsideTerritory"
    );
    assert_eq!(listed["items"][0]["warnings"], tit_in_inventory["warnings"]);
    browser.wait_for_text(
        page,
        &format!("{row} [data-warning=outsideTerritory]"),
        "Hors du territoire",
    )?;
    browser.check(page, &format!("{row} input[type=checkbox]"))?;
    browser.wait_for_text(page, "[data-testid=selected-count]", "1")?;
    browser.select(page, "#bulk-status", "1")?;
    browser.fill(page, "#bulk-reason", "Photo nette, chant entendu")?;
    browser.click(page, "[data-testid=bulk-decision] button[type=submit]")?;
    browser.wait_for_text(page, "[data-testid=action-done]", "1")?;
    browser.wait_for_text(page, &format!("{row} [data-testid=status]"), "Certain")?;
    let (status, comment): (i16, Option<String>) = sqlx::query_as(
        "SELECT s.validation_status, d.reason FROM sightings s \
         JOIN review_decisions d ON d.record_id = s.id WHERE s.id = $1",
    )
    .bind(survey.to_validate)
    .fetch_one(pool)
    .await?;
    assert_eq!(
        (status, comment.as_deref()),
        (1, Some("Photo nette, chant entendu"))
    );
    // Its record page has the decision in its history.
    browser.click(page, &format!("{row} a"))?;
    browser.wait_for_text(page, "[data-testid=history]", "Marie Coordination")?;
    browser.wait_for_text(page, "[data-field=scientificName]", "Parus major")?;
    // Its page shows the warning, with the server's measure.
    browser.wait_for_text(
        page,
        "[data-testid=warnings] [data-warning=outsideTerritory]",
        "Hors du territoire",
    )?;
    let warnings = browser.text(page, "[data-testid=warnings]")?;
    assert!(
        warnings.contains("m outside the territory's boundary"),
        "{warnings}"
    );
    // Its photo: the thumbnail, then full size.
    browser.wait_for(page, "[data-testid=photos] button.thumb img")?;
    browser.assert_accessible(page, "record")?;
    browser.click(page, "[data-testid=photos] button.thumb")?;
    browser.wait_for(page, "[data-testid=photo-full]")?;
    let width = browser.evaluate(
        page,
        "document.querySelector('[data-testid=photo-full]').naturalWidth",
    )?;
    assert!(
        width.as_u64().unwrap_or(0) > 256,
        "full size, not the thumbnail: {width}"
    );
    browser.click(page, ".lightbox button")?;

    // The conflict: both values side by side, each with its phone; the
    // coordinator keeps 5, and both phones converge on it.
    browser.goto(page, &survey.page_url("conflicts"))?;
    browser.wait_for_count(page, "[data-testid=conflict-value]", 2)?;
    let queue = browser.text(page, "[data-testid=conflict-queue]")?;
    assert!(queue.contains("Camille"), "{queue}");
    browser.assert_accessible(page, "conflicts")?;
    screenshots(&mut browser, page, "conflicts")?;
    browser.click(
        page,
        "fieldset[data-field=individualCount] button:has-text('« 5 »')",
    )?;
    browser.wait_for(page, "[data-testid=conflicts-empty]")?;
    for phone in [&survey.phone_a, &survey.phone_b] {
        eventually(TIMEOUT, "the phone reads the resolved count", || async {
            let (value, conflicted) = field_on_phone(phone, survey.conflicted, "individualCount");
            Ok((value == json!(5) && !conflicted).then_some(()))
        })
        .await?;
    }

    // The duplicates: merged, both records kept.
    browser.goto(page, &survey.page_url("duplicates"))?;
    browser.wait_for_count(page, "[data-testid=duplicate-queue] li.pair", 1)?;
    browser.assert_accessible(page, "duplicates")?;
    browser.click(page, "li.pair button:has-text('garder la première')")?;
    browser.wait_for(page, "[data-testid=duplicates-empty]")?;
    let merged: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "SELECT id, duplicate_of FROM sightings WHERE id = ANY($1) ORDER BY duplicate_of NULLS FIRST",
    )
    .bind(survey.blackbirds.to_vec())
    .fetch_all(pool)
    .await?;
    assert_eq!(merged.len(), 2, "both blackbirds are kept");
    assert_eq!(merged[1].1, Some(merged[0].0), "{merged:?}");

    // The hours: returned without a reason, refused; then approved.
    browser.goto(page, &survey.page_url("hours"))?;
    let entry = format!(
        "[data-testid=pending-hours] tr[data-record-id='{}']",
        survey.hours
    );
    browser.wait_for(page, &entry)?;
    browser.assert_accessible(page, "hours")?;
    returning_hours_without_a_reason_shows_the_servers_message(&mut browser, page, &entry)?;
    browser.click(page, &format!("{entry} button:has-text('Approuver')"))?;
    browser.wait_for_count(page, &entry, 0)?;
    let approval: String =
        sqlx::query_scalar("SELECT approval_status FROM timesheet_entries WHERE id = $1")
            .bind(survey.hours)
            .fetch_one(pool)
            .await?;
    assert_eq!(approval, "approved");
    // Approved, the entry is listed with its value: 120 min at 11.88 € an
    // hour is 23.76 €, on its row and in the page's total.
    let approved = format!(
        "[data-testid=approved-hours] tr[data-record-id='{}']",
        survey.hours
    );
    browser.wait_for_text(page, &approved, "120 min")?;
    let spaces = |text: String| text.replace(['\u{202f}', '\u{a0}'], " ");
    assert_eq!(
        spaces(browser.text(page, &format!("{approved} [data-testid=euros]"))?),
        "23,76 €"
    );
    assert_eq!(
        spaces(browser.text(page, "[data-testid=euros-total]")?),
        "23,76 €"
    );
    browser.assert_accessible(page, "hours, approved")?;

    // The degradation report: moved to "action taken", with its reason.
    browser.goto(page, &survey.page_url("reports"))?;
    let card = format!("li[data-record-id='{}']", survey.report);
    browser.wait_for(page, &format!("[data-status=received] {card}"))?;
    browser.assert_accessible(page, "reports")?;
    // First under analysis; from there the board offers only what the
    // server allows: forward, never back to "received".
    let move_to = format!("#move-{}-to", survey.report);
    browser.select(page, &move_to, "under_analysis")?;
    browser.fill(
        page,
        &format!("#move-{}-reason", survey.report),
        "Signalement vérifié sur place",
    )?;
    browser.click(page, &format!("{card} button[type=submit]"))?;
    browser.wait_for(page, &format!("[data-status=under_analysis] {card}"))?;
    let offered = browser.evaluate(
        page,
        &format!("[...document.querySelectorAll('{move_to} option')].map((o) => o.value)"),
    )?;
    assert_eq!(offered, json!(["action_taken", "closed"]));
    browser.select(page, &move_to, "action_taken")?;
    browser.fill(
        page,
        &format!("#move-{}-reason", survey.report),
        "Services de la propreté prévenus",
    )?;
    browser.click(page, &format!("{card} button[type=submit]"))?;
    browser.wait_for(page, &format!("[data-status=action_taken] {card}"))?;
    let (step, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status, status_reason FROM degradation_reports WHERE id = $1")
            .bind(survey.report)
            .fetch_one(pool)
            .await?;
    assert_eq!(
        (step.as_str(), reason.as_deref()),
        ("action_taken", Some("Services de la propreté prévenus"))
    );

    // The dashboard's count of invalid records opens their page: the
    // problem by field, the record as the phone wrote it.
    browser.goto(page, &survey.page_url("dashboard"))?;
    browser.wait_for_text(page, "[data-testid=tile-invalid]", "1")?;
    browser.click(page, "[data-testid=tile-invalid]")?;
    browser.wait_for_count(page, "[data-testid=invalid-records] > li", 1)?;
    browser.wait_for_text(
        page,
        "[data-testid=problems] [data-field=scientificName]",
        "Nom scientifique",
    )?;
    let raw = browser.text(page, "[data-testid=invalid-records] [data-testid=raw]")?;
    assert!(raw.contains("\"recordedBy\": \"Camille Martin\""), "{raw}");
    browser.assert_accessible(page, "invalid records")?;
    screenshots(&mut browser, page, "invalid-records")?;

    // The favicon: the one the page links, and the conventional address.
    let linked = browser.evaluate(page, "document.querySelector('link[rel=icon]').href")?;
    for icon in [
        linked.as_str().expect("the page links an icon").to_string(),
        survey.server.http_url("/favicon.ico"),
    ] {
        let response = http.get(&icon).send().await?;
        assert_eq!(response.status(), 200, "{icon}");
        assert_eq!(
            response.headers()["content-type"],
            "image/svg+xml",
            "{icon}"
        );
    }

    volunteers_are_invited_on_a_printed_sheet_and_a_lost_phone_revoked(&mut browser, page, &survey)
        .await?;

    // Live: with the dashboard open and its stream ready, a phone syncs a
    // new sighting; the total changes without a reload.
    browser.goto(page, &survey.page_url("dashboard"))?;
    browser.wait_for_text(page, "[data-testid=total-sighting]", "4")?;
    browser.wait_for_text(page, "[data-testid=live-status]", "En direct")?;
    browser.evaluate(page, "window.__notReloaded = true")?;
    let newcomer = records::sighting(survey.camille.account_id, "Pica pica", 3);
    survey.phone_a.record(&newcomer)?;
    survey.phone_a.wait_synced(TIMEOUT).await?;
    browser.wait_for_text(page, "[data-testid=total-sighting]", "5")?;
    browser.wait_for_text(page, "[data-testid=latest-activity]", "Pica pica")?;
    assert_eq!(
        browser.evaluate(page, "window.__notReloaded === true")?,
        json!(true),
        "the page was not reloaded"
    );

    // English at the switch.
    browser.click(page, "[data-testid=language-switch]")?;
    browser.wait_for_text(page, "h1", "Dashboard")?;
    browser.wait_for_text(page, "nav", "Volunteer hours")?;
    // The warning's label too.
    browser.goto(
        page,
        &survey.page_url(&format!("record/{}", survey.to_validate)),
    )?;
    browser.wait_for_text(
        page,
        "[data-testid=warnings] [data-warning=outsideTerritory]",
        "Outside the territory",
    )?;

    the_coordinator_sets_up_the_territory(&mut browser, page, &survey).await?;
    assert_eq!(browser.page_errors()?, Vec::<String>::new());
    drop(survey.db);
    Ok(())
}

/// The settings page, as a coordinator: the duplicate distance; an hourly
/// rate typed with a decimal comma; a sensitive species; a species list whose
/// bad lines are all listed by line and column and which cannot be applied,
/// then, fixed, previewed (what it adds) and applied.
async fn the_coordinator_sets_up_the_territory(
    browser: &mut Driver,
    page: Page,
    survey: &Survey,
) -> anyhow::Result<()> {
    let t = survey.territory;
    let api = survey.server.as_(&survey.coordinator.token);
    browser.click(page, "[data-testid=language-switch]")?;
    browser.wait_for_text(page, "header.top nav", "Carte")?;
    browser.goto(page, &survey.page_url("settings"))?;
    browser.wait_for_text(page, "h1", "Réglages du territoire")?;

    browser.fill(page, "#dup-distance", "75")?;
    browser.fill(page, "#dup-window", "1,5")?;
    browser.click(page, "[data-testid=duplicate-settings] button[type=submit]")?;
    browser.wait_for(
        page,
        "[data-testid=duplicate-settings] [data-testid=action-done]",
    )?;
    let (_, settings) = api
        .get(&format!("/api/territories/{t}/review/settings"))
        .await?;
    assert_eq!(
        (
            settings["duplicateDistanceM"].as_f64(),
            settings["duplicateWindowHours"].as_f64()
        ),
        (Some(75.0), Some(1.5)),
        "{settings}"
    );

    browser.fill(page, "#rate-from", "2026-01-01")?;
    browser.fill(page, "#rate-amount", "11,88")?;
    browser.click(page, "[data-testid=rate-form] button[type=submit]")?;
    browser.wait_for_text(page, "[data-testid=hourly-rates]", "11,88")?;
    let (_, rates) = api
        .get(&format!("/api/territories/{t}/hourly-rates"))
        .await?;
    assert_eq!(rates[0]["centsPerHour"], 1188, "{rates}");

    browser.fill(page, "#sensitive-name", "Bufo bufo")?;
    browser.click(page, "[data-testid=sensitive-form] button[type=submit]")?;
    browser.wait_for_text(page, "[data-testid=sensitive-taxa]", "Bufo bufo")?;
    let (_, exports) = api
        .get(&format!("/api/territories/{t}/export-settings"))
        .await?;
    assert_eq!(
        exports["sensitiveTaxa"][0]["scientificName"], "Bufo bufo",
        "{exports}"
    );

    // Two bad lines: both are listed, by line and column, at the first try;
    // the file cannot be applied.
    let bad = "CD_NOM\tLB_NOM\n3764\tParus major\nabc\tTurdus merula\n4001\t\n";
    browser.set_input_file(
        page,
        "#species-file",
        "liste.tsv",
        "text/tab-separated-values",
        bad.as_bytes(),
    )?;
    browser.click(page, "[data-testid=species-form] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=species-problems]",
        "2 ligne(s) du fichier ne peuvent pas être importées",
    )?;
    let problems: Vec<String> = browser
        .text(page, "[data-testid=species-problems] tbody")?
        .lines()
        .map(|row| {
            row.split('\t')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    assert_eq!(
        problems,
        [
            r#"3 | CD_NOM | line 3: CD_NOM "abc" is not an integer"#,
            "4 | LB_NOM | line 4: LB_NOM is empty; every species needs its scientific name"
        ],
    );
    assert_eq!(
        browser.count(page, "[data-testid=species-preview] button")?,
        0,
        "a file with problems cannot be applied"
    );

    let fixed = "CD_NOM\tLB_NOM\n3764\tParus major\n4117\tTurdus merula\n";
    browser.set_input_file(
        page,
        "#species-file",
        "liste.tsv",
        "text/tab-separated-values",
        fixed.as_bytes(),
    )?;
    browser.click(page, "[data-testid=species-form] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=preview-added]",
        "Parus major, Turdus merula",
    )?;
    browser.assert_accessible(page, "settings")?;
    screenshots(browser, page, "settings")?;
    let (_, before) = api
        .get(&format!("/api/territories/{t}/species-list"))
        .await?;
    assert_eq!(before["species"], 0, "a preview imports nothing: {before}");
    browser.click(page, "[data-testid=species-preview] button")?;
    browser.wait_for_text(page, "[data-testid=species-count]", "2 espèce(s)")?;
    let (_, after) = api
        .get(&format!("/api/territories/{t}/species-list"))
        .await?;
    assert_eq!(after["species"], 2, "{after}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regie_auditor_reads_every_page_without_any_action_control() -> anyhow::Result<()> {
    init_test_logging();
    let mut survey = Survey::seed().await?;
    // The régie audits a second territory: after login, it chooses.
    let other = admin::create_territory(&survey.pool, "Berges du Rhône", None).await?;
    admin::add_membership(
        &survey.pool,
        survey.auditor.account_id,
        other,
        Role::RegieAuditor,
        None,
    )
    .await?;
    let mut browser = Driver::start("auditor")?;
    let page = browser.new_page(1280, 900, "fr-FR")?;
    log_in(&mut browser, page, &survey, &survey.auditor)?;
    browser.wait_for_text(page, "h1", "Choisir un territoire")?;
    let list = browser.text(page, "[data-testid=territory-list]")?;
    assert!(
        list.contains("Berges du Rhône") && list.contains("audit"),
        "{list}"
    );
    browser.click(
        page,
        "[data-testid=territory-list] a:has-text('Friche Saint-Vincent')",
    )?;
    browser.wait_for_text(page, "h1", "Tableau de bord — Friche Saint-Vincent")?;
    browser.wait_for_text(page, "[data-testid=total-sighting]", "4")?;

    // What each page shows once loaded, then what it must not offer.
    let pages = [
        ("dashboard", "[data-testid=latest-activity]"),
        (
            "table",
            "[data-testid=review-table] tbody tr[data-record-id]",
        ),
        ("conflicts", "[data-testid=conflict-value]"),
        ("duplicates", "[data-testid=duplicate-queue] li.pair"),
        ("reports", "[data-testid=report-board] li[data-record-id]"),
        ("hours", "[data-testid=pending-hours] tr[data-record-id]"),
        ("invalid", "[data-testid=invalid-records] > li"),
        ("invitations", "[data-testid=invitations-coordinators-only]"),
        ("settings", "[data-testid=duplicate-settings]"),
        ("territory", "[data-testid=territory-identity]"),
        ("sites", "[data-testid=sites] [data-testid=site-row]"),
        ("people", "[data-testid=members] [data-testid=member-row]"),
    ];
    for (name, loaded) in pages {
        browser.goto(page, &survey.page_url(name))?;
        browser.wait_for(page, loaded)?;
        browser.wait_for(page, "main[data-readonly=true] .notice")?;
        // The filters stay: reading is filtering. Nothing else acts.
        for control in [
            "main [data-action]",
            "main input[type=checkbox]",
            "main form:not(.filters)",
            "main button:not(.filters button):not(.pager button):not(.thumb)",
        ] {
            assert_eq!(
                browser.count(page, control)?,
                0,
                "{name}: an auditor sees {control}"
            );
        }
    }
    // A record page: its fields and history, no decision form.
    browser.goto(
        page,
        &survey.page_url(&format!("record/{}", survey.to_validate)),
    )?;
    browser.wait_for_text(page, "[data-field=scientificName]", "Parus major")?;
    // Its one form is the past state's date (a reading filter).
    assert_eq!(browser.count(page, "main form:not(.filters)")?, 0);
    // The stream is authorised for auditors too.
    browser.wait_for_text(page, "[data-testid=live-status]", "En direct")?;
    assert_eq!(browser.page_errors()?, Vec::<String>::new());

    a_regie_auditor_audits_the_territory(&mut browser, page, &mut survey).await?;
    a_wrong_old_password_refuses_a_password_change(&mut browser, page, &survey).await?;
    an_admin_resets_a_forgotten_password_through_the_pages(&mut browser, &survey).await?;
    assert_eq!(browser.page_errors()?, Vec::<String>::new());
    Ok(())
}

/// The auditor forgets their password: an admin, on their account page,
/// issues a one-time code for the auditor's email and reads the link to pass
/// on; opened (in a tab with no session), the link's page sets a new
/// password, which then logs in; an unknown code shows the server's message.
async fn an_admin_resets_a_forgotten_password_through_the_pages(
    browser: &mut Driver,
    survey: &Survey,
) -> anyhow::Result<()> {
    let (admin_email, admin_password) = ("admin@friche.example.org", "the admin's own password");
    admin::create_account(
        &survey.pool,
        "Admin",
        Some(admin_email),
        Some(admin_password),
        true,
    )
    .await?;
    let auditor_email = &survey
        .auditor
        .login
        .as_ref()
        .expect("a password account")
        .email;
    let page = browser.new_page(1280, 900, "fr-FR")?;
    browser.goto(
        page,
        &survey.server.http_url("/#/reset?code=fnr_not-a-code"),
    )?;
    browser.wait_for_text(page, "#reset-title", "Nouveau mot de passe")?;
    let forgotten = "a password remembered at last";
    browser.fill(page, "#reset-password", forgotten)?;
    browser.fill(page, "#reset-confirm", forgotten)?;
    browser.click(page, "[data-testid=reset-form] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=reset-form] [role=alert]",
        "password reset code is not known",
    )?;

    browser.goto(page, &survey.server.http_url("/"))?;
    browser.fill(page, "#login-email", admin_email)?;
    browser.fill(page, "#login-password", admin_password)?;
    browser.key(page, "Enter")?;
    browser.wait_for_text(page, "header.top .who", "Mon compte")?;
    browser.goto(page, &survey.server.http_url("/#/account"))?;
    browser.fill(page, "#reset-email", auditor_email)?;
    browser.click(page, "[data-testid=issue-reset] button[type=submit]")?;
    browser.wait_for_count(page, "[data-testid=reset-link]", 1)?;
    let link = browser.text(page, "[data-testid=reset-link]")?;
    browser.assert_accessible(page, "account-admin")?;
    screenshots(browser, page, "account-admin")?;

    browser.click(page, "header.top .who button:has-text('Se déconnecter')")?;
    browser.wait_for_text(page, "#login-title", "Connexion")?;
    browser.goto(page, &link)?;
    browser.wait_for_text(page, "#reset-title", "Nouveau mot de passe")?;
    browser.fill(page, "#reset-password", forgotten)?;
    browser.fill(page, "#reset-confirm", forgotten)?;
    browser.assert_accessible(page, "reset")?;
    screenshots(browser, page, "reset")?;
    browser.click(page, "[data-testid=reset-form] button[type=submit]")?;
    browser.wait_for_text(page, "[data-testid=reset-done]", "Mot de passe enregistré")?;
    assert!(
        admin::login(&survey.pool, auditor_email, forgotten)
            .await?
            .is_some(),
        "the new password logs in"
    );
    Ok(())
}

/// On their account page, the auditor sees their open sessions; a wrong old
/// password is refused with the server's message naming `oldPassword`, and
/// nothing changes; the right one changes it and ends every other session,
/// which the list no longer shows. They download their own data.
async fn a_wrong_old_password_refuses_a_password_change(
    browser: &mut Driver,
    page: Page,
    survey: &Survey,
) -> anyhow::Result<()> {
    let login = survey.auditor.login.as_ref().expect("a password account");
    let elsewhere = admin::login(&survey.pool, &login.email, &login.password)
        .await?
        .expect("the auditor's password logs in");
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sessions \
         WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(survey.auditor.account_id)
    .fetch_one(&survey.pool)
    .await?;
    browser.goto(page, &survey.server.http_url("/#/account"))?;
    browser.wait_for_text(page, "h1", "Mon compte")?;
    browser.wait_for_count(page, "[data-testid=sessions] tbody tr", open as u64)?;
    browser.assert_accessible(page, "account")?;
    screenshots(browser, page, "account")?;

    let new_password = "une phrase de passe toute neuve";
    browser.fill(page, "#old-password", "not the password")?;
    browser.fill(page, "#new-password", new_password)?;
    browser.fill(page, "#confirm-password", new_password)?;
    browser.click(page, "[data-testid=password-form] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=password-form] [data-testid=action-error]",
        "is not this account's current password (oldPassword)",
    )?;
    let (status, _) = survey.server.as_(&elsewhere.token).get("/api/me").await?;
    assert_eq!(status, 200, "a refused change ends no session");

    browser.fill(page, "#old-password", &login.password)?;
    browser.click(page, "[data-testid=password-form] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=password-form] [data-testid=action-done]",
        &format!(
            "Mot de passe changé ; {} autre(s) session(s) fermée(s).",
            open - 1
        ),
    )?;
    browser.wait_for_count(page, "[data-testid=sessions] tbody tr", 1)?;
    let (status, _) = survey.server.as_(&elsewhere.token).get("/api/me").await?;
    assert_eq!(status, 401, "the other session is ended");
    let changed = admin::login(&survey.pool, &login.email, new_password).await?;
    assert!(changed.is_some(), "the new password logs in");

    // Their own data, as a file.
    let (path, name) = browser.download(page, "[data-testid=my-data]", "my-data.json")?;
    assert_eq!(name, "fieldnotes-my-data.json");
    let mine: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    assert_eq!(mine["account"]["displayName"], "Régie des Pentes", "{mine}");
    assert_eq!(mine["memberships"][0]["role"], "regie_auditor", "{mine}");
    Ok(())
}

/// `text` with the spaces `Intl` puts in French numbers ("41,58 €" has a
/// narrow no-break space) made plain.
fn plain_spaces(text: &str) -> String {
    text.replace(['\u{202f}', '\u{a0}'], " ")
}

/// Hours the régie reports on: Camille's two hours of planting (from the
/// survey) and an hour and a half of clean-up, both approved, valued at
/// 11.88 € an hour from 2020 on. By hand: 3.50 h, 41.58 € (planting 2.00 h,
/// 23.76 €; clean-up 1.50 h, 17.82 €). Seeded through the API and a phone.
async fn seed_approved_hours(survey: &mut Survey) -> anyhow::Result<String> {
    let t = survey.territory;
    let coordinator = survey.server.as_(&survey.coordinator.token);
    let (status, body) = coordinator
        .put(
            &format!("/api/territories/{t}/hourly-rates/2020-01-01"),
            &json!({"euroPerHour": "11.88", "basis": "smic"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let mut raw = records::timesheet_json(survey.camille.account_id);
    let ended = chrono::DateTime::parse_from_rfc3339(raw["endedAt"].as_str().unwrap())?;
    raw["startedAt"] = json!((ended - chrono::Duration::minutes(90)).to_rfc3339());
    raw["activity"] = json!("clean_up");
    let clean_up = typed::<TimesheetEntry>(&raw)?;
    survey.phone_a.record(&clean_up)?;
    survey.phone_a.wait_synced(TIMEOUT).await?;
    eventually(
        TIMEOUT,
        "the clean-up entry reaches the inventory",
        || async {
            let n = rows(
                &survey.pool,
                "SELECT count(*) FROM timesheet_entries WHERE territory_id = $1",
                t,
            )
            .await?;
            Ok((n == 2).then_some(()))
        },
    )
    .await?;
    let (status, body) = coordinator
        .post(
            &format!("/api/territories/{t}/review/decisions"),
            &json!({"decision": "approval", "status": "approved",
                    "records": [survey.hours, clean_up.id()]}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    eventually(TIMEOUT, "both entries are approved", || async {
        let n = rows(
            &survey.pool,
            "SELECT count(*) FROM timesheet_entries WHERE territory_id = $1 \
             AND approval_status = 'approved'",
            t,
        )
        .await?;
        Ok((n == 2).then_some(()))
    })
    .await?;
    Ok(raw["workDate"].as_str().unwrap().to_string())
}

/// The régie's own work, through the pages: the audit trail filtered (each
/// entry's before and after), the chain verified and a noted pair checked (a
/// wrong one reported as not matching, a malformed one refused with the
/// server's message), a record's audited history and its state at an
/// earlier moment, the hours report issued and printed (French labels, the
/// hand-computed totals and euros, the hash, nothing past the A4 margin),
/// and the Darwin Core Archive downloaded and opened. Each new page is
/// screenshot at 1280 and 768 px and checked by axe-core.
async fn a_regie_auditor_audits_the_territory(
    browser: &mut Driver,
    page: Page,
    survey: &mut Survey,
) -> anyhow::Result<()> {
    let work_date = seed_approved_hours(survey).await?;
    let t = survey.territory;
    let hedgehog = survey.conflicted;

    // The trail, filtered to the hedgehog's changes: its creation reads
    // "(nouvelle fiche)" → the species, field by field.
    browser.goto(page, &survey.page_url("audit"))?;
    browser.wait_for(page, "[data-testid=audit-entries] li.entry")?;
    browser.fill(page, "#audit-record", &hedgehog.to_string())?;
    browser.select(page, "#audit-action", "change")?;
    browser.click(page, "[data-testid=audit-filters] button[type=submit]")?;
    // Once filtered, only the hedgehog's changes are listed.
    browser.wait_for_count(
        page,
        &format!(
            "[data-testid=audit-entries] li.entry:not(:has([data-kind=change]):has(a[href$='{hedgehog}']))"
        ),
        0,
    )?;
    let creation = browser.text(page, "[data-testid=audit-entries] li.entry")?;
    assert!(
        creation.contains("Erinaceus europaeus")
            && creation.contains("(nouvelle fiche)")
            && creation.contains("Nom scientifique"),
        "{creation}"
    );
    // Every entry listed is a change, once the filtered page replaced the
    // whole trail.
    browser.wait_for_count(
        page,
        "[data-testid=audit-entries] li.entry:not(:has([data-kind=change]))",
        0,
    )?;
    // The approvals, by kind: the coordinator's two.
    browser.click(
        page,
        "[data-testid=audit-filters] button:has-text('Effacer les filtres')",
    )?;
    browser.select(page, "#audit-action", "approval")?;
    browser.click(page, "[data-testid=audit-filters] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=audit-entries] li.entry",
        "Marie Coordination",
    )?;
    browser.wait_for_count(
        page,
        "[data-testid=audit-entries] li.entry [data-kind=approval]",
        2,
    )?;
    browser.wait_for_count(
        page,
        "[data-testid=audit-entries] li.entry:not(:has([data-kind=approval]))",
        0,
    )?;
    // Each decision's status by its label, not its code.
    browser.wait_for_text(
        page,
        "[data-testid=audit-entries] li.entry [data-detail=status]",
        "Approuvé",
    )?;

    // The chain: verified, its head to note down as the API gives it.
    browser.click(page, "button:has-text('Vérifier la chaîne')")?;
    browser.wait_for_text(
        page,
        "[data-testid=chain-result] [data-intact=true]",
        "Chaîne intacte",
    )?;
    let seq = browser.text(page, "[data-testid=chain-seq]")?;
    let hash = browser.text(page, "[data-testid=chain-hash]")?;
    let (_, verified) = survey
        .server
        .as_(&survey.auditor.token)
        .get(&format!(
            "/api/territories/{t}/audit/verification?seq={seq}&hash={hash}"
        ))
        .await?;
    assert_eq!(verified["anchorHolds"], true, "{verified}");
    screenshots(browser, page, "audit")?;
    browser.assert_accessible(page, "audit trail")?;
    // The noted pair holds; one hex digit off, it does not; not hex, refused.
    browser.fill(page, "#noted-seq", &seq)?;
    browser.fill(page, "#noted-hash", &hash)?;
    browser.click(page, "[data-testid=check-pair] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=check-result][data-holds=true]",
        "Le couple correspond",
    )?;
    let wrong: String = hash
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == '0' {
                    '1'
                } else {
                    '0'
                }
            } else {
                c
            }
        })
        .collect();
    browser.fill(page, "#noted-hash", &wrong)?;
    browser.click(page, "[data-testid=check-pair] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=check-result][data-holds=false]",
        "Le couple ne correspond pas",
    )?;
    browser.fill(page, "#noted-hash", "not-a-hash")?;
    browser.click(page, "[data-testid=check-pair] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=check-result][role=alert]",
        "must be a SHA-256 in hex (64 characters) (hash)",
    )?;

    // The hedgehog's audited history, and the record when it was created:
    // one hedgehog, before the two phones' edits.
    browser.goto(page, &survey.page_url(&format!("record/{hedgehog}")))?;
    browser.wait_for(page, "[data-testid=record-audit] li.entry")?;
    let history = browser.text(page, "[data-testid=record-audit]")?;
    assert!(
        history.contains("Camille") && history.contains("Effectif"),
        "{history}"
    );
    browser.click(page, "[data-testid=record-audit] button[data-step='0']")?;
    browser.wait_for_text(
        page,
        "[data-testid=record-state] [data-field=individualCount]",
        "1",
    )?;
    let then = browser.text(page, "[data-testid=record-state]")?;
    assert!(then.contains("Erinaceus europaeus"), "{then}");
    browser.fill(page, "#state-at", "2001-01-01T00:00")?;
    browser.click(page, "[data-testid=state-form] button[type=submit]")?;
    browser.wait_for_text(page, "[data-testid=state-absent]", "n’existait pas")?;
    screenshots(browser, page, "record-audit")?;
    browser.assert_accessible(page, "record with its audit")?;

    // The hours report of the entries' month, issued and printed.
    let from = format!("{}-01", &work_date[..7]);
    browser.goto(page, &survey.page_url("hours-report"))?;
    browser.wait_for_text(page, "h1", "Rapport d’heures bénévoles")?;
    browser.fill(page, "#report-from", &from)?;
    browser.fill(page, "#report-to", &work_date)?;
    browser.click(page, "[data-testid=issue-report] button[type=submit]")?;
    browser.wait_for(page, "[data-testid=hours-report]")?;
    let (_, issued) = survey
        .server
        .as_(&survey.auditor.token)
        .get(&format!("/api/territories/{t}/reports/hours"))
        .await?;
    let sha256 = issued[0]["sha256"].as_str().unwrap_or_default().to_string();
    assert_eq!(issued[0]["periodFrom"], from.as_str(), "{issued}");
    browser.wait_for(
        page,
        &format!("[data-testid=issued-reports] tr[data-sha256='{sha256}']"),
    )?;
    screenshots(browser, page, "hours-report")?;
    browser.assert_accessible(page, "hours report")?;
    // Printed on A4 (210 mm less two 18 mm margins: 658 px at 96 dpi).
    browser.emulate_media(page, "print")?;
    browser.set_viewport(page, 658, 900)?;
    let printed = plain_spaces(&browser.text(page, "main")?);
    for expected in [
        "Heures bénévoles — Friche Saint-Vincent",
        "Heures approuvées : 2 saisies, 3,50 h, valorisées à 41,58 €",
        "Camille\t2\t3,50\t41,58 €",
        "Plantation\t1\t2,00\t23,76 €",
        "Nettoyage\t1\t1,50\t17,82 €",
        "Friche Saint-Vincent\t2\t3,50\t41,58 €",
        "11,88 € de l’heure (SMIC)",
        &sha256,
    ] {
        assert!(printed.contains(expected), "{expected:?} not in {printed}");
    }
    for code in [
        "clean_up",
        "planting",
        "Rapports déjà émis",
        "Émettre le rapport",
    ] {
        assert!(!printed.contains(code), "{code:?} printed: {printed}");
    }
    let fits = browser.evaluate(
        page,
        "(() => { const r = document.querySelector('[data-testid=hours-report]'); \
           return r.scrollWidth <= r.clientWidth && \
             [...r.querySelectorAll('*')].every((e) => e.getBoundingClientRect().right <= r.getBoundingClientRect().right + 0.5); })()",
    )?;
    assert_eq!(
        fits,
        json!(true),
        "something runs past the printed page's margin"
    );
    browser.screenshot(page, "hours-report-printed")?;
    browser.emulate_media(page, "screen")?;
    browser.set_viewport(page, 1280, 900)?;
    // In English at the switch, labels still.
    browser.click(page, "[data-testid=language-switch]")?;
    browser.wait_for_text(page, "[data-testid=by-activity]", "Clean-up")?;
    browser.click(page, "[data-testid=language-switch]")?;
    browser.wait_for_text(page, "[data-testid=by-activity]", "Nettoyage")?;

    // The Darwin Core Archive of every sighting still awaiting validation.
    browser.goto(page, &survey.page_url("exports"))?;
    browser.wait_for_text(page, "h1", "Exports")?;
    browser.check(page, "input[name=validation][value='0']")?;
    screenshots(browser, page, "exports")?;
    browser.assert_accessible(page, "exports")?;
    let (archive, name) = browser.download(page, "button[data-export=dwca]", "dwca.zip")?;
    assert!(name.ends_with(".zip"), "{name}");
    browser.wait_for_text(page, "[data-testid=action-done]", "téléchargé")?;
    let occurrences = std::process::Command::new("unzip")
        .arg("-p")
        .arg(&archive)
        .arg("occurrence.txt")
        .output()?;
    assert!(occurrences.status.success(), "unzip: {occurrences:?}");
    let occurrences = String::from_utf8(occurrences.stdout)?;
    assert!(
        occurrences.contains(&format!("urn:uuid:{}", survey.to_validate))
            && occurrences.contains("Parus major"),
        "{occurrences}"
    );
    Ok(())
}

/// Logs in through the login form, with the keyboard for the submit.
fn log_in_as(
    browser: &mut Driver,
    page: Page,
    server: &ServerProcess,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    browser.goto(page, &server.http_url("/"))?;
    browser.fill(page, "#login-email", email)?;
    browser.fill(page, "#login-password", password)?;
    browser.key(page, "Enter")?;
    Ok(())
}

/// The centre of `selector`'s box, in pixels from its top left corner.
fn centre_of(browser: &mut Driver, page: Page, selector: &str) -> anyhow::Result<(u32, u32)> {
    let size = browser.evaluate(
        page,
        &format!(
            "(() => {{ const r = document.querySelector({}).getBoundingClientRect(); return [r.width, r.height]; }})()",
            json!(selector)
        ),
    )?;
    let half = |i: usize| (size[i].as_f64().unwrap_or_default() / 2.0) as u32;
    Ok((half(0), half(1)))
}

/// A new deployment, through the pages only: the admin (made by
/// `create-admin`) finds the territories page empty, creates a territory,
/// is refused a boundary file that is not a valid polygon (the server's
/// reason shown), draws the boundary on the map, and creates the
/// territory's first coordinator. The coordinator adds a site by clicking
/// inside the boundary, deactivates and reactivates it. The admin disables
/// the coordinator's account: the coordinator's open page falls back to the
/// login form; enabled again on the accounts page, the account logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_a_territory_and_its_first_coordinator() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start_with(&db.url, &["--map-tiles-url="])?;
    let pool = db.pool().await?;
    let (admin_email, admin_password) = ("admin@ville.example.org", "the admin's long password");
    admin::create_account(
        &pool,
        "Admin Ville",
        Some(admin_email),
        Some(admin_password),
        true,
    )
    .await?;
    let mut browser = Driver::start("admin")?;
    let page = browser.new_page(1280, 900, "fr-FR")?;
    log_in_as(&mut browser, page, &server, admin_email, admin_password)?;
    browser.wait_for(page, "[data-testid=territory-form]")?;
    browser.assert_accessible(page, "territories, empty")?;

    browser.fill(page, "#new-territory-name", "Parc de la Feyssine")?;
    browser.fill(
        page,
        "#new-territory-description",
        "Prairies et berges du Rhône",
    )?;
    browser.click(page, "[data-testid=territory-form] button[type=submit]")?;
    browser.wait_for_text(page, "h1", "Le territoire")?;
    let hash = browser.evaluate(page, "location.hash")?;
    let territory: Uuid = hash
        .as_str()
        .and_then(|h| h.strip_prefix("#/t/"))
        .and_then(|h| h.split('/').next())
        .context("the territory's id in the address")?
        .parse()?;
    browser.wait_for_text(
        page,
        "[data-testid=boundary-state]",
        "pas encore de contour",
    )?;

    // A bow tie is no polygon: refused with PostGIS's reason, nothing saved.
    let bow_tie = json!({"type": "Polygon", "coordinates": [[
        [4.86, 45.78], [4.88, 45.80], [4.88, 45.78], [4.86, 45.80], [4.86, 45.78]
    ]]});
    browser.set_input_file(
        page,
        "#boundary-file",
        "feyssine.geojson",
        "application/geo+json",
        bow_tie.to_string().as_bytes(),
    )?;
    browser.click(page, "[data-testid=save-uploaded]")?;
    browser.wait_for_text(
        page,
        "[data-testid=boundary-tools] [data-testid=action-error]",
        "Self-intersection",
    )?;
    browser.set_input_file(
        page,
        "#boundary-file",
        "notes.geojson",
        "application/geo+json",
        b"not json",
    )?;
    browser.wait_for_text(
        page,
        "[data-testid=boundary-tools] [data-testid=action-error]",
        "n’est pas du GeoJSON",
    )?;

    // Drawn: four corners clicked on the map, then saved.
    browser.click(page, "[data-testid=start-drawing]")?;
    for (x, y) in [(300, 150), (800, 150), (800, 400), (300, 400)] {
        browser.click_at(page, "[data-testid=boundary-map]", x, y)?;
    }
    browser.wait_for_text(page, "[data-testid=draw-status]", "4 point(s)")?;
    browser.assert_accessible(page, "territory, drawing")?;
    screenshots(&mut browser, page, "territory-drawing")?;
    browser.click(page, "[data-testid=save-drawn]")?;
    browser.wait_for_text(page, "[data-testid=boundary-state]", "a un contour")?;
    let (points, valid): (i32, bool) = sqlx::query_as(
        "SELECT ST_NPoints(boundary), ST_IsValid(boundary) FROM territories WHERE id = $1",
    )
    .bind(territory)
    .fetch_one(&pool)
    .await?;
    assert_eq!(
        (points, valid),
        (5, true),
        "four corners and the closing point"
    );

    // The first coordinator: a new account with its role.
    let coordinator_email = "lea@ville.example.org";
    let coordinator_password = "Léa's own long password";
    browser.goto(page, &server.http_url(&format!("/#/t/{territory}/people")))?;
    browser.wait_for_text(page, "h1", "Personnes du territoire")?;
    browser.click(page, "[data-testid=new-account]")?;
    browser.fill(page, "#new-name", "Léa Coordination")?;
    browser.fill(page, "#new-email", coordinator_email)?;
    browser.fill(page, "#new-password", coordinator_password)?;
    browser.select(page, "#new-role", "coordinator")?;
    browser.click(page, "[data-testid=new-account-form] button[type=submit]")?;
    browser.wait_for_text(
        page,
        "[data-testid=member-row][data-role=coordinator]",
        "Léa Coordination",
    )?;
    browser.assert_accessible(page, "people")?;
    screenshots(&mut browser, page, "people")?;
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT m.role FROM memberships m JOIN accounts a ON a.id = m.account_id \
         WHERE m.territory_id = $1 AND a.email = $2",
    )
    .bind(territory)
    .bind(coordinator_email)
    .fetch_all(&pool)
    .await?;
    assert_eq!(roles, ["coordinator"]);

    // The coordinator adds a site by clicking the middle of the territory.
    let coordinator_page = browser.new_page(1280, 900, "fr-FR")?;
    log_in_as(
        &mut browser,
        coordinator_page,
        &server,
        coordinator_email,
        coordinator_password,
    )?;
    browser.wait_for_text(
        coordinator_page,
        "h1",
        "Tableau de bord — Parc de la Feyssine",
    )?;
    browser.goto(
        coordinator_page,
        &server.http_url(&format!("/#/t/{territory}/sites")),
    )?;
    browser.wait_for_text(coordinator_page, "[data-testid=sites-none]", "Aucun site")?;
    let (x, y) = centre_of(&mut browser, coordinator_page, "[data-testid=sites-map]")?;
    browser.click_at(coordinator_page, "[data-testid=sites-map]", x, y)?;
    browser.fill(coordinator_page, "#site-name", "Prairie nord")?;
    let latitude = browser.evaluate(
        coordinator_page,
        "document.querySelector('#site-lat').value",
    )?;
    assert!(
        latitude.as_str().is_some_and(|l| !l.is_empty()),
        "the click placed the site: {latitude}"
    );
    browser.click(
        coordinator_page,
        "[data-testid=site-form] button[type=submit]",
    )?;
    browser.wait_for_text(
        coordinator_page,
        "[data-testid=site-row][data-active=true]",
        "Prairie nord",
    )?;
    let inside: bool = sqlx::query_scalar(
        "SELECT ST_Covers(t.boundary, s.geom) FROM sites s JOIN territories t ON t.id = s.territory_id \
         WHERE s.territory_id = $1 AND s.name = 'Prairie nord'",
    )
    .bind(territory)
    .fetch_one(&pool)
    .await?;
    assert!(
        inside,
        "the site lies where it was clicked, inside the boundary"
    );
    // Its position to the metre, in the page's language: French decimals.
    let (latitude, longitude): (f64, f64) =
        sqlx::query_as("SELECT ST_Y(geom), ST_X(geom) FROM sites WHERE territory_id = $1")
            .bind(territory)
            .fetch_one(&pool)
            .await?;
    let french = |value: f64| {
        format!("{value:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .replace('.', ",")
    };
    let shown = browser
        .text(coordinator_page, "[data-testid=site-position]")?
        .replace('\u{2212}', "-");
    assert_eq!(
        shown,
        format!("lat. {} · long. {}", french(latitude), french(longitude))
    );
    browser.click(
        coordinator_page,
        "[data-testid=site-row] [data-testid=site-toggle]",
    )?;
    browser.wait_for(
        coordinator_page,
        "[data-testid=site-row][data-active=false]",
    )?;
    let deactivated: bool =
        sqlx::query_scalar("SELECT deactivated_at IS NOT NULL FROM sites WHERE territory_id = $1")
            .bind(territory)
            .fetch_one(&pool)
            .await?;
    assert!(deactivated);
    browser.assert_accessible(coordinator_page, "sites")?;
    screenshots(&mut browser, coordinator_page, "sites")?;
    browser.click(
        coordinator_page,
        "[data-testid=site-row] [data-testid=site-toggle]",
    )?;
    browser.wait_for(coordinator_page, "[data-testid=site-row][data-active=true]")?;

    // Disabled by the admin: the coordinator's page is logged out at its
    // next call.
    browser.reload(page)?;
    browser.click(
        page,
        "[data-testid=member-row][data-role=coordinator] [data-testid=member-account-toggle]",
    )?;
    browser.wait_for_text(
        page,
        "[data-testid=member-row][data-role=coordinator]",
        "compte désactivé",
    )?;
    assert_eq!(
        browser.dialogs(page)?,
        ["Désactiver le compte de Léa Coordination ? Ses sessions et ses téléphones seront déconnectés aussitôt."]
    );
    browser.reload(coordinator_page)?;
    browser.wait_for_text(coordinator_page, "#login-title", "Connexion")?;

    // Enabled again on the accounts page: the password logs in again.
    browser.goto(page, &server.http_url("/#/accounts"))?;
    browser.wait_for_text(
        page,
        "[data-testid=account-row][data-disabled=true]",
        "Léa Coordination",
    )?;
    browser.assert_accessible(page, "accounts")?;
    screenshots(&mut browser, page, "accounts")?;
    browser.click(
        page,
        "[data-testid=account-row][data-disabled=true] [data-testid=account-toggle]",
    )?;
    browser.wait_for_count(page, "[data-testid=account-row][data-disabled=true]", 0)?;
    log_in_as(
        &mut browser,
        coordinator_page,
        &server,
        coordinator_email,
        coordinator_password,
    )?;
    browser.wait_for_text(
        coordinator_page,
        "h1",
        "Tableau de bord — Parc de la Feyssine",
    )?;

    // Erased at her request (RGPD art. 17): asked first, then her row takes
    // a pseudonym and can no longer be enabled, and her session ends.
    let lea_row = "[data-testid=account-row]:has-text(\"Léa Coordination\")";
    browser.click(page, &format!("{lea_row} [data-testid=account-erase]"))?;
    browser.wait_for_text(
        page,
        "[data-testid=account-row][data-erased=true]",
        "Personne effacée",
    )?;
    browser.wait_for_count(page, lea_row, 0)?;
    browser.wait_for_count(
        page,
        "[data-testid=account-row][data-erased=true] [data-testid=account-toggle]",
        0,
    )?;
    assert!(browser
        .dialogs(page)?
        .last()
        .is_some_and(|asked| asked.starts_with("Effacer définitivement Léa Coordination ?")));
    browser.reload(coordinator_page)?;
    browser.wait_for_text(coordinator_page, "#login-title", "Connexion")?;
    assert_eq!(browser.page_errors()?, Vec::<String>::new());
    Ok(())
}
