//! The FFI facade as an app uses it, from several threads: a sync waiting for
//! the server does not hold the device, so the volunteer keeps recording (and
//! the app keeps showing the status) while it waits.

use std::time::{Duration, Instant};

use anyhow::bail;
use fieldnotes_tests::{init_test_logging, phones, ServerProcess, TestDatabase};
use mobile_bridge::ffi::{FieldDevice, FieldError, SightingInput};

const SYNC_TIMEOUT_SECS: u32 = 20;

#[test]
fn a_sighting_is_recorded_while_a_sync_waits_for_an_unreachable_server() -> anyhow::Result<()> {
    init_test_logging();
    // The FFI runs its own runtime: the setup's runtime must not be current
    // while FFI calls are made.
    let setup = tokio::runtime::Runtime::new()?;
    let (db, server, code) = setup.block_on(async {
        let db = TestDatabase::create().await?;
        let server = ServerProcess::start(&db.url)?;
        let pool = db.pool().await?;
        let territory = phones::territory(&pool, "Parc de la Feyssine").await?;
        let code = phones::invitation_code(&pool, &territory, "Sacha").await?;
        anyhow::Ok((db, server, code))
    })?;
    let store = tempfile::tempdir()?;
    let device = FieldDevice::enrol(
        store.path().display().to_string(),
        server.http_url(""),
        code,
        "Pixel de Sacha".to_string(),
        Some("Sacha".to_string()),
    )?;
    drop(server); // no signal from here on

    let syncing = {
        let device = device.clone();
        std::thread::spawn(move || device.sync(SYNC_TIMEOUT_SECS))
    };
    // The sync has taken the device and gone online once a connection attempt failed.
    let deadline = Instant::now() + Duration::from_secs(SYNC_TIMEOUT_SECS.into());
    while device.status().last_error.is_none() {
        if Instant::now() > deadline {
            bail!("the sync never tried to connect");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let id = device.record_sighting(SightingInput {
        scientific_name: "Erinaceus europaeus".to_string(),
        latitude: 45.7885,
        longitude: 4.8708,
        accuracy_m: Some(6.0),
        individual_count: Some(1),
        vernacular_name: Some("Hérisson d'Europe".to_string()),
        taxon_id: None,
        site: None,
        notes: None,
        observed_at: None,
    })?;

    match syncing.join().expect("the sync thread") {
        Err(FieldError::SyncTimeout { status, .. }) => assert_eq!(
            status.pending_records, 1,
            "the sync's last report counts the sighting recorded while it waited"
        ),
        other => bail!("expected the sync to time out, got {other:?}"),
    }
    let pending = device.pending()?;
    assert!(
        pending.iter().any(|item| item.id == id),
        "the sighting waits for the next sync: {pending:?}"
    );
    drop(db);
    Ok(())
}
