//! `sync-latency`: how long a change takes to reach other peers through the
//! server, as count, p50, p99 and max in milliseconds. A baseline
//! measurement: there is no target.
//!
//! - `--mode replica` (our server only): two server processes on one
//!   database, as behind a load balancer. A volunteer's phone A, connected to
//!   the first, records a sighting; their phone B, connected to the second,
//!   is polled every millisecond until the sighting is in its copy.
//! - `--mode fanout`: one notebook held open by N reading connections (the
//!   territory's coordinators, each with a session of their own). The
//!   owner's phone records a sighting; each reader's time until its copy holds
//!   the phone's new heads is taken, and per round the time until all N have it.
//!
//! The phones and readers run inside this process, so on a small machine the
//! load generator competes with the server for CPU: a latency includes the
//! time the reader waited for a core to notice the change.
//!
//! ```text
//! sync-latency --mode replica [--samples 200]
//! sync-latency --mode fanout [--connections 500] [--samples 20] [--target ours|js|both] [--json]
//! ```

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use automerge::{Automerge, ChangeHash, ObjType, ReadDoc, Value, ROOT};
use clap::{Parser, ValueEnum};
use fieldnotes_tests::{
    accounts,
    bench::{self, percentile, Cell, JsServer, LogLines},
    phones,
    raw_peer::{RawPeer, SyncedDoc},
    records, ServerProcess, TestDatabase,
};
use futures::{StreamExt, TryStreamExt};
use mobile_bridge::Phone;
use samod::DocumentId;
use schemas::FieldRecord;
use serde::Serialize;
use server::auth::{Credential, Role};
use sync::documents::{Collection, NotebookHeader};
use tokio::sync::{mpsc, watch};
use url::Url;
use uuid::Uuid;

/// Latency of a change from one peer to others through the sync server.
#[derive(Debug, Parser)]
#[command(name = "sync-latency", version, about)]
struct Args {
    /// What to measure.
    #[arg(long, value_enum)]
    mode: Mode,

    /// Changes made: sightings (replica) or rounds (fanout). Default: 200 for
    /// replica, 20 for fanout.
    #[arg(long)]
    samples: Option<usize>,

    /// Reading connections holding the notebook open (fanout).
    #[arg(long, default_value_t = 500)]
    connections: usize,

    /// Which server to measure (fanout; replica runs ours only); `both` runs
    /// ours, then the JS reference server.
    #[arg(long, value_enum, default_value_t = Target::Ours)]
    target: Target,

    #[command(flatten)]
    common: bench::CommonArgs,

    /// Count a change as failed for a peer that has not got it after this many
    /// seconds; also bounds each setup step.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Phone to phone through two server processes on one database.
    Replica,
    /// One writer to `--connections` readers of its notebook.
    Fanout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Ours,
    Js,
    Both,
}

/// The species of every sighting recorded: only the count differs.
const SPECIES: &str = "Erinaceus europaeus";

/// Accounts created at once: each costs two argon2 hashes (creation and
/// login), which are deliberately slow and run on the blocking threads.
const ACCOUNT_CONCURRENCY: usize = 4;

/// Readers connecting and fetching at once: enough to set up hundreds in
/// seconds, few enough that no handshake waits long enough to time out.
const CONNECT_CONCURRENCY: usize = 32;

/// Failure messages kept for the report (all failures are counted).
const FAILURE_SAMPLES: usize = 10;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    bench::init_process(&args.common.database_url);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let samples = args.samples.unwrap_or(match args.mode {
        Mode::Replica => 200,
        Mode::Fanout => 20,
    });
    if samples == 0 || args.connections == 0 {
        bail!("--samples and --connections must be at least 1");
    }
    if args.mode == Mode::Replica && args.target != Target::Ours {
        bail!("--mode replica measures our server only (two processes on one database)");
    }
    let log_dir = bench::log_dir(args.common.log_dir.as_deref(), "sync-latency-")?;
    let runs = match (args.mode, args.target) {
        (Mode::Replica, _) => vec![(Mode::Replica, Target::Ours)],
        (Mode::Fanout, Target::Both) => {
            vec![(Mode::Fanout, Target::Ours), (Mode::Fanout, Target::Js)]
        }
        (Mode::Fanout, one) => vec![(Mode::Fanout, one)],
    };
    let mut results = Vec::new();
    for (mode, target) in runs {
        let result = match (mode, target) {
            (Mode::Replica, _) => replica(&args, samples, &log_dir).await,
            (Mode::Fanout, Target::Ours) => fanout_ours(&args, samples, &log_dir).await,
            (Mode::Fanout, _) => fanout_js(&args, samples, &log_dir).await,
        }
        .with_context(|| {
            format!(
                "measuring {} on the {} server",
                mode_name(mode),
                target_name(target)
            )
        })?;
        if args.common.json {
            println!("{}", serde_json::to_string(&result)?);
        }
        results.push(result);
    }
    if !args.common.json {
        print_table(&results);
    }
    Ok(())
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Replica => "replica",
        Mode::Fanout => "fanout",
    }
}

fn target_name(target: Target) -> &'static str {
    match target {
        Target::Ours => "ours",
        Target::Js => "js",
        Target::Both => "both",
    }
}

/// What one run measured.
#[derive(Debug, Serialize)]
struct LatencyResult {
    mode: &'static str,
    target: &'static str,
    /// Changes made: sightings (replica) or rounds (fanout).
    samples: usize,
    /// Reading connections (fanout only).
    connections: Option<usize>,
    #[serde(flatten)]
    measured: Measured,
    /// Enrolling, connecting and fetching before the first change (untimed).
    setup_s: f64,
    server_logs: Vec<ServerLog>,
    server_exits: Vec<String>,
}

/// What the changes' journeys took.
#[derive(Debug, Serialize)]
struct Measured {
    /// One latency per change (replica) or per reader and change (fanout).
    latency: Summary,
    /// Fanout: per change, until every reader had it; a change some reader
    /// never got is a failure.
    all_readers: Option<Summary>,
    /// The first few failures, as noticed.
    failure_samples: Vec<String>,
}

/// Latencies, in milliseconds.
#[derive(Debug, Serialize)]
struct Summary {
    count: usize,
    failures: usize,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
}

impl Summary {
    fn of(mut latencies: Vec<Duration>, failures: usize) -> Summary {
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Summary {
            count: latencies.len(),
            failures,
            p50_ms: percentile(&latencies, 50.0).map(ms),
            p99_ms: percentile(&latencies, 99.0).map(ms),
            max_ms: latencies.last().copied().map(ms),
        }
    }
}

#[derive(Debug, Serialize)]
struct ServerLog {
    path: String,
    lines: usize,
    warn_lines: usize,
    error_lines: usize,
}

impl ServerLog {
    fn read(path: &Path) -> ServerLog {
        let counts = LogLines::count(path);
        ServerLog {
            path: path.display().to_string(),
            lines: counts.lines,
            warn_lines: counts.warn,
            error_lines: counts.error,
        }
    }
}

fn exit_text(status: anyhow::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("could not terminate: {error}"),
    }
}

/// Phone A on one server process records, phone B on another sees it.
async fn replica(args: &Args, samples: usize, log_dir: &Path) -> anyhow::Result<LatencyResult> {
    let binary = bench::server_binary(args.common.server_bin.as_deref())?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let db = TestDatabase::create().await?;
    let logs = [
        log_dir.join("replica-server-1.log"),
        log_dir.join("replica-server-2.log"),
    ];
    // One after the other: the first has applied the migrations when it listens.
    let mut first = ServerProcess::start_binary(&binary, &db.url, Some(&logs[0]))?;
    let mut second = ServerProcess::start_binary(&binary, &db.url, Some(&logs[1]))?;
    eprintln!(
        "[replica] {} on {} (pid {}) and {} (pid {}), database {}, logs in {}",
        binary.display(),
        first.addr,
        first.pid(),
        second.addr,
        second.pid(),
        db.name,
        log_dir.display()
    );
    let pool = db.pool().await?;

    let setup = Instant::now();
    let territory = phones::territory(&pool, "Latency territory").await?;
    let volunteer = phones::enrol_volunteer(&pool, &territory, "Volunteer").await?;
    let second_device = phones::enrol_second_device(&pool, &territory, &volunteer).await?;
    let mut phone_a =
        Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
    phone_a.go_online(&first.sync_url()).await?;
    phone_a.wait_synced(timeout).await?;
    let phone_b = Phone::fetch_notebook(
        &second.sync_url(),
        Some(second_device),
        phone_a.notebook_id(),
    )
    .await?;
    let setup_s = setup.elapsed().as_secs_f64();
    eprintln!("[replica] phones ready in {setup_s:.1}s; {samples} samples");

    let mut latencies = Vec::with_capacity(samples);
    let mut failures = Vec::new();
    for i in 0..samples {
        let sighting = records::sighting(volunteer.account_id, SPECIES, i as i64 + 1);
        let key = sighting.id().to_string();
        phone_a.record(&sighting)?;
        let recorded = Instant::now();
        loop {
            if phone_b.read(|doc| has_sighting(doc, &key)) {
                latencies.push(recorded.elapsed());
                break;
            }
            if recorded.elapsed() > timeout {
                let failure =
                    format!("sample {i}: sighting {key} not on phone B after {timeout:?}");
                eprintln!("[replica] {failure}");
                failures.push(failure);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    phone_a.shut_down().await;
    phone_b.shut_down().await;
    let server_exits = vec![exit_text(first.terminate()), exit_text(second.terminate())];
    pool.close().await;
    drop(db);
    Ok(LatencyResult {
        mode: "replica",
        target: "ours",
        samples,
        connections: None,
        measured: Measured {
            latency: Summary::of(latencies, failures.len()),
            all_readers: None,
            failure_samples: failures.into_iter().take(FAILURE_SAMPLES).collect(),
        },
        setup_s,
        server_logs: logs.iter().map(|log| ServerLog::read(log)).collect(),
        server_exits,
    })
}

/// Whether the notebook's `sightings` map holds `key`.
fn has_sighting(doc: &Automerge, key: &str) -> bool {
    match doc.get(ROOT, Collection::Sightings.key()) {
        Ok(Some((Value::Object(ObjType::Map), sightings))) => {
            matches!(doc.get(&sightings, key), Ok(Some(_)))
        }
        _ => false,
    }
}

/// How a reader connects: our server binds a session to `session-<id>`; the
/// JS server asks for nothing and takes any peer id.
struct ReaderLogin {
    peer_id: String,
    token: Option<String>,
}

/// The owner's phone holding the notebook, synced, and the readers following it.
struct Fanout {
    writer: Phone,
    owner: Uuid,
    readers: Readers,
}

/// The reader tasks, each following the notebook over its own connection.
/// Dropping `rounds` ends them.
struct Readers {
    count: usize,
    rounds: watch::Sender<Option<Round>>,
    events: mpsc::UnboundedReceiver<ReaderEvent>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn fanout_ours(args: &Args, samples: usize, log_dir: &Path) -> anyhow::Result<LatencyResult> {
    let binary = bench::server_binary(args.common.server_bin.as_deref())?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let db = TestDatabase::create().await?;
    let log = log_dir.join("fanout-ours-server.log");
    let mut server = ServerProcess::start_binary(&binary, &db.url, Some(&log))?;
    eprintln!(
        "[ours] {} on {} (pid {}), database {}, log {}",
        binary.display(),
        server.addr,
        server.pid(),
        db.name,
        log.display()
    );
    let pool = db.pool().await?;

    let setup = Instant::now();
    let territory = phones::territory(&pool, "Fan-out territory").await?;
    let volunteer = phones::enrol_volunteer(&pool, &territory, "Volunteer").await?;
    let mut writer =
        Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
    writer.go_online(&server.sync_url()).await?;
    writer.wait_synced(timeout).await?;
    eprintln!(
        "[ours] creating {} coordinator accounts with a session each…",
        args.connections
    );
    let logins = coordinator_sessions(&pool, territory.id, args.connections).await?;
    eprintln!("[ours] connecting {} readers…", args.connections);
    let readers =
        connect_readers(&server.sync_url(), logins, &writer.notebook_id(), timeout).await?;
    let setup_s = setup.elapsed().as_secs_f64();
    eprintln!("[ours] readers ready in {setup_s:.1}s; {samples} rounds");

    let fanout = Fanout {
        writer,
        owner: volunteer.account_id,
        readers,
    };
    let measured = measure_fanout("ours", args, samples, fanout).await;
    let exit = exit_text(server.terminate());
    pool.close().await;
    drop(db);
    Ok(LatencyResult {
        mode: "fanout",
        target: "ours",
        samples,
        connections: Some(args.connections),
        measured: measured?,
        setup_s,
        server_logs: vec![ServerLog::read(&log)],
        server_exits: vec![exit],
    })
}

async fn fanout_js(args: &Args, samples: usize, log_dir: &Path) -> anyhow::Result<LatencyResult> {
    let timeout = Duration::from_secs(args.timeout_secs);
    let log = log_dir.join("fanout-js-server.log");
    let mut js = JsServer::start("sync-latency-js-", &log)?;
    eprintln!(
        "[js] reference-sync-server.mjs on 127.0.0.1:{} (node pid {}), data {}, log {}",
        js.port,
        js.pid,
        js.data_dir().display(),
        log.display()
    );

    let setup = Instant::now();
    let header = NotebookHeader {
        territory_id: Uuid::new_v4(),
        owner_id: Uuid::new_v4(),
    };
    let mut writer = Phone::new_notebook(header, None).await?;
    writer.go_online(&js.sync_url()).await?;
    writer.wait_synced(timeout).await?;
    eprintln!("[js] connecting {} readers…", args.connections);
    let logins = (0..args.connections)
        .map(|i| ReaderLogin {
            peer_id: format!("reader-{i}"),
            token: None,
        })
        .collect();
    let readers = connect_readers(&js.sync_url(), logins, &writer.notebook_id(), timeout).await?;
    let setup_s = setup.elapsed().as_secs_f64();
    eprintln!("[js] readers ready in {setup_s:.1}s; {samples} rounds");

    let fanout = Fanout {
        writer,
        owner: header.owner_id,
        readers,
    };
    let measured = measure_fanout("js", args, samples, fanout).await;
    let exit = js.stop();
    Ok(LatencyResult {
        mode: "fanout",
        target: "js",
        samples,
        connections: Some(args.connections),
        measured: measured?,
        setup_s,
        server_logs: vec![ServerLog::read(&log)],
        server_exits: vec![exit],
    })
}

/// `count` coordinators of `territory`, each logged in once: the server lets
/// one credential hold only a few open sync connections, so every reader
/// needs its own session (and a session is bound to the peer id `session-<id>`).
async fn coordinator_sessions(
    pool: &sqlx::PgPool,
    territory: Uuid,
    count: usize,
) -> anyhow::Result<Vec<ReaderLogin>> {
    futures::stream::iter(0..count)
        .map(|i| async move {
            let actor = accounts::password_actor(
                pool,
                &format!("Coordinator {i}"),
                Some((territory, Role::Coordinator)),
                false,
            )
            .await?;
            let principal = server::auth::authenticate(pool, &actor.token)
                .await?
                .context("a fresh session authenticates")?;
            let Credential::Session { session_id } = principal.credential else {
                bail!("a password login makes a session");
            };
            Ok(ReaderLogin {
                peer_id: format!("session-{session_id}"),
                token: Some(actor.token),
            })
        })
        .buffered(ACCOUNT_CONCURRENCY)
        .try_collect()
        .await
}

/// Connects every reader, a batch at a time, fetches the notebook into it
/// and starts its task at once: a reader left unread while the others connect
/// would not answer the server's pings (the JS server drops such peers).
async fn connect_readers(
    url: &Url,
    logins: Vec<ReaderLogin>,
    notebook: &DocumentId,
    timeout: Duration,
) -> anyhow::Result<Readers> {
    let count = logins.len();
    let (rounds, round_watch) = watch::channel(None);
    let (events_tx, events) = mpsc::unbounded_channel();
    let tasks = futures::stream::iter(logins.into_iter().enumerate())
        .map(|(reader, login)| {
            let round_watch = round_watch.clone();
            let events_tx = events_tx.clone();
            async move {
                let mut peer = match &login.token {
                    Some(token) => RawPeer::connect_as(url, token, &login.peer_id).await,
                    None => RawPeer::connect_anonymous(url, &login.peer_id).await,
                }
                .with_context(|| format!("connecting reader {}", login.peer_id))?;
                let synced = peer
                    .fetch_synced(notebook, timeout)
                    .await
                    .with_context(|| format!("reader {} fetching the notebook", login.peer_id))?
                    .with_context(|| format!("the notebook is unavailable to {}", login.peer_id))?;
                anyhow::Ok(tokio::spawn(follow(
                    reader,
                    peer,
                    synced,
                    round_watch,
                    events_tx,
                )))
            }
        })
        .buffered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Readers {
        count,
        rounds,
        events,
        tasks,
    })
}

/// One change the writer made: readers report once their copy has `heads`.
#[derive(Clone)]
struct Round {
    index: usize,
    heads: Arc<[ChangeHash]>,
    made: Instant,
}

enum ReaderEvent {
    /// `reader`'s copy has the change of round `round`, `latency` after it was made.
    Arrived {
        reader: usize,
        round: usize,
        latency: Duration,
    },
    /// `reader`'s connection is over: it reports nothing more.
    Lost { reader: usize, error: String },
}

/// Rounds of one change by the writer, each waited for until every reader has
/// it (or `--timeout-secs`).
async fn measure_fanout(
    name: &str,
    args: &Args,
    samples: usize,
    fanout: Fanout,
) -> anyhow::Result<Measured> {
    let timeout = Duration::from_secs(args.timeout_secs);
    let Readers {
        count,
        rounds,
        mut events,
        tasks,
    } = fanout.readers;

    let mut lost = vec![false; count];
    let mut latencies = Vec::with_capacity(count * samples);
    let mut all_have = Vec::with_capacity(samples);
    let mut failures = Vec::new();
    for index in 0..samples {
        let sighting = records::sighting(fanout.owner, SPECIES, index as i64 + 1);
        fanout.writer.record(&sighting)?;
        let heads: Arc<[ChangeHash]> = fanout.writer.heads().into();
        let made = Instant::now();
        rounds.send_replace(Some(Round { index, heads, made }));

        let deadline = tokio::time::Instant::from_std(made + timeout);
        let mut have = vec![false; count];
        let mut arrived = 0;
        let mut pending = lost.iter().filter(|&&l| !l).count();
        let mut slowest = Duration::ZERO;
        while pending > 0 {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(ReaderEvent::Arrived {
                    reader,
                    round,
                    latency,
                })) => {
                    // A change that arrived after its round ended stays a failure.
                    if round == index && !have[reader] {
                        have[reader] = true;
                        arrived += 1;
                        pending -= 1;
                        slowest = slowest.max(latency);
                        latencies.push(latency);
                    }
                }
                Ok(Some(ReaderEvent::Lost { reader, error })) => {
                    lost[reader] = true;
                    if !have[reader] {
                        pending -= 1;
                    }
                    failures.push(format!("reader {reader} lost by round {index}: {error}"));
                }
                Ok(None) | Err(_) => break,
            }
        }
        eprintln!(
            "[{name}] round {}/{samples}: {arrived}/{count} readers, slowest {:.1} ms",
            index + 1,
            slowest.as_secs_f64() * 1000.0
        );
        if arrived == count {
            all_have.push(slowest);
        } else {
            failures.push(format!(
                "round {index}: {arrived}/{count} readers had the change after {timeout:?}"
            ));
        }
    }

    // The readers stop once no more rounds can come.
    drop(rounds);
    for task in tasks {
        task.await.context("a reader task panicked")?;
    }
    fanout.writer.shut_down().await;
    let missed = count * samples - latencies.len();
    let failed_rounds = samples - all_have.len();
    Ok(Measured {
        latency: Summary::of(latencies, missed),
        all_readers: Some(Summary::of(all_have, failed_rounds)),
        failure_samples: failures.into_iter().take(FAILURE_SAMPLES).collect(),
    })
}

/// One reader: applies and answers the server's sync messages, and reports
/// each round once its copy has that round's heads. The latency runs to when
/// the message that completed the copy came in, not to when it was applied
/// and answered. The round is checked both after every message and when a
/// round starts, since the change can reach the reader before the writer has
/// published its heads (its latency is then zero).
async fn follow(
    reader: usize,
    mut peer: RawPeer,
    mut synced: SyncedDoc,
    mut rounds: watch::Receiver<Option<Round>>,
    events: mpsc::UnboundedSender<ReaderEvent>,
) {
    let mut reported = None;
    // When the last sync message applied to the copy came in.
    let mut updated = Instant::now();
    let error = loop {
        let current = rounds.borrow_and_update().clone();
        if let Some(round) = current {
            if reported != Some(round.index) && synced.doc.get_missing_deps(&round.heads).is_empty()
            {
                reported = Some(round.index);
                let _ = events.send(ReaderEvent::Arrived {
                    reader,
                    round: round.index,
                    latency: updated.saturating_duration_since(round.made),
                });
            }
        }
        tokio::select! {
            changed = rounds.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            received = peer.receive() => match received {
                Ok(Some(envelope)) if envelope.kind == "error" => {
                    break format!("the server sent an error: {:?}", envelope.message);
                }
                Ok(Some(envelope)) => {
                    let came_in = Instant::now();
                    match peer.apply_sync(&mut synced, &envelope).await {
                        Ok(true) => updated = came_in,
                        Ok(false) => {}
                        Err(error) => break format!("{error:#}"),
                    }
                }
                Ok(None) => break "the server closed the connection".to_string(),
                Err(error) => break format!("{error:#}"),
            }
        }
    };
    let _ = events.send(ReaderEvent::Lost { reader, error });
}

fn print_table(results: &[LatencyResult]) {
    fn ms(v: Option<f64>) -> String {
        v.map_or("—".to_string(), |ms| format!("{ms:.2}"))
    }
    fn spread(s: &Summary) -> String {
        format!("{} / {} / {} ms", ms(s.p50_ms), ms(s.p99_ms), ms(s.max_ms))
    }
    let rows: Vec<(&str, Cell<LatencyResult>)> = vec![
        (
            "changes",
            Box::new(|r| match r.connections {
                Some(readers) => format!("{} rounds × {readers} readers", r.samples),
                None => format!("{} sightings", r.samples),
            }),
        ),
        (
            "latencies / failed",
            Box::new(|r| {
                format!(
                    "{} / {}",
                    r.measured.latency.count, r.measured.latency.failures
                )
            }),
        ),
        (
            "latency p50 / p99 / max",
            Box::new(|r| spread(&r.measured.latency)),
        ),
        (
            "all readers have it p50 / p99 / max",
            Box::new(|r| {
                r.measured
                    .all_readers
                    .as_ref()
                    .map_or("n/a".to_string(), spread)
            }),
        ),
        (
            "rounds complete / failed",
            Box::new(|r| {
                r.measured
                    .all_readers
                    .as_ref()
                    .map_or("n/a".to_string(), |s| {
                        format!("{} / {}", s.count, s.failures)
                    })
            }),
        ),
        (
            "setup (untimed)",
            Box::new(|r| format!("{:.1} s", r.setup_s)),
        ),
        (
            "server log lines (WARN / ERROR)",
            Box::new(|r| {
                r.server_logs
                    .iter()
                    .map(|l| format!("{} ({} / {})", l.lines, l.warn_lines, l.error_lines))
                    .collect::<Vec<_>>()
                    .join(" + ")
            }),
        ),
        ("server exit", Box::new(|r| r.server_exits.join(", "))),
    ];
    let headers: Vec<String> = results
        .iter()
        .map(|r| format!("{} · {}", r.mode, r.target))
        .collect();
    bench::print_table(&headers, results, &rows);
    for r in results {
        let run = format!("{} · {}", r.mode, r.target);
        for failure in &r.measured.failure_samples {
            println!("[{run}] {failure}");
        }
        for log in &r.server_logs {
            println!("[{run}] server log: {}", log.path);
        }
    }
}
