//! The phone store survives being killed at any moment: `fieldkit record-loop`
//! records sightings (syncing in the background) and is SIGKILLed after a random
//! delay, 50 times over the same store. After every kill the store loads and
//! holds every id the loop had printed (an id is printed only once `create`
//! returned, i.e. once it was acknowledged to the caller); at the end, one sync
//! puts every one of them on the server exactly once.

use std::{
    collections::HashSet,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{ensure, Context};
use fieldnotes_tests::{
    eventually, fieldkit_binary, init_test_logging, phones, ServerProcess, TestDatabase,
};
use serde_json::Value;
use uuid::Uuid;

const RUNS: usize = 50;

/// A small xorshift generator: the seed is printed, so a failing run can be
/// replayed with `SIGKILL_SEED=…`.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

fn fieldkit_ok(store: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(fieldkit_binary()?)
        .arg("--store")
        .arg(store)
        .args(args)
        .output()?;
    ensure!(
        output.status.success(),
        "fieldkit {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Starts the record loop, kills it after `delay`, and returns the ids it
/// printed in full (a line cut by the kill is not an acknowledgement).
fn record_then_kill(store: &Path, delay: Duration) -> anyhow::Result<Vec<Uuid>> {
    let mut child = Command::new(fieldkit_binary()?)
        .arg("--store")
        .arg(store)
        .args(["record-loop", "--pause-ms", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout is piped")?;
    let printed = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let printed = printed.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            while lines.read_line(&mut line).unwrap_or(0) > 0 {
                if let (true, Ok(id)) = (line.ends_with('\n'), line.trim().parse::<Uuid>()) {
                    printed.lock().unwrap().push(id);
                }
                line.clear();
            }
        })
    };
    std::thread::sleep(delay);
    child.kill()?; // SIGKILL
    child.wait()?;
    reader.join().expect("the reader thread");
    let ids = printed.lock().unwrap().clone();
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_survives_sigkill_at_random_moments_and_the_store_always_loads(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Friche de la Lône").await?;
    let code = phones::invitation_code(&pool, &territory, "Sacha").await?;
    let phone = tempfile::tempdir()?;
    let store = phone.path();
    fieldkit_ok(store, &["enroll", "--server", &server.http_url(""), &code])?;

    let seed = std::env::var("SIGKILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                .as_nanos() as u64
                | 1
        });
    eprintln!("SIGKILL_SEED={seed}");
    let mut random = Random(seed);

    let mut acknowledged: HashSet<Uuid> = HashSet::new();
    for run in 0..RUNS {
        // From "still opening the store" to "well into recording and syncing".
        let delay = Duration::from_millis(random.between(20, 400));
        acknowledged.extend(record_then_kill(store, delay)?);

        let listed: Value = serde_json::from_str(&fieldkit_ok(store, &["list"])?)
            .with_context(|| format!("run {run}: the store must load after SIGKILL"))?;
        let stored: HashSet<Uuid> = listed
            .as_array()
            .context("list prints an array")?
            .iter()
            .filter_map(|r| r["id"].as_str()?.parse().ok())
            .collect();
        let missing: Vec<&Uuid> = acknowledged.difference(&stored).collect();
        assert!(
            missing.is_empty(),
            "run {run} (killed after {delay:?}, seed {seed}): acknowledged but lost: {missing:?}"
        );
    }
    assert!(
        acknowledged.len() > RUNS,
        "the loop recorded too little to test anything ({} records)",
        acknowledged.len()
    );

    // Every record, acknowledged or recorded just before a kill, reaches the
    // server once.
    fieldkit_ok(store, &["sync", "--timeout", "60"])?;
    let status: Value = serde_json::from_str(&fieldkit_ok(store, &["status"])?)?;
    assert_eq!(status["pendingRecords"], 0, "{status}");
    let on_phone = status["records"].as_i64().context("records count")?;
    let on_server: Vec<Uuid> = eventually(
        Duration::from_secs(30),
        "every record in the inventory",
        || async {
            let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM sightings")
                .fetch_all(&pool)
                .await?;
            Ok((ids.len() as i64 == on_phone).then_some(ids))
        },
    )
    .await?;
    let on_server: HashSet<Uuid> = on_server.into_iter().collect();
    assert!(acknowledged.is_subset(&on_server));
    Ok(())
}
