//! What a city's IT watches: the Prometheus metrics, served on their own
//! address and read with a Prometheus text-format parser, with the named
//! series present and moving when a phone syncs; `/ready` false while the
//! database cannot be reached and true again after, while `/health` stays a
//! liveness answer; SIGTERM in the middle of a storm of syncing phones: a
//! clean exit within the bound, and every acknowledged change stored; the
//! review table and the exports reading a streaming replica; the service
//! logging in as a role that cannot take the owner's rights back. A backup
//! taken while phones sync, restored into a new database: the audit chain
//! verifies, and once the phones reconnect the inventory is what it was
//! before the restore; a restore over a database in use is refused.

use std::time::Duration;

use anyhow::Context;
use fieldnotes_tests::{
    accounts,
    bench::{metric_value as value, scrape_metrics as scrape},
    eventually, init_test_logging, maintenance_url, phones,
    raw_peer::RawPeer,
    records,
    replica::Replica,
    run_server_command, workspace_root, ServerProcess, TestDatabase,
};
use mobile_bridge::{
    photos::{process_photo, PhotoOutbox, PhotoSettings},
    Phone,
};
use schemas::{FieldRecord, RecordKind};
use serde_json::Value as Json;
use server::auth::Role;
use sqlx::{Connection, PgConnection, PgPool};

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_apart_from_the_api_and_move_when_a_phone_syncs() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start_with(&db.url, &["--metrics-listen", "127.0.0.1:0"])?;
    let pool = db.pool().await?;
    let metrics = server
        .metrics_addr
        .clone()
        .context("the metrics address announced")?;
    let public = reqwest::get(server.http_url("/metrics")).await?;
    assert_eq!(public.status(), 404, "the public port serves no metrics");

    let before = scrape(&metrics).await?;
    for counter in [
        "fieldnotes_sync_messages_received_total",
        "fieldnotes_sync_messages_sent_total",
        "fieldnotes_commits_total",
        "fieldnotes_photo_upload_bytes_total",
    ] {
        assert_eq!(
            value(&before, counter, &[]),
            Some(0.0),
            "{counter} at start"
        );
    }

    let territory = phones::territory_within(&pool, "Parc des métriques", None).await?;
    let camille = phones::enrol_volunteer(&pool, &territory, "Camille").await?;
    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    phone.record(&records::sighting(camille.account_id, "Parus major", 1))?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    let me = reqwest::Client::new()
        .get(server.http_url("/api/me"))
        .bearer_auth(&camille.device.secret)
        .send()
        .await?;
    assert_eq!(me.status(), 200);

    // Events count at once; states are sampled every few seconds.
    let after = eventually(TIMEOUT, "the sampled states", || async {
        let after = scrape(&metrics).await?;
        Ok((value(&after, "fieldnotes_sync_connections", &[]) == Some(1.0)).then_some(after))
    })
    .await?;
    let moved = |metric: &str| value(&after, metric, &[]).unwrap_or_default();
    assert!(moved("fieldnotes_sync_messages_received_total") >= 1.0);
    assert!(moved("fieldnotes_sync_messages_sent_total") >= 1.0);
    assert!(
        moved("fieldnotes_commits_total") >= 1.0,
        "the notebook was stored"
    );
    assert!(
        moved("fieldnotes_commit_seconds_count") >= 1.0,
        "each group commit is timed"
    );
    assert!(moved("fieldnotes_live_documents") >= 1.0);
    let route = [("route", "/api/me"), ("method", "GET"), ("status", "200")];
    assert_eq!(
        value(&after, "fieldnotes_http_requests_total", &route),
        Some(1.0),
        "requests are counted by their route's pattern"
    );
    assert!(
        value(
            &after,
            "fieldnotes_http_request_seconds_count",
            &[("route", "/api/me")]
        )
        .is_some(),
        "and timed"
    );
    assert!(value(
        &after,
        "fieldnotes_db_pool_connections",
        &[("state", "idle")]
    )
    .is_some());
    assert!(value(&after, "fieldnotes_db_pool_max_connections", &[]).is_some_and(|n| n > 0.0));
    assert_eq!(
        value(
            &after,
            "fieldnotes_audit_backlog_commits",
            &[("stage", "set_aside")]
        ),
        Some(0.0)
    );
    assert!(
        after.docs.contains_key("fieldnotes_commit_seconds"),
        "each series is described"
    );

    // A refusal is counted by its reason: a peer sends bytes that are no
    // automerge-repo message.
    let mut peer = RawPeer::connect(&server.sync_url(), &camille.device).await?;
    peer.send_bytes(vec![0xff, 0x00, 0x13]).await?;
    eventually(TIMEOUT, "the refusal counted", || async {
        let now = scrape(&metrics).await?;
        Ok(value(
            &now,
            "fieldnotes_sync_refusals_total",
            &[("reason", "protocol")],
        )
        .filter(|n| *n >= 1.0))
    })
    .await?;
    Ok(())
}

/// Connects to the test cluster as its superuser.
async fn superuser() -> anyhow::Result<PgConnection> {
    Ok(PgConnection::connect(&maintenance_url()).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_says_no_while_the_database_is_unreachable_and_yes_after() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let client = reqwest::Client::new();
    let ready = || async {
        let response = client.get(server.http_url("/ready")).send().await?;
        let status = response.status().as_u16();
        let body: Json = response.json().await?;
        anyhow::Ok((status, body))
    };
    let (status, body) = ready().await?;
    assert_eq!((status, &body["ready"]), (200, &Json::Bool(true)), "{body}");

    // The database refuses connections and drops the ones open: as if its
    // server were down, for this database only.
    let mut admin = superuser().await?;
    sqlx::query(&format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
        db.name
    ))
    .execute(&mut admin)
    .await?;
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db.name)
        .execute(&mut admin)
        .await?;
    let body = eventually(TIMEOUT, "/ready refusing", || async {
        let (status, body) = ready().await?;
        Ok((status == 503).then_some(body))
    })
    .await?;
    assert_eq!(body["error"]["code"], "not_ready");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|r| r.starts_with("database unreachable")),
        "{body}"
    );
    let alive = client.get(server.http_url("/health")).send().await?;
    assert_eq!(
        alive.status(),
        500,
        "/health says the database is gone; the process answers"
    );

    sqlx::query(&format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
        db.name
    ))
    .execute(&mut admin)
    .await?;
    eventually(TIMEOUT, "/ready accepting again", || async {
        let (status, body) = ready().await?;
        Ok((status == 200 && body["ready"] == true).then_some(()))
    })
    .await?;
    Ok(())
}

/// Phones syncing when the server is told to stop (SIGTERM).
const STORM_PHONES: usize = 8;

/// A storm of phones recording and syncing; SIGTERM once some changes were
/// acknowledged: the process closes the connections and exits within its
/// bound (5 s for connections to finish, then the process ends), and every
/// sighting a phone saw acknowledged is in the inventory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_storm_keeps_every_acknowledged_change_and_exits_in_time(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let mut server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory_within(&pool, "Parc de l'orage", None).await?;
    let url = server.sync_url();
    let acknowledged = std::sync::Mutex::new(Vec::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let mut volunteers = Vec::new();
    for n in 0..STORM_PHONES {
        volunteers
            .push(phones::enrol_volunteer(&pool, &territory, &format!("Bénévole {n}")).await?);
    }
    // Each phone records a sighting and waits for the server's
    // acknowledgement, again and again, until the server is gone.
    let storm = volunteers.iter().map(|volunteer| {
        let (url, acknowledged, stop) = (&url, &acknowledged, &stop);
        async move {
            let mut phone =
                Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
            phone.go_online(url).await?;
            let mut unacknowledged = Vec::new();
            while !stop.is_cancelled() {
                let sighting = records::sighting(volunteer.account_id, "Parus major", 1);
                phone.record(&sighting)?;
                unacknowledged.push(sighting.id());
                if phone.wait_synced(Duration::from_secs(3)).await.is_err() {
                    break;
                }
                acknowledged
                    .lock()
                    .expect("acknowledged poisoned")
                    .append(&mut unacknowledged);
            }
            phone.shut_down().await;
            anyhow::Ok(())
        }
    });
    let signal = async {
        eventually(
            TIMEOUT,
            "changes acknowledged before the signal",
            || async {
                let count = acknowledged.lock().expect("acknowledged poisoned").len();
                Ok((count >= 3 * STORM_PHONES).then_some(()))
            },
        )
        .await?;
        let sent = std::time::Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(server.pid() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let status = loop {
            if let Some(status) = server.exit_status()? {
                break status;
            }
            anyhow::ensure!(sent.elapsed() < TIMEOUT, "the server did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let took = sent.elapsed();
        stop.cancel();
        anyhow::Ok((status, took))
    };
    let (phones_done, signalled) = tokio::join!(futures::future::join_all(storm), signal);
    let (status, took) = signalled?;
    for phone in phones_done {
        phone?;
    }
    assert!(status.success(), "a clean exit: {status}");
    assert!(
        took < Duration::from_secs(15),
        "the process exits within its bound; it took {took:?}"
    );
    let acknowledged = acknowledged.into_inner().expect("acknowledged poisoned");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings WHERE id = ANY($1)")
        .bind(&acknowledged)
        .fetch_one(&pool)
        .await?;
    assert_eq!(
        stored as usize,
        acknowledged.len(),
        "every acknowledged sighting is stored"
    );
    Ok(())
}

/// Rows of a CSV export, its header aside.
async fn csv_rows(server: &ServerProcess, path: &str, token: &str) -> anyhow::Result<usize> {
    let text = reqwest::Client::new()
        .get(server.http_url(path))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text.lines().count().saturating_sub(1))
}

/// A streaming replica made with `pg_basebackup`, named by
/// `--database-read-url`: the review table and the exports read from it.
/// While its replay is paused, a sighting the primary stored is in neither;
/// resumed, both show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_table_and_the_exports_read_from_a_streaming_replica() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let pool = db.pool().await?;
    server::MIGRATOR.run(&pool).await?;
    let replica = Replica::start().await?;
    let server =
        ServerProcess::start_with(&db.url, &["--database-read-url", &replica.url(&db.name)?])?;
    let territory = phones::territory_within(&pool, "Parc répliqué", None).await?;
    let t = territory.id;
    let coordinator =
        accounts::password_actor(&pool, "Coordination", Some((t, Role::Coordinator)), false)
            .await?;
    let camille = phones::enrol_volunteer(&pool, &territory, "Camille").await?;
    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    for name in ["Parus major", "Turdus merula"] {
        phone.record(&records::sighting(camille.account_id, name, 1))?;
    }
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    let api = server.as_(&coordinator.token);
    let table = format!("/api/territories/{t}/review/records?kind=sighting");
    let export = format!("/api/territories/{t}/exports/sightings.csv?validation=0,1,2,3,4,5,6");
    let listed = || async {
        let (status, page) = api.get(&table).await?;
        anyhow::ensure!(status == 200, "{page}");
        anyhow::Ok(page["items"].as_array().map_or(0, Vec::len))
    };
    eventually(TIMEOUT, "the replica has both sightings", || async {
        Ok((listed().await? == 2).then_some(()))
    })
    .await?;

    let mut standby = replica.superuser().await?;
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut standby)
        .await?;
    phone.record(&records::sighting(
        camille.account_id,
        "Erithacus rubecula",
        1,
    ))?;
    phone.wait_synced(TIMEOUT).await?;
    let on_primary: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sightings WHERE territory_id = $1")
            .bind(t)
            .fetch_one(&pool)
            .await?;
    assert_eq!(on_primary, 3, "the primary stored the third sighting");
    assert_eq!(
        listed().await?,
        2,
        "the review table reads the paused replica"
    );
    assert_eq!(
        csv_rows(&server, &export, &coordinator.token).await?,
        2,
        "so does the export"
    );

    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut standby)
        .await?;
    eventually(TIMEOUT, "the replica catching up", || async {
        Ok((listed().await? == 3).then_some(()))
    })
    .await?;
    assert_eq!(csv_rows(&server, &export, &coordinator.token).await?, 3);
    Ok(())
}

/// An installation of the previous release: the migrations up to 0019,
/// applied by the schema's owner (the superuser here).
async fn previous_release(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let files = tempfile::tempdir()?;
    for entry in std::fs::read_dir(workspace_root().join("server").join("migrations"))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let version: Option<u32> = name.split('_').next().and_then(|v| v.parse().ok());
        if name.ends_with(".sql") && version.is_some_and(|v| v <= 19) {
            std::fs::copy(&path, files.path().join(name))?;
        }
    }
    sqlx::migrate::Migrator::new(files.path())
        .await?
        .run(pool)
        .await?;
    Ok(())
}

/// The service logs in as a member of `fieldnotes_service` only, the
/// migrations run as the owner (`--database-owner-url`), on an installation
/// of the previous release: it upgrades, a phone syncs, the audit trail
/// chains and verifies; and that login role can neither take the owner's
/// rights back (`SET ROLE`, `RESET ROLE`) nor rewrite the trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_login_role_cannot_take_the_owners_rights_nor_rewrite_the_trail(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let pool = db.pool().await?;
    previous_release(&pool).await?;
    let role = format!("fieldnotes_app_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!(
        "CREATE ROLE {role} LOGIN NOSUPERUSER IN ROLE fieldnotes_service"
    ))
    .execute(&pool)
    .await?;
    let mut service_url = url::Url::parse(&db.url)?;
    service_url
        .set_username(&role)
        .map_err(|()| anyhow::anyhow!("a URL with a user"))?;
    let server =
        ServerProcess::start_with(service_url.as_str(), &["--database-owner-url", &db.url])?;

    let territory = phones::territory_within(&pool, "Parc des rôles", None).await?;
    let t = territory.id;
    let auditor =
        accounts::password_actor(&pool, "Régie", Some((t, Role::RegieAuditor)), false).await?;
    let camille = phones::enrol_volunteer(&pool, &territory, "Camille").await?;
    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    phone.record(&records::sighting(camille.account_id, "Parus major", 1))?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    let api = server.as_(&auditor.token);
    let verification = eventually(TIMEOUT, "the change chained", || async {
        let (status, verification) = api
            .get(&format!("/api/territories/{t}/audit/verification"))
            .await?;
        anyhow::ensure!(status == 200, "{verification}");
        Ok((verification["entries"].as_i64().unwrap_or_default() > 0).then_some(verification))
    })
    .await?;
    assert_eq!(verification["intact"], true, "{verification}");
    assert_eq!(verification["setAsideCount"], 0, "{verification}");

    let mut service = PgConnection::connect(service_url.as_str()).await?;
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut service)
            .await?;
    assert!(!superuser);
    sqlx::query("RESET ROLE").execute(&mut service).await?;
    let owner = sqlx::query("SET ROLE postgres").execute(&mut service).await;
    assert!(owner.is_err(), "the owner's role is out of reach");
    for rewrite in [
        "UPDATE audit_log SET after = '{}'::jsonb",
        "DELETE FROM audit_log",
        "UPDATE audit_chain_heads SET seq = 0",
        "DELETE FROM _sqlx_migrations",
    ] {
        let refused = sqlx::query(rewrite).execute(&mut service).await;
        let code = refused
            .as_ref()
            .err()
            .and_then(|e| e.as_database_error())
            .and_then(|e| e.code())
            .map(|c| c.to_string());
        assert_eq!(
            code.as_deref(),
            Some("42501"),
            "{rewrite}: insufficient_privilege ({refused:?})"
        );
    }
    Ok(())
}

/// What coordinators find in the inventory: each sighting's fields that a
/// phone's changes decide, each photo's bytes (their MD5), each invalid
/// record; one line each, sorted.
async fn inventory(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT concat_ws(' | ', 'sighting', id, doc_id, scientific_name, individual_count,
                          ST_AsText(geom), author_id, device_id, modified_at, conflicts::text)
           FROM sightings
         UNION ALL
         SELECT concat_ws(' | ', 'photo', sha256, md5(data), territory_id, uploaded_by) FROM photos
         UNION ALL
         SELECT concat_ws(' | ', 'invalid', doc_id, kind, record_key, raw::text) FROM invalid_records
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await?)
}

/// Runs `verify-audit` on `database_url`; the entries chained in all, once
/// every territory's chain verified.
fn audit_verifies(database_url: &str) -> anyhow::Result<i64> {
    let output = run_server_command(database_url, &["verify-audit"])?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "verify-audit failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut entries = 0;
    for line in stdout.lines() {
        let verification: Json = serde_json::from_str(line)?;
        anyhow::ensure!(verification["intact"] == true, "{verification}");
        entries += verification["entries"].as_i64().context("entries")?;
    }
    Ok(entries)
}

/// The coordinator holding `token` verifies `record` with `status`.
async fn verify(
    server: &ServerProcess,
    token: &str,
    territory: uuid::Uuid,
    record: uuid::Uuid,
    status: &str,
) -> anyhow::Result<()> {
    let (code, body) = server
        .as_(token)
        .post(
            &format!("/api/territories/{territory}/review/decisions"),
            &serde_json::json!({
                "decision": "verification", "status": status, "reason": "seen on the photo",
                "records": [record],
            }),
        )
        .await?;
    anyhow::ensure!(code == 200, "{code} {body}");
    Ok(())
}

/// Waits until `phone`'s review document holds a verification of `record`
/// with `status`.
async fn decision_on_phone(
    phone: &Phone,
    review: &samod::DocumentId,
    record: uuid::Uuid,
    status: &str,
) -> anyhow::Result<()> {
    eventually(TIMEOUT, "the decision on the phone", || async {
        let decisions = phone.decisions(review.clone()).await?;
        Ok(decisions
            .iter()
            .any(|d| d.record_id == record && d.status == status)
            .then_some(()))
    })
    .await
}

/// A small photo as the phone stores it (processed from a PNG).
fn small_photo() -> anyhow::Result<mobile_bridge::photos::ProcessedPhoto> {
    let pixels = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    pixels.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(process_photo(png.get_ref(), PhotoSettings::default())?)
}

/// The volunteers whose phones sync around the backup.
const BACKUP_VOLUNTEERS: [&str; 3] = ["Anaïs", "Bastien", "Chloé"];

/// Three phones sync sightings (and one a photo); a backup is taken with the
/// real `fieldnotes-server backup` while one phone goes on recording and
/// syncing; then every phone records a new sighting and edits an old one,
/// and a coordinator's decision reaches the first phone's review document.
/// The server stops, the backup is restored into a new database with the
/// real `restore`, and a server starts on it: the audit chain verifies, the
/// restored inventory lacks what came after the backup, and once the phones
/// (which kept their notebooks) reconnect, it equals the inventory from
/// before the restore; the chain still verifies, longer. The phone whose
/// review document holds the lost decision heals like the others (it is not
/// led to offer that document's changes, which the judge would refuse), and
/// still receives the decisions taken after the restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_verifies_and_the_phones_heal_what_it_missed() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let mut server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory_within(&pool, "Parc de la sauvegarde", None).await?;
    let mut devices = Vec::new();
    for (n, name) in BACKUP_VOLUNTEERS.into_iter().enumerate() {
        let volunteer = phones::enrol_volunteer(&pool, &territory, name).await?;
        let mut phone =
            Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
        let first = records::sighting(volunteer.account_id, "Erithacus rubecula", n as i64 + 1);
        phone.record(&first)?;
        phone.go_online(&server.sync_url()).await?;
        phone.wait_synced(TIMEOUT).await?;
        devices.push((volunteer, phone, first.id()));
    }
    let coordinator = accounts::password_actor(
        &pool,
        "Marie",
        Some((territory.id, Role::Coordinator)),
        false,
    )
    .await?;
    let (code, body) = server
        .as_(&devices[0].0.device.secret)
        .get(&format!(
            "/api/territories/{}/review-document",
            territory.id
        ))
        .await?;
    anyhow::ensure!(code == 200, "{code} {body}");
    let review: samod::DocumentId = body["documentId"]
        .as_str()
        .context("the review document's id")?
        .parse()?;
    verify(&server, &coordinator.token, territory.id, devices[0].2, "1").await?;
    decision_on_phone(&devices[0].1, &review, devices[0].2, "1").await?;

    let photo = small_photo()?;
    let photo_dir = tempfile::tempdir()?;
    let outbox = PhotoOutbox::new(photo_dir.path())?;
    outbox.add(&photo)?;
    let report = outbox
        .upload_all(
            &url::Url::parse(&server.http_url("/"))?,
            &devices[0].0.device.secret,
        )
        .await;
    assert_eq!(report.uploaded, vec![photo.sha256.clone()], "{report:?}");

    // The backup, while the third phone records and syncs.
    let backups = tempfile::tempdir()?;
    let file = backups.path().join("fieldnotes.backup");
    let file_arg = file.to_str().context("a UTF-8 path")?.to_string();
    let backing_up = {
        let (url, file_arg) = (db.url.clone(), file_arg.clone());
        tokio::task::spawn_blocking(move || {
            run_server_command(&url, &["backup", "--output", &file_arg])
        })
    };
    let (volunteer, phone, _) = &devices[2];
    let mut during = 0;
    loop {
        during += 1;
        phone.record(&records::sighting(
            volunteer.account_id,
            "Passer domesticus",
            during,
        ))?;
        phone.wait_synced(TIMEOUT).await?;
        if backing_up.is_finished() {
            break;
        }
    }
    let output = backing_up.await??;
    assert!(
        output.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let announced: Json = serde_json::from_slice(&output.stdout)?;
    assert!(
        announced["bytes"].as_u64().is_some_and(|bytes| bytes > 0),
        "{announced}"
    );
    assert_eq!(
        std::fs::metadata(&file)?.len(),
        announced["bytes"].as_u64().unwrap_or_default()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file)?.permissions().mode() & 0o777,
        0o600,
        "the backup is its owner's only"
    );
    tracing::info!(during, "sightings synced while the backup ran");

    // After the backup: a new sighting on each phone, and an edit of its first.
    let mut after_backup = Vec::new();
    for (volunteer, phone, first) in &devices {
        let sighting = records::sighting(volunteer.account_id, "Turdus merula", 9);
        phone.record(&sighting)?;
        phone.edit(
            RecordKind::Sighting,
            *first,
            "individualCount",
            &Json::from(42),
        )?;
        phone.wait_synced(TIMEOUT).await?;
        after_backup.push(sighting.id());
    }
    // A decision only the server held (and the first phone's review document).
    verify(&server, &coordinator.token, territory.id, devices[0].2, "2").await?;
    decision_on_phone(&devices[0].1, &review, devices[0].2, "2").await?;
    let before = inventory(&pool).await?;
    assert_eq!(
        before
            .iter()
            .filter(|line| line.starts_with("sighting"))
            .count(),
        2 * BACKUP_VOLUNTEERS.len() + during as usize
    );
    for (_, phone, _) in &mut devices {
        phone.go_offline();
    }
    assert!(server.terminate()?.success());

    let restored = TestDatabase::create().await?;
    let output = run_server_command(&restored.url, &["restore", "--input", &file_arg])?;
    assert!(
        output.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let restored_pool = restored.pool().await?;
    let rights: (bool, bool) = sqlx::query_as(
        "SELECT has_table_privilege('fieldnotes_service', 'sightings', 'INSERT'),
                has_table_privilege('fieldnotes_service', 'audit_log', 'UPDATE')",
    )
    .fetch_one(&restored_pool)
    .await?;
    assert_eq!(
        rights,
        (true, false),
        "the service role's rights as the migrations gave them"
    );
    let server = ServerProcess::start(&restored.url)?;
    let chained = audit_verifies(&restored.url)?;
    assert!(chained > 0, "the restored trail holds the backup's entries");
    let missed: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings WHERE id = ANY($1)")
        .bind(&after_backup)
        .fetch_one(&restored_pool)
        .await?;
    assert_eq!(missed, 0, "the backup predates the last sightings");
    assert_ne!(inventory(&restored_pool).await?, before);

    // The phones come back: each sends what the restored server lacks.
    for (_, phone, _) in &mut devices {
        phone.go_online(&server.sync_url()).await?;
    }
    for (_, phone, _) in &devices {
        phone.wait_synced(TIMEOUT).await?;
    }
    assert_eq!(inventory(&restored_pool).await?, before);
    assert!(
        audit_verifies(&restored.url)? > chained,
        "the healed changes are chained after the restored ones"
    );
    // The review document still syncs: a decision on a healed sighting.
    verify(
        &server,
        &coordinator.token,
        territory.id,
        after_backup[0],
        "1",
    )
    .await?;
    decision_on_phone(&devices[0].1, &review, after_backup[0], "1").await?;
    for (_, phone, _) in &devices {
        phone.wait_synced(TIMEOUT).await?;
    }
    for (_, phone, _) in devices {
        phone.shut_down().await;
    }
    Ok(())
}

/// A restore into a database that holds tables is refused before anything
/// is written, naming the database; a file that is no backup is refused and
/// leaves an empty database empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_never_restored_over_a_database_in_use() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    phones::territory_within(&pool, "Parc en service", None).await?;
    let backups = tempfile::tempdir()?;
    let file = backups.path().join("fieldnotes.backup");
    let file_arg = file.to_str().context("a UTF-8 path")?;
    let output = run_server_command(&db.url, &["backup", "--output", file_arg])?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Work after the backup, which a restore over the database would lose.
    phones::territory_within(&pool, "Parc d'après", None).await?;
    let territories = || async {
        sqlx::query_scalar::<_, String>("SELECT name FROM territories ORDER BY name")
            .fetch_all(&pool)
            .await
    };
    let before = territories().await?;

    let output = run_server_command(&db.url, &["restore", "--input", file_arg])?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("database {} is not empty", db.name))
            && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert_eq!(territories().await?, before, "the database is as it was");
    drop(server);

    let empty = TestDatabase::create().await?;
    let not_a_backup = backups.path().join("notes.txt");
    std::fs::write(&not_a_backup, "not a backup")?;
    let output = run_server_command(
        &empty.url,
        &[
            "restore",
            "--input",
            not_a_backup.to_str().context("a UTF-8 path")?,
        ],
    )?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("pg_restore failed"), "{stderr}");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&empty.pool().await?)
    .await?;
    assert_eq!(tables, 0, "nothing was restored");
    Ok(())
}
