//! `reconnect-storm`: N phones, each holding M sightings recorded offline,
//! connect at once. Measures how long until every sighting is acknowledged (and,
//! for our server, in the inventory), the bytes on the wire per sighting, and the
//! server's CPU time and peak memory. A baseline measurement: there is no target.
//!
//! The phones are samod repos inside this process, so on a small machine the
//! load generator competes with the server for CPU: the report shows how much
//! CPU each side (and PostgreSQL, and everything else on the machine) used.
//!
//! ```text
//! reconnect-storm --phones 200 --sightings 50 --target ours|js|both [--json]
//! ```

use std::{
    collections::HashMap,
    path::Path,
    process::Command,
    sync::{
        atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use fieldnotes_tests::{
    bench::{self, percentile, proc_status, Cell, JsServer, LogLines, SPECIES},
    phones, records, ServerProcess, TestDatabase,
};
use mobile_bridge::{DeviceCredential, Phone};
use serde::Serialize;
use sync::documents::NotebookHeader;
use url::Url;
use uuid::Uuid;

/// A reconnect storm: N phones with M offline sightings each connect at once.
#[derive(Debug, Parser)]
#[command(name = "reconnect-storm", version, about)]
struct Args {
    /// Phones connecting at once (one notebook each, each its own volunteer).
    #[arg(long, default_value_t = 200)]
    phones: usize,

    /// Sightings each phone recorded offline.
    #[arg(long, default_value_t = 50)]
    sightings: usize,

    /// Which server to storm; `both` runs ours, then the JS reference server.
    #[arg(long, value_enum, default_value_t = Target::Ours)]
    target: Target,

    #[command(flatten)]
    common: bench::CommonArgs,

    /// Territories the notebooks are spread over.
    #[arg(long, default_value_t = 5)]
    territories: usize,

    /// Give up on a phone (and on the inventory) after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,

    /// Notebooks stored in the database before the storm besides the phones'
    /// (ours only): what a region's server holds but is not syncing.
    #[arg(long, default_value_t = 0)]
    stored_notebooks: u64,

    /// Our server's `--document-idle-secs`; when given, after the phones
    /// leave the run waits until no document is live and samples the
    /// server's memory again.
    #[arg(long)]
    idle_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Ours,
    Js,
    Both,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    bench::init_process(&args.common.database_url);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.phones == 0 || args.sightings == 0 {
        bail!("--phones and --sightings must be at least 1");
    }
    let log_dir = bench::log_dir(args.common.log_dir.as_deref(), "reconnect-storm-")?;
    let targets = match args.target {
        Target::Both => vec![Target::Ours, Target::Js],
        one => vec![one],
    };
    let mut results = Vec::new();
    for target in targets {
        let result = match target {
            Target::Ours => storm_ours(&args, &log_dir).await,
            _ => storm_js(&args, &log_dir).await,
        }
        .with_context(|| format!("storming the {} server", target_name(target)))?;
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

fn target_name(target: Target) -> &'static str {
    match target {
        Target::Ours => "ours",
        Target::Js => "js",
        Target::Both => "both",
    }
}

/// What one storm measured. Times are seconds from the moment every phone was
/// told to connect.
#[derive(Debug, Serialize)]
struct StormResult {
    target: String,
    phones: usize,
    sightings_per_phone: usize,
    sightings: usize,
    phones_synced: usize,
    phone_failures: usize,
    /// The first few failures, as the phones reported them.
    failure_samples: Vec<String>,
    /// Every phone's `wait_synced` returned (None if any failed).
    all_acknowledged_s: Option<f64>,
    /// `SELECT count(*) FROM sightings` first equal to the total (ours only).
    inventory_complete_s: Option<f64>,
    inventory_rows_at_end: Option<i64>,
    /// Acknowledged and, for ours, in the inventory; for JS acknowledged only.
    all_present_s: Option<f64>,
    /// Every audit entry chained (ours only): the server chains in the
    /// background and stands aside while phones sync, so this comes after
    /// `all_present_s`.
    audit_chained_s: Option<f64>,
    /// Server and PostgreSQL CPU from the start until `audit_chained_s`:
    /// the storm's whole cost, the audit's deferred part included.
    server_cpu_until_chained_s: Option<f64>,
    postgres_cpu_until_chained_s: Option<f64>,
    connect_p50_s: Option<f64>,
    connect_p95_s: Option<f64>,
    connect_max_s: Option<f64>,
    sync_p50_s: Option<f64>,
    sync_p95_s: Option<f64>,
    sync_max_s: Option<f64>,
    wire_bytes_sent: u64,
    wire_bytes_received: u64,
    wire_bytes_per_sighting: f64,
    server_pid: u32,
    /// VmHWM, read after the storm (or, if the server died, its last sample).
    server_peak_rss_kib: Option<u64>,
    server_rss_end_kib: Option<u64>,
    /// Set if the server process exited during the storm.
    server_exited_s: Option<f64>,
    /// utime+stime of the server process during the storm.
    server_cpu_s: f64,
    /// utime+stime of this process (the phones) during the storm.
    generator_cpu_s: f64,
    /// utime+stime of the PostgreSQL cluster (postmaster and its children)
    /// during the storm; ours only.
    postgres_cpu_s: Option<f64>,
    /// Busy CPU time of the whole machine during the storm (all cores).
    machine_busy_cpu_s: f64,
    /// machine − server − generator − postgres: anything else running.
    other_cpu_s: f64,
    /// Wall time over which the CPU figures were taken.
    measured_wall_s: f64,
    load_average_before: String,
    build_phones_s: f64,
    generator_peak_rss_kib: Option<u64>,
    server_log: String,
    server_log_lines: usize,
    server_log_warn_lines: usize,
    server_log_error_lines: usize,
    server_exit: String,
    /// With `--stored-notebooks`: how many were stored before the storm.
    stored_notebooks: u64,
    /// With `--idle-secs`: live documents (from `/health`) and VmRSS once the
    /// phones left and the idle time passed.
    live_documents_after_idle: Option<u64>,
    server_rss_after_idle_kib: Option<u64>,
    /// With `--idle-secs`: VmRSS once the server has looked twice at its quiet
    /// core (`server::memory`) and given freed memory back.
    server_rss_after_quiet_kib: Option<u64>,
}

/// The notebooks' owners: enrolled volunteers (our server authenticates every
/// phone), or bare ids for a server that asks for no credential.
enum Owners {
    Enrolled(Vec<phones::Volunteer>),
    Anonymous { territories: usize },
}

/// Builds N phones offline, each with M sightings in its own notebook.
async fn build_phones(args: &Args, owners: Owners) -> anyhow::Result<Vec<Phone>> {
    let owners: Vec<(NotebookHeader, Option<DeviceCredential>)> = match owners {
        Owners::Enrolled(volunteers) => volunteers
            .into_iter()
            .map(|v| (v.notebook(), Some(v.device)))
            .collect(),
        Owners::Anonymous { territories } => {
            let territories: Vec<Uuid> = (0..territories.max(1)).map(|_| Uuid::new_v4()).collect();
            (0..args.phones)
                .map(|p| {
                    let header = NotebookHeader {
                        territory_id: territories[p % territories.len()],
                        owner_id: Uuid::new_v4(),
                    };
                    (header, None)
                })
                .collect()
        }
    };
    let mut phones = Vec::with_capacity(owners.len());
    for (p, (header, credential)) in owners.into_iter().enumerate() {
        let phone = Phone::new_notebook(header, credential).await?;
        for i in 0..args.sightings {
            phone.record(&records::sighting(
                header.owner_id,
                SPECIES[(p + i) % SPECIES.len()],
                i as i64 + 1,
            ))?;
        }
        phones.push(phone);
    }
    Ok(phones)
}

async fn storm_ours(args: &Args, log_dir: &Path) -> anyhow::Result<StormResult> {
    let binary = bench::server_binary(args.common.server_bin.as_deref())?;
    let db = TestDatabase::create().await?;
    let log = log_dir.join("ours-server.log");
    let idle = args.idle_secs.map(|secs| secs.to_string());
    let server_args: Vec<&str> = match &idle {
        Some(secs) => vec!["--document-idle-secs", secs],
        None => Vec::new(),
    };
    let mut server = ServerProcess::start_binary_with(&binary, &db.url, Some(&log), &server_args)?;
    let pool = db.pool().await?;
    if args.stored_notebooks > 0 {
        eprintln!("[ours] storing {} other notebooks…", args.stored_notebooks);
        store_notebooks(&pool, args.stored_notebooks).await?;
    }
    eprintln!(
        "[ours] {} on {} (pid {}), database {}, log {}",
        binary.display(),
        server.addr,
        server.pid(),
        db.name,
        log.display()
    );
    eprintln!("[ours] enrolling {} volunteers…", args.phones);
    let owners = Owners::Enrolled(
        bench::enrol_volunteers(&pool, args.phones, args.territories, "Storm territory").await?,
    );
    let mut result = storm(
        args,
        "ours",
        owners,
        server.sync_url(),
        server.pid(),
        Some(&pool),
    )
    .await?;
    result.stored_notebooks = args.stored_notebooks;
    if let Some(idle) = args.idle_secs {
        let deadline = Instant::now() + Duration::from_secs(idle + 60);
        result.live_documents_after_idle = bench::wait_no_live_documents(&server, deadline).await;
        result.server_rss_after_idle_kib = proc_status(server.pid()).get("VmRSS").copied();
        tokio::time::sleep(bench::TRIMMED_WITHIN).await;
        result.server_rss_after_quiet_kib = proc_status(server.pid()).get("VmRSS").copied();
    }
    let status = server.terminate();
    result.server_exit = match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("could not terminate: {error}"),
    };
    pool.close().await;
    drop(db);
    finish_log(&mut result, &log);
    Ok(result)
}

/// Stores `count` notebooks (one sighting each) the storm does not touch,
/// straight into the tables the server loads documents from.
async fn store_notebooks(pool: &sqlx::PgPool, count: u64) -> anyhow::Result<()> {
    let header = NotebookHeader {
        territory_id: Uuid::nil(),
        owner_id: Uuid::new_v4(),
    };
    let mut doc = sync::documents::new_notebook(header);
    sync::documents::put_record(
        &mut doc,
        &records::sighting(header.owner_id, "Parus major", 1),
    )?;
    let saved = doc.save();
    let count = i64::try_from(count)?;
    sqlx::query(
        "INSERT INTO documents (doc_id, territory_id, owner_id, kind, revision) \
         SELECT 'stored-' || g, $1, $2, 'notebook', 1 FROM generate_series(1, $3) g",
    )
    .bind(header.territory_id)
    .bind(header.owner_id)
    .bind(count)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO automerge_chunks (key, doc_id, data) \
         SELECT 'stored-' || g || '/snapshot/seed', 'stored-' || g, $1 FROM generate_series(1, $2) g",
    )
    .bind(&saved)
    .bind(count)
    .execute(pool)
    .await?;
    Ok(())
}

async fn storm_js(args: &Args, log_dir: &Path) -> anyhow::Result<StormResult> {
    let log = log_dir.join("js-server.log");
    let mut js = JsServer::start("reconnect-storm-js-", &log)?;
    eprintln!(
        "[js] reference-sync-server.mjs on 127.0.0.1:{} (node pid {}), data {}, log {}",
        js.port,
        js.pid,
        js.data_dir().display(),
        log.display()
    );
    let owners = Owners::Anonymous {
        territories: args.territories,
    };
    let outcome = storm(args, "js", owners, js.sync_url(), js.pid, None).await;
    let exit = js.stop();
    let mut result = outcome?;
    result.server_exit = exit;
    finish_log(&mut result, &log);
    Ok(result)
}

fn finish_log(result: &mut StormResult, log: &Path) {
    result.server_log = log.display().to_string();
    let counts = LogLines::count(log);
    result.server_log_lines = counts.lines;
    result.server_log_warn_lines = counts.warn;
    result.server_log_error_lines = counts.error;
}

/// One phone's outcome: when it was connected and when the server had confirmed everything.
type PhoneOutcome = Result<(Duration, Duration), String>;

/// The storm itself, against a server already listening at `url`.
async fn storm(
    args: &Args,
    name: &str,
    owners: Owners,
    url: Url,
    server_pid: u32,
    inventory: Option<&sqlx::PgPool>,
) -> anyhow::Result<StormResult> {
    let postmaster = match inventory {
        Some(pool) => Some(postmaster_pid(pool).await?),
        None => None,
    };
    let total = args.phones * args.sightings;
    let timeout = Duration::from_secs(args.timeout_secs);

    eprintln!(
        "[{name}] building {} phones × {} sightings offline…",
        args.phones, args.sightings
    );
    let build_started = Instant::now();
    let phones = build_phones(args, owners).await?;
    let build_phones_s = build_started.elapsed().as_secs_f64();
    eprintln!("[{name}] built in {build_phones_s:.1}s; storming");

    let load_average_before = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let cpu_before = CpuSnapshot::take(server_pid, postmaster);

    // The clock starts: every phone connects at once.
    let start = Instant::now();
    let synced = Arc::new(AtomicUsize::new(0));
    // Raised if the server exits mid-storm: the phones stop waiting for it.
    let (abandon, abandoned) = tokio::sync::watch::channel(false);
    let mut set = tokio::task::JoinSet::new();
    for (index, mut phone) in phones.into_iter().enumerate() {
        let url = url.clone();
        let synced = synced.clone();
        let mut abandoned = abandoned.clone();
        set.spawn(async move {
            let outcome: PhoneOutcome = {
                let work = async {
                    phone
                        .go_online(&url)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    let connected = start.elapsed();
                    phone
                        .wait_synced(timeout.saturating_sub(start.elapsed()))
                        .await
                        .map_err(|e| format!("sync: {e}"))?;
                    synced.fetch_add(1, Ordering::Relaxed);
                    Ok((connected, start.elapsed()))
                };
                tokio::select! {
                    outcome = work => outcome,
                    _ = abandoned.wait_for(|gone| *gone) => {
                        Err("abandoned: the server exited".to_string())
                    }
                }
            };
            (index, phone, outcome)
        });
    }

    // Meanwhile, for ours: watch the inventory fill up.
    let inventory_rows = Arc::new(AtomicI64::new(-1));
    let inventory_watch = inventory.map(|pool| {
        let pool = pool.clone();
        let last = inventory_rows.clone();
        tokio::spawn(async move {
            let deadline = start + timeout;
            loop {
                match sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sightings")
                    .fetch_one(&pool)
                    .await
                {
                    Ok(rows) => {
                        last.store(rows, Ordering::Relaxed);
                        if rows as usize >= total {
                            return Some(start.elapsed());
                        }
                    }
                    Err(error) => tracing::warn!(%error, "polling the inventory"),
                }
                if Instant::now() > deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    });

    // The server's memory and CPU, sampled: if it dies, the last samples remain.
    let server_samples = Arc::new(ServerSamples::default());
    let mut server_watch = tokio::spawn(watch_server(server_pid, start, server_samples.clone()));

    // Progress on stderr, every 5 s.
    let progress = {
        let synced = synced.clone();
        let name = name.to_string();
        let phones = args.phones;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                eprintln!(
                    "[{name}] {:>5.1}s: {}/{} phones synced",
                    start.elapsed().as_secs_f64(),
                    synced.load(Ordering::Relaxed),
                    phones
                );
            }
        })
    };

    let mut phones: Vec<Option<Phone>> = (0..args.phones).map(|_| None).collect();
    let mut connect_times = Vec::new();
    let mut sync_times = Vec::new();
    let mut failures = Vec::new();
    let mut server_exited: Option<Duration> = None;
    loop {
        tokio::select! {
            joined = set.join_next() => {
                let Some(joined) = joined else { break };
                let (index, phone, outcome) = joined.context("a phone task panicked")?;
                match outcome {
                    Ok((connected, done)) => {
                        connect_times.push(connected);
                        sync_times.push(done);
                    }
                    Err(error) => failures.push(format!("phone {index}: {error}")),
                }
                phones[index] = Some(phone);
            }
            gone = &mut server_watch, if server_exited.is_none() => {
                let gone = gone.context("the server watch panicked")?;
                eprintln!(
                    "[{name}] the server (pid {server_pid}) exited {:.1}s into the storm; abandoning the phones",
                    gone.as_secs_f64()
                );
                server_exited = Some(gone);
                let _ = abandon.send(true);
                if let Some(watch) = &inventory_watch {
                    watch.abort();
                }
            }
        }
    }
    let acknowledged = start.elapsed();
    let inventory_complete = match inventory_watch {
        Some(watch) => watch.await.ok().flatten(),
        None => None,
    };
    let measured = start.elapsed();
    progress.abort();
    if server_exited.is_none() {
        server_watch.abort();
    }
    let mut cpu_after = CpuSnapshot::take(server_pid, postmaster);
    cpu_after.server = cpu_after
        .server
        .max(server_samples.cpu_ticks.load(Ordering::Relaxed));

    let (audit_chained, cpu_until_chained) = match inventory {
        Some(pool) if server_exited.is_none() => {
            let chained = audit_chained(pool, start, start + timeout).await;
            let cpu = CpuSnapshot::take(server_pid, postmaster).minus(&cpu_before);
            (chained, Some(cpu))
        }
        _ => (None, None),
    };

    let phones: Vec<Phone> = phones.into_iter().flatten().collect();
    let sent: u64 = phones
        .iter()
        .map(|p| p.wire().sent.load(Ordering::Relaxed))
        .sum();
    let received: u64 = phones
        .iter()
        .map(|p| p.wire().received.load(Ordering::Relaxed))
        .sum();
    let server_status = proc_status(server_pid);
    let generator_status = proc_status(std::process::id());
    futures::future::join_all(phones.into_iter().map(Phone::shut_down)).await;
    let server_peak_rss_kib = server_status
        .get("VmHWM")
        .copied()
        .max(Some(server_samples.peak_rss_kib.load(Ordering::Relaxed)).filter(|&k| k > 0));
    let server_rss_end_kib = server_status.get("VmRSS").copied();
    let inventory_rows_at_end = inventory
        .is_some()
        .then(|| inventory_rows.load(Ordering::Relaxed));

    let all_acked = failures.is_empty().then_some(acknowledged.as_secs_f64());
    let inventory_complete_s = inventory_complete.map(|d| d.as_secs_f64());
    let all_present_s = match inventory {
        Some(_) => all_acked
            .zip(inventory_complete_s)
            .map(|(acked, present)| acked.max(present)),
        None => all_acked,
    };
    let cpu = cpu_after.minus(&cpu_before);
    connect_times.sort();
    sync_times.sort();
    let failure_samples = failures.iter().take(5).cloned().collect();
    Ok(StormResult {
        target: name.to_string(),
        phones: args.phones,
        sightings_per_phone: args.sightings,
        sightings: total,
        phones_synced: sync_times.len(),
        phone_failures: failures.len(),
        failure_samples,
        all_acknowledged_s: all_acked,
        inventory_complete_s,
        inventory_rows_at_end,
        all_present_s,
        audit_chained_s: audit_chained.map(|d| d.as_secs_f64()),
        server_cpu_until_chained_s: cpu_until_chained.as_ref().map(|cpu| cpu.server),
        postgres_cpu_until_chained_s: cpu_until_chained.and_then(|cpu| cpu.postgres),
        connect_p50_s: percentile(&connect_times, 50.0)
            .as_ref()
            .map(Duration::as_secs_f64),
        connect_p95_s: percentile(&connect_times, 95.0)
            .as_ref()
            .map(Duration::as_secs_f64),
        connect_max_s: connect_times.last().map(Duration::as_secs_f64),
        sync_p50_s: percentile(&sync_times, 50.0)
            .as_ref()
            .map(Duration::as_secs_f64),
        sync_p95_s: percentile(&sync_times, 95.0)
            .as_ref()
            .map(Duration::as_secs_f64),
        sync_max_s: sync_times.last().map(Duration::as_secs_f64),
        wire_bytes_sent: sent,
        wire_bytes_received: received,
        wire_bytes_per_sighting: (sent + received) as f64 / total as f64,
        server_pid,
        server_peak_rss_kib,
        server_rss_end_kib,
        server_exited_s: server_exited.map(|d| d.as_secs_f64()),
        server_cpu_s: cpu.server,
        generator_cpu_s: cpu.generator,
        postgres_cpu_s: cpu.postgres,
        machine_busy_cpu_s: cpu.machine_busy,
        other_cpu_s: cpu.machine_busy - cpu.server - cpu.generator - cpu.postgres.unwrap_or(0.0),
        measured_wall_s: measured.as_secs_f64(),
        load_average_before,
        build_phones_s,
        generator_peak_rss_kib: generator_status.get("VmHWM").copied(),
        server_log: String::new(),
        server_log_lines: 0,
        server_log_warn_lines: 0,
        server_log_error_lines: 0,
        server_exit: String::new(),
        stored_notebooks: 0,
        live_documents_after_idle: None,
        server_rss_after_idle_kib: None,
        server_rss_after_quiet_kib: None,
    })
}

/// The server process's last observed peak memory and CPU time.
#[derive(Default)]
struct ServerSamples {
    peak_rss_kib: AtomicU64,
    cpu_ticks: AtomicU64,
}

/// Samples the server every 250 ms; returns when it has exited (or is a zombie).
async fn watch_server(pid: u32, start: Instant, samples: Arc<ServerSamples>) -> Duration {
    loop {
        if let Some(&hwm) = proc_status(pid).get("VmHWM") {
            samples.peak_rss_kib.fetch_max(hwm, Ordering::Relaxed);
        }
        match proc_cpu(pid) {
            Some(cpu) if cpu.state != 'Z' && cpu.state != 'X' => {
                samples.cpu_ticks.fetch_max(cpu.ticks, Ordering::Relaxed);
            }
            exited => {
                if let Some(cpu) = exited {
                    samples.cpu_ticks.fetch_max(cpu.ticks, Ordering::Relaxed);
                }
                return start.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// CPU clock ticks per second (`getconf CLK_TCK`; 100 on Linux in practice).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

struct ProcCpu {
    state: char,
    ppid: u32,
    /// utime + stime, in clock ticks.
    ticks: u64,
}

fn proc_cpu(pid: u32) -> Option<ProcCpu> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "pid (comm) ": state ppid pgrp session tty tpgid flags minflt
    // cminflt majflt cmajflt utime stime (fields 3… of the whole line).
    let close = text.rfind(')')?;
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(ProcCpu {
        state,
        ppid,
        ticks: utime + stime,
    })
}

/// The postmaster of the cluster `pool` is connected to: the parent of our backend.
async fn postmaster_pid(pool: &sqlx::PgPool) -> anyhow::Result<u32> {
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await?;
    Ok(proc_cpu(backend as u32)
        .context("PostgreSQL does not run on this machine (its backend is not in /proc)")?
        .ppid)
}

/// When, after `start`, no accepted commit is left waiting to be written out
/// as audit entries, nor any entry for its place in the chain (None past
/// `deadline`).
async fn audit_chained(pool: &sqlx::PgPool, start: Instant, deadline: Instant) -> Option<Duration> {
    loop {
        match sqlx::query_scalar::<_, bool>(
            "SELECT NOT EXISTS (SELECT FROM audit_commits_pending) \
               AND NOT EXISTS (SELECT FROM audit_pending)",
        )
        .fetch_one(pool)
        .await
        {
            Ok(true) => return Some(start.elapsed()),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "polling the audit trail"),
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct CpuSnapshot {
    server: u64,
    generator: u64,
    /// Ticks of the postmaster and each of its children, by pid.
    postgres: Option<HashMap<u32, u64>>,
    machine_busy: u64,
}

struct CpuSeconds {
    server: f64,
    generator: f64,
    postgres: Option<f64>,
    machine_busy: f64,
}

impl CpuSnapshot {
    fn take(server_pid: u32, postmaster: Option<u32>) -> CpuSnapshot {
        let postgres = match postmaster {
            Some(postmaster) => std::fs::read_dir("/proc")
                .map(|entries| {
                    entries
                        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
                        .filter_map(|pid| {
                            let cpu = proc_cpu(pid)?;
                            (pid == postmaster || cpu.ppid == postmaster)
                                .then_some((pid, cpu.ticks))
                        })
                        .collect()
                })
                .ok(),
            None => None,
        };
        // First line of /proc/stat: cpu user nice system idle iowait irq softirq steal …
        let machine_busy = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| {
                let fields: Vec<u64> = text
                    .lines()
                    .next()?
                    .split_whitespace()
                    .skip(1)
                    .take(8)
                    .filter_map(|f| f.parse().ok())
                    .collect();
                let [user, nice, system, _idle, _iowait, irq, softirq, steal] =
                    fields.as_slice().try_into().ok()?;
                Some(user + nice + system + irq + softirq + steal)
            })
            .unwrap_or(0);
        CpuSnapshot {
            server: proc_cpu(server_pid).map_or(0, |cpu| cpu.ticks),
            generator: proc_cpu(std::process::id()).map_or(0, |cpu| cpu.ticks),
            postgres,
            machine_busy,
        }
    }

    fn minus(&self, before: &CpuSnapshot) -> CpuSeconds {
        let ticks = clock_ticks();
        // Backends that started during the storm count in full; ones that
        // ended during it are missed.
        let postgres = self.postgres.as_ref().map(|after| {
            let before = before.postgres.clone().unwrap_or_default();
            after
                .iter()
                .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
                .sum::<u64>() as f64
                / ticks
        });
        CpuSeconds {
            server: self.server.saturating_sub(before.server) as f64 / ticks,
            generator: self.generator.saturating_sub(before.generator) as f64 / ticks,
            postgres,
            machine_busy: self.machine_busy.saturating_sub(before.machine_busy) as f64 / ticks,
        }
    }
}

fn print_table(results: &[StormResult]) {
    fn secs(v: Option<f64>) -> String {
        v.map_or("—".to_string(), |s| format!("{s:.2} s"))
    }
    fn kib(v: Option<u64>) -> String {
        v.map_or("—".to_string(), |k| {
            format!("{:.1} MiB", k as f64 / 1024.0)
        })
    }
    let rows: Vec<(&str, Cell<StormResult>)> = vec![
        (
            "phones × sightings",
            Box::new(|r| format!("{} × {} = {}", r.phones, r.sightings_per_phone, r.sightings)),
        ),
        (
            "phones synced / failed",
            Box::new(|r| format!("{} / {}", r.phones_synced, r.phone_failures)),
        ),
        ("all acknowledged", Box::new(|r| secs(r.all_acknowledged_s))),
        (
            "inventory complete",
            Box::new(|r| match r.inventory_rows_at_end {
                Some(rows) => format!("{} ({} rows)", secs(r.inventory_complete_s), rows),
                None => "n/a".to_string(),
            }),
        ),
        ("all present", Box::new(|r| secs(r.all_present_s))),
        (
            "audit entries chained",
            Box::new(|r| secs(r.audit_chained_s)),
        ),
        (
            "per-phone connect p50/p95/max",
            Box::new(|r| {
                format!(
                    "{} / {} / {}",
                    secs(r.connect_p50_s),
                    secs(r.connect_p95_s),
                    secs(r.connect_max_s)
                )
            }),
        ),
        (
            "per-phone sync p50/p95/max",
            Box::new(|r| {
                format!(
                    "{} / {} / {}",
                    secs(r.sync_p50_s),
                    secs(r.sync_p95_s),
                    secs(r.sync_max_s)
                )
            }),
        ),
        (
            "wire bytes / sighting",
            Box::new(|r| format!("{:.0} B", r.wire_bytes_per_sighting)),
        ),
        (
            "wire sent / received",
            Box::new(|r| {
                format!(
                    "{:.2} / {:.2} MiB",
                    r.wire_bytes_sent as f64 / 1048576.0,
                    r.wire_bytes_received as f64 / 1048576.0
                )
            }),
        ),
        (
            "server peak RSS (VmHWM)",
            Box::new(|r| kib(r.server_peak_rss_kib)),
        ),
        ("server RSS at end", Box::new(|r| kib(r.server_rss_end_kib))),
        (
            "server exited during the storm",
            Box::new(|r| match r.server_exited_s {
                Some(s) => format!("YES, at {s:.1} s"),
                None => "no".to_string(),
            }),
        ),
        (
            "server CPU",
            Box::new(|r| format!("{:.2} s", r.server_cpu_s)),
        ),
        (
            "PostgreSQL cluster CPU",
            Box::new(|r| {
                r.postgres_cpu_s
                    .map_or("n/a".to_string(), |s| format!("{s:.2} s"))
            }),
        ),
        (
            "server / PostgreSQL CPU until chained",
            Box::new(
                |r| match (r.server_cpu_until_chained_s, r.postgres_cpu_until_chained_s) {
                    (Some(server), Some(postgres)) => format!("{server:.2} s / {postgres:.2} s"),
                    _ => "n/a".to_string(),
                },
            ),
        ),
        (
            "load generator CPU",
            Box::new(|r| format!("{:.2} s", r.generator_cpu_s)),
        ),
        (
            "other processes CPU",
            Box::new(|r| format!("{:.2} s", r.other_cpu_s)),
        ),
        (
            "machine busy CPU / wall",
            Box::new(|r| format!("{:.2} s / {:.2} s", r.machine_busy_cpu_s, r.measured_wall_s)),
        ),
        (
            "load average before",
            Box::new(|r| r.load_average_before.clone()),
        ),
        (
            "building phones (untimed)",
            Box::new(|r| format!("{:.2} s", r.build_phones_s)),
        ),
        (
            "load generator peak RSS",
            Box::new(|r| kib(r.generator_peak_rss_kib)),
        ),
        (
            "server log lines (WARN / ERROR)",
            Box::new(|r| {
                format!(
                    "{} ({} / {})",
                    r.server_log_lines, r.server_log_warn_lines, r.server_log_error_lines
                )
            }),
        ),
        ("server exit", Box::new(|r| r.server_exit.clone())),
    ];
    let headers: Vec<String> = results.iter().map(|r| r.target.clone()).collect();
    bench::print_table(&headers, results, &rows);
    for r in results {
        for failure in &r.failure_samples {
            println!("[{}] {failure}", r.target);
        }
        println!("[{}] server log: {}", r.target, r.server_log);
    }
}
