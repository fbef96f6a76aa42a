//! `soak`: N phones, split between two server processes on one database,
//! stay connected for M minutes, each recording a new sighting every S
//! seconds and waiting for the server's acknowledgement. Every T seconds a
//! sample: both processes' memory, the acknowledgement latency over the
//! interval, the inventory's rows, and each process's own metrics. When the
//! phones have left, the run waits until no document is live and the quiet
//! core has given its freed memory back, and samples once more: is the
//! memory back near where it started? Issue 25's soak; not in the default
//! suite (docs/PERFORMANCE.md, "Soak").
//!
//! The phones hold their connection for the whole run, as the field app
//! does while it has a network (it reconnects only when the network comes
//! back); the staggered recording spreads the load evenly over each interval.
//! They are samod repos inside this process: on a small machine they compete
//! with the servers and PostgreSQL for CPU.
//!
//! ```text
//! soak --phones 1000 --minutes 10 --record-every-secs 30 --sample-secs 30 [--idle-secs I] [--json]
//! ```

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anyhow::{bail, Context};
use clap::Parser;
use fieldnotes_tests::{
    bench::{self, metric_value, percentile, proc_status, Cell, LogLines, SPECIES},
    records, ServerProcess, TestDatabase,
};
use mobile_bridge::Phone;
use serde::Serialize;
use server::telemetry;
use tokio::time::Instant;
use url::Url;
use uuid::Uuid;

/// A soak: N phones recording for M minutes against two server processes.
#[derive(Debug, Parser)]
#[command(name = "soak", version, about)]
struct Args {
    /// Phones, half on each process (one notebook each, each its own volunteer).
    #[arg(long, default_value_t = 1000)]
    phones: usize,

    /// How long the phones record.
    #[arg(long, default_value_t = 10)]
    minutes: u64,

    /// Each phone records a new sighting this often (the phones' turns
    /// staggered over the interval).
    #[arg(long, default_value_t = 30)]
    record_every_secs: u64,

    /// A sample row this often.
    #[arg(long, default_value_t = 30)]
    sample_secs: u64,

    /// The servers' `--document-idle-secs` (default: the server's own, 60):
    /// how long after the phones leave their documents leave memory.
    #[arg(long)]
    idle_secs: Option<u64>,

    /// Territories the notebooks are spread over.
    #[arg(long, default_value_t = 5)]
    territories: usize,

    /// Longest wait for one acknowledgement; past it the phone counts a
    /// failure and goes on recording.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,

    #[command(flatten)]
    common: bench::CommonArgs,
}

/// The two processes' names, in the tables and the logs' file names.
const PROCESS_NAMES: [&str; 2] = ["A", "B"];

/// The server's own default `--document-idle-secs`.
const SERVER_DEFAULT_IDLE_SECS: u64 = 60;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    bench::init_process(&args.common.database_url);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// One of the two server processes.
struct Process {
    name: &'static str,
    server: ServerProcess,
    log: PathBuf,
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.phones == 0 || args.minutes == 0 || args.record_every_secs == 0 || args.sample_secs == 0
    {
        bail!("--phones, --minutes, --record-every-secs and --sample-secs must be at least 1");
    }
    let log_dir = bench::log_dir(args.common.log_dir.as_deref(), "soak-")?;
    let binary = bench::server_binary(args.common.server_bin.as_deref())?;
    let db = TestDatabase::create().await?;
    let idle = args.idle_secs.map(|secs| secs.to_string());
    let mut server_args = vec!["--metrics-listen", "127.0.0.1:0"];
    if let Some(idle) = &idle {
        server_args.extend(["--document-idle-secs", idle.as_str()]);
    }
    let mut processes = Vec::new();
    for name in PROCESS_NAMES {
        let log = log_dir.join(format!("server-{name}.log"));
        let server = ServerProcess::start_binary_with(&binary, &db.url, Some(&log), &server_args)?;
        eprintln!(
            "[{name}] {} on {} (pid {}, metrics {}), log {}",
            binary.display(),
            server.addr,
            server.pid(),
            server.metrics_addr.as_deref().unwrap_or("none"),
            log.display()
        );
        processes.push(Process { name, server, log });
    }
    let pool = db.pool().await?;
    eprintln!(
        "database {}; enrolling {} volunteers…",
        db.name, args.phones
    );
    let volunteers =
        bench::enrol_volunteers(&pool, args.phones, args.territories, "Soak territory").await?;
    let mut phones = Vec::with_capacity(volunteers.len());
    for volunteer in volunteers {
        let phone = Phone::new_notebook(volunteer.notebook(), Some(volunteer.device)).await?;
        phones.push((volunteer.account_id, phone));
    }

    let mut summary = soak(&args, &processes, &pool, phones).await?;
    for (process, summary) in processes.iter_mut().zip(&mut summary.processes) {
        summary.exit = match process.server.terminate() {
            Ok(status) => status.to_string(),
            Err(error) => format!("could not terminate: {error}"),
        };
        let counts = LogLines::count(&process.log);
        summary.log = process.log.display().to_string();
        summary.log_lines = counts.lines;
        summary.log_warn_lines = counts.warn;
        summary.log_error_lines = counts.error;
    }
    pool.close().await;
    drop(processes);
    drop(db);
    if args.common.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

/// What the phones report to the sampler.
#[derive(Default)]
struct Shared {
    phones_online: AtomicUsize,
    recorded: AtomicU64,
    acknowledged: AtomicU64,
    /// Record-to-acknowledged times since the last sample (the sampler drains them).
    latencies: Mutex<Vec<Duration>>,
    failures: AtomicUsize,
    /// The first few failures, as the phones reported them.
    failure_samples: Mutex<Vec<String>>,
}

impl Shared {
    fn fail(&self, failure: String) {
        tracing::warn!("{failure}");
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut samples = self.failure_samples.lock().expect("not poisoned");
        if samples.len() < 5 {
            samples.push(failure);
        }
    }
}

/// When the phones record, the same for all of them.
#[derive(Clone, Copy)]
struct Plan {
    start: Instant,
    /// No phone records a sighting at or after this.
    end: Instant,
    every: Duration,
    timeout: Duration,
}

/// One phone's soak: connects at its turn, records a sighting at each of
/// its turns and waits for the acknowledgement, and once past the end waits
/// for anything still unconfirmed, then leaves.
async fn drive_phone(
    index: usize,
    owner: Uuid,
    mut phone: Phone,
    url: Url,
    first_turn: Instant,
    plan: Plan,
    shared: Arc<Shared>,
) {
    tokio::time::sleep_until(first_turn).await;
    if let Err(error) = phone.go_online(&url).await {
        shared.fail(format!("phone {index}: connect: {error}"));
        phone.shut_down().await;
        return;
    }
    shared.phones_online.fetch_add(1, Ordering::Relaxed);
    let mut recorded = 0u64;
    let mut acknowledged = 0u64;
    let mut turn = first_turn;
    while turn < plan.end {
        let sighting = records::sighting(
            owner,
            SPECIES[(index + recorded as usize) % SPECIES.len()],
            recorded as i64 + 1,
        );
        if let Err(error) = phone.record(&sighting) {
            shared.fail(format!("phone {index}: record: {error}"));
            break;
        }
        recorded += 1;
        shared.recorded.fetch_add(1, Ordering::Relaxed);
        let made = Instant::now();
        match phone.wait_synced(plan.timeout).await {
            Ok(()) => {
                shared
                    .latencies
                    .lock()
                    .expect("not poisoned")
                    .push(made.elapsed());
                shared
                    .acknowledged
                    .fetch_add(recorded - acknowledged, Ordering::Relaxed);
                acknowledged = recorded;
            }
            Err(error) => shared.fail(format!("phone {index}: sighting {recorded}: {error}")),
        }
        // A turn missed while waiting is skipped, not made up in a burst.
        let now = Instant::now();
        while turn <= now {
            turn += plan.every;
        }
        tokio::time::sleep_until(turn.min(plan.end)).await;
    }
    if acknowledged < recorded {
        match phone.wait_synced(plan.timeout).await {
            Ok(()) => {
                shared
                    .acknowledged
                    .fetch_add(recorded - acknowledged, Ordering::Relaxed);
            }
            Err(error) => shared.fail(format!(
                "phone {index}: left with {} sightings unacknowledged: {error}",
                recorded - acknowledged
            )),
        }
    }
    shared.phones_online.fetch_sub(1, Ordering::Relaxed);
    phone.shut_down().await;
}

/// The run, against both processes already listening; returns the summary
/// (the processes' exits and logs left for the caller).
async fn soak(
    args: &Args,
    processes: &[Process],
    pool: &sqlx::PgPool,
    phones: Vec<(Uuid, Phone)>,
) -> anyhow::Result<Summary> {
    let shared = Arc::new(Shared::default());
    let every = Duration::from_secs(args.record_every_secs);
    let mut sampler = Sampler::new(args, processes, pool, shared.clone());
    // At start: the servers started, the volunteers enrolled, no phone yet.
    sampler.take("start").await;

    let start = Instant::now();
    sampler.start = start;
    let plan = Plan {
        start,
        end: start + Duration::from_secs(args.minutes * 60),
        every,
        timeout: Duration::from_secs(args.timeout_secs),
    };
    let count = phones.len();
    let mut set = tokio::task::JoinSet::new();
    for (index, (owner, phone)) in phones.into_iter().enumerate() {
        // Alternating processes, turns spread evenly over the interval.
        let url = processes[index % processes.len()].server.sync_url();
        let first_turn = plan.start + every.mul_f64(index as f64 / count as f64);
        set.spawn(drive_phone(
            index,
            owner,
            phone,
            url,
            first_turn,
            plan,
            shared.clone(),
        ));
    }
    let sample_every = Duration::from_secs(args.sample_secs);
    let mut tick = tokio::time::interval_at(start + sample_every, sample_every);
    // A slow sample delays the next rather than bunching the ones after it.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            joined = set.join_next() => match joined {
                Some(joined) => joined.context("a phone task panicked")?,
                None => break,
            },
            _ = tick.tick() => sampler.take("phones").await,
        }
    }
    let left = Instant::now();
    eprintln!(
        "{:.1} s: every phone has left; waiting for the inventory, the documents' eviction and the trim",
        start.elapsed().as_secs_f64()
    );

    let recorded = shared.recorded.load(Ordering::Relaxed);
    let idle = args.idle_secs.unwrap_or(SERVER_DEFAULT_IDLE_SECS);
    let settling = settle(processes, pool, recorded, plan.timeout, idle);
    tokio::pin!(settling);
    let settled = loop {
        tokio::select! {
            settled = &mut settling => break settled,
            _ = tick.tick() => sampler.take("left").await,
        }
    };
    sampler.take("trimmed").await;

    let mut latencies = std::mem::take(&mut sampler.latencies);
    latencies.sort();
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let last = sampler.samples.last().context("at least one sample")?;
    let acknowledged = shared.acknowledged.load(Ordering::Relaxed);
    let failures = shared.failures.load(Ordering::Relaxed);
    let inventory_rows = last.inventory_rows;
    let summary_processes = processes
        .iter()
        .enumerate()
        .map(|(i, process)| {
            let rss = |s: &Sample| s.processes[i].rss_kib;
            let first = &sampler.samples[0];
            let last_metrics = &last.processes[i];
            ProcessSummary {
                name: process.name,
                pid: process.server.pid(),
                phones: (i..count).step_by(processes.len()).count(),
                rss_start_kib: rss(first),
                rss_max_sampled_kib: sampler.samples.iter().filter_map(rss).max(),
                peak_rss_kib: proc_status(process.server.pid()).get("VmHWM").copied(),
                live_documents_after_idle: settled.live_after_idle[i],
                rss_no_document_live_kib: settled.rss_after_idle[i],
                rss_end_kib: rss(last),
                end_over_start: rss(last)
                    .zip(rss(first))
                    .map(|(end, start)| end as f64 / start as f64),
                commits_total: last_metrics.commits_total,
                commit_mean_ms: last_metrics
                    .commit_seconds_sum
                    .zip(last_metrics.commit_seconds_count)
                    .filter(|(_, count)| *count > 0.0)
                    .map(|(sum, count)| sum / count * 1000.0),
                log: String::new(),
                log_lines: 0,
                log_warn_lines: 0,
                log_error_lines: 0,
                exit: String::new(),
            }
        })
        .collect();
    let failure_samples = shared.failure_samples.lock().expect("not poisoned").clone();
    Ok(Summary {
        kind: "summary",
        phones: count,
        minutes: args.minutes,
        record_every_secs: args.record_every_secs,
        sample_secs: args.sample_secs,
        document_idle_secs: idle,
        recorded,
        acknowledged,
        inventory_rows,
        everything_acknowledged_and_stored: failures == 0
            && acknowledged == recorded
            && inventory_rows == Some(recorded as i64),
        inventory_complete_after_left_s: settled
            .inventory_complete
            .map(|at| at.saturating_duration_since(left).as_secs_f64()),
        phone_failures: failures,
        failure_samples,
        ack_p50_ms: ms(percentile(&latencies, 50.0)),
        ack_p95_ms: ms(percentile(&latencies, 95.0)),
        ack_p99_ms: ms(percentile(&latencies, 99.0)),
        ack_max_ms: ms(latencies.last().copied()),
        generator_peak_rss_kib: proc_status(std::process::id()).get("VmHWM").copied(),
        processes: summary_processes,
    })
}

/// What happened between the phones leaving and the last sample.
struct Settled {
    /// When the inventory held every recorded sighting (None: not within the timeout).
    inventory_complete: Option<Instant>,
    /// Per process: live documents when the wait for none ended, and the
    /// memory then.
    live_after_idle: Vec<Option<u64>>,
    rss_after_idle: Vec<Option<u64>>,
}

/// Waits until the inventory holds all `recorded` sightings, then until
/// no document is live on either process (their idle time and a margin at
/// most), then for the quiet core's trim.
async fn settle(
    processes: &[Process],
    pool: &sqlx::PgPool,
    recorded: u64,
    timeout: Duration,
    idle_secs: u64,
) -> Settled {
    let deadline = Instant::now() + timeout;
    let inventory_complete = loop {
        match sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sightings")
            .fetch_one(pool)
            .await
        {
            Ok(rows) if rows >= recorded as i64 => break Some(Instant::now()),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "counting the inventory"),
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(idle_secs + 120);
    let mut live_after_idle = Vec::new();
    let mut rss_after_idle = Vec::new();
    for process in processes {
        live_after_idle.push(bench::wait_no_live_documents(&process.server, deadline).await);
        rss_after_idle.push(proc_status(process.server.pid()).get("VmRSS").copied());
    }
    tokio::time::sleep(bench::TRIMMED_WITHIN).await;
    Settled {
        inventory_complete,
        live_after_idle,
        rss_after_idle,
    }
}

/// One row of the time series.
#[derive(Debug, Serialize)]
struct Sample {
    kind: &'static str,
    /// `start` (before any phone), `phones` (recording), `left` (every phone
    /// gone, documents leaving memory), `trimmed` (the last, after the trim).
    phase: &'static str,
    /// Seconds since the first phone's turn.
    elapsed_s: f64,
    phones_online: usize,
    recorded: u64,
    acknowledged: u64,
    /// Acknowledgements over the interval, and their record-to-acknowledged times.
    acks: usize,
    ack_p50_ms: Option<f64>,
    ack_p95_ms: Option<f64>,
    ack_max_ms: Option<f64>,
    /// `SELECT count(*) FROM sightings`.
    inventory_rows: Option<i64>,
    /// Per process, in the order of [`PROCESS_NAMES`].
    processes: Vec<ProcessSample>,
}

/// One process at one sample: its memory and its own metrics (None where
/// a scrape failed or the process has gone).
#[derive(Debug, Serialize)]
struct ProcessSample {
    rss_kib: Option<u64>,
    sync_connections: Option<f64>,
    live_documents: Option<f64>,
    commits_total: Option<f64>,
    audit_backlog_to_write_out: Option<f64>,
    audit_backlog_set_aside: Option<f64>,
    /// The commit-latency histogram's count and sum so far…
    commit_seconds_count: Option<f64>,
    commit_seconds_sum: Option<f64>,
    /// …and the mean commit over the interval.
    commit_mean_ms: Option<f64>,
}

/// Takes the samples, printing each as it is taken.
struct Sampler<'a> {
    processes: &'a [Process],
    pool: &'a sqlx::PgPool,
    shared: Arc<Shared>,
    json: bool,
    /// The elapsed times' origin: set when the phones start.
    start: Instant,
    /// Every record-to-acknowledged time so far.
    latencies: Vec<Duration>,
    /// Each process's commit histogram (count, sum) at its last scrape.
    last_commits: Vec<(f64, f64)>,
    samples: Vec<Sample>,
}

impl<'a> Sampler<'a> {
    fn new(
        args: &Args,
        processes: &'a [Process],
        pool: &'a sqlx::PgPool,
        shared: Arc<Shared>,
    ) -> Self {
        Sampler {
            processes,
            pool,
            shared,
            json: args.common.json,
            start: Instant::now(),
            latencies: Vec::new(),
            last_commits: vec![(0.0, 0.0); processes.len()],
            samples: Vec::new(),
        }
    }

    async fn take(&mut self, phase: &'static str) {
        let mut interval =
            std::mem::take(&mut *self.shared.latencies.lock().expect("not poisoned"));
        interval.sort();
        self.latencies.extend(&interval);
        let inventory_rows = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sightings")
            .fetch_one(self.pool)
            .await
            .inspect_err(|error| tracing::warn!(%error, "counting the inventory"))
            .ok();
        let mut processes = Vec::with_capacity(self.processes.len());
        for i in 0..self.processes.len() {
            processes.push(self.process_sample(i).await);
        }
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        let sample = Sample {
            kind: "sample",
            phase,
            elapsed_s: if phase == "start" {
                0.0
            } else {
                self.start.elapsed().as_secs_f64()
            },
            phones_online: self.shared.phones_online.load(Ordering::Relaxed),
            recorded: self.shared.recorded.load(Ordering::Relaxed),
            acknowledged: self.shared.acknowledged.load(Ordering::Relaxed),
            acks: interval.len(),
            ack_p50_ms: ms(percentile(&interval, 50.0)),
            ack_p95_ms: ms(percentile(&interval, 95.0)),
            ack_max_ms: ms(interval.last().copied()),
            inventory_rows,
            processes,
        };
        self.print(&sample);
        self.samples.push(sample);
    }

    async fn process_sample(&mut self, i: usize) -> ProcessSample {
        let server = &self.processes[i].server;
        let scrape = match &server.metrics_addr {
            Some(addr) => bench::scrape_metrics(addr)
                .await
                .inspect_err(|error| tracing::warn!(%error, "scraping {addr}"))
                .ok(),
            None => None,
        };
        let get = |metric: &str, labels: &[(&str, &str)]| {
            scrape
                .as_ref()
                .and_then(|scrape| metric_value(scrape, metric, labels))
        };
        let count = get(&format!("{}_count", telemetry::COMMIT_SECONDS), &[]);
        let sum = get(&format!("{}_sum", telemetry::COMMIT_SECONDS), &[]);
        let mut commit_mean_ms = None;
        if let (Some(count), Some(sum)) = (count, sum) {
            let (last_count, last_sum) = self.last_commits[i];
            if count > last_count {
                commit_mean_ms = Some((sum - last_sum) / (count - last_count) * 1000.0);
            }
            self.last_commits[i] = (count, sum);
        }
        ProcessSample {
            rss_kib: proc_status(server.pid()).get("VmRSS").copied(),
            sync_connections: get(telemetry::SYNC_CONNECTIONS, &[]),
            live_documents: get(telemetry::LIVE_DOCUMENTS, &[]),
            commits_total: get(telemetry::COMMITS, &[]),
            audit_backlog_to_write_out: get(telemetry::AUDIT_BACKLOG, &[("stage", "to_write_out")]),
            audit_backlog_set_aside: get(telemetry::AUDIT_BACKLOG, &[("stage", "set_aside")]),
            commit_seconds_count: count,
            commit_seconds_sum: sum,
            commit_mean_ms,
        }
    }

    /// One JSON line, or one row of the Markdown table (its head before the first).
    fn print(&self, sample: &Sample) {
        if self.json {
            match serde_json::to_string(sample) {
                Ok(line) => println!("{line}"),
                Err(error) => tracing::warn!(%error, "serialising a sample"),
            }
            return;
        }
        let names = PROCESS_NAMES.join(" / ");
        let columns = [
            "t (s)".to_string(),
            "phase".to_string(),
            format!("RSS {names} (MiB)"),
            "phones online".to_string(),
            "acks".to_string(),
            "ack p50 / p95 / max (ms)".to_string(),
            "acknowledged / recorded".to_string(),
            "inventory".to_string(),
            format!("connections {names}"),
            format!("live docs {names}"),
            format!("commits {names}"),
            format!("commit mean {names} (ms)"),
            format!("audit backlog {names}"),
        ];
        if self.samples.is_empty() {
            println!("| {} |", columns.join(" | "));
            println!("|{}", "---|".repeat(columns.len()));
        }
        let per_process = |f: &dyn Fn(&ProcessSample) -> String| {
            sample
                .processes
                .iter()
                .map(f)
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let number = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0}"));
        let decimal = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1}"));
        let cells = [
            format!("{:.0}", sample.elapsed_s),
            sample.phase.to_string(),
            per_process(&|p| mib(p.rss_kib)),
            sample.phones_online.to_string(),
            sample.acks.to_string(),
            format!(
                "{} / {} / {}",
                decimal(sample.ack_p50_ms),
                decimal(sample.ack_p95_ms),
                decimal(sample.ack_max_ms)
            ),
            format!("{} / {}", sample.acknowledged, sample.recorded),
            sample
                .inventory_rows
                .map_or("—".to_string(), |rows| rows.to_string()),
            per_process(&|p| number(p.sync_connections)),
            per_process(&|p| number(p.live_documents)),
            per_process(&|p| number(p.commits_total)),
            per_process(&|p| decimal(p.commit_mean_ms)),
            per_process(&|p| {
                number(
                    p.audit_backlog_to_write_out
                        .zip(p.audit_backlog_set_aside)
                        .map(|(a, b)| a + b),
                )
            }),
        ];
        println!("| {} |", cells.join(" | "));
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("—".to_string(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// The whole run, in one JSON line or the closing tables.
#[derive(Debug, Serialize)]
struct Summary {
    kind: &'static str,
    phones: usize,
    minutes: u64,
    record_every_secs: u64,
    sample_secs: u64,
    document_idle_secs: u64,
    recorded: u64,
    acknowledged: u64,
    inventory_rows: Option<i64>,
    /// No phone failed, every sighting was acknowledged and is in the inventory.
    everything_acknowledged_and_stored: bool,
    /// From the last phone leaving until the inventory held every sighting.
    inventory_complete_after_left_s: Option<f64>,
    phone_failures: usize,
    failure_samples: Vec<String>,
    ack_p50_ms: Option<f64>,
    ack_p95_ms: Option<f64>,
    ack_p99_ms: Option<f64>,
    ack_max_ms: Option<f64>,
    generator_peak_rss_kib: Option<u64>,
    processes: Vec<ProcessSummary>,
}

#[derive(Debug, Serialize)]
struct ProcessSummary {
    name: &'static str,
    pid: u32,
    phones: usize,
    /// Before any phone connected.
    rss_start_kib: Option<u64>,
    rss_max_sampled_kib: Option<u64>,
    /// VmHWM, read after the last sample; the kernel's memory counters are
    /// approximate, so it can read a little below the largest sample.
    peak_rss_kib: Option<u64>,
    live_documents_after_idle: Option<u64>,
    /// When no document was live any more.
    rss_no_document_live_kib: Option<u64>,
    /// At the last sample, after the quiet core's trim.
    rss_end_kib: Option<u64>,
    end_over_start: Option<f64>,
    commits_total: Option<f64>,
    /// Over the whole run, from the commit-latency histogram.
    commit_mean_ms: Option<f64>,
    log: String,
    log_lines: usize,
    log_warn_lines: usize,
    log_error_lines: usize,
    exit: String,
}

fn print_summary(summary: &Summary) {
    let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1} ms"));
    println!();
    println!(
        "{} phones for {} min, a sighting each every {} s, samples every {} s, documents idle after {} s",
        summary.phones,
        summary.minutes,
        summary.record_every_secs,
        summary.sample_secs,
        summary.document_idle_secs
    );
    println!(
        "recorded {}, acknowledged {}, in the inventory {}: {}",
        summary.recorded,
        summary.acknowledged,
        summary
            .inventory_rows
            .map_or("—".to_string(), |rows| rows.to_string()),
        if summary.everything_acknowledged_and_stored {
            "every sighting acknowledged and stored"
        } else {
            "NOT every sighting acknowledged and stored"
        }
    );
    println!(
        "acknowledgement p50 / p95 / p99 / max: {} / {} / {} / {}",
        ms(summary.ack_p50_ms),
        ms(summary.ack_p95_ms),
        ms(summary.ack_p99_ms),
        ms(summary.ack_max_ms)
    );
    println!(
        "phone failures: {}; load generator peak RSS {} MiB",
        summary.phone_failures,
        mib(summary.generator_peak_rss_kib)
    );
    for failure in &summary.failure_samples {
        println!("  {failure}");
    }
    println!();
    let kib = |v: Option<u64>| format!("{} MiB", mib(v));
    let rows: Vec<(&str, Cell<ProcessSummary>)> = vec![
        ("pid", Box::new(|p| p.pid.to_string())),
        ("phones", Box::new(|p| p.phones.to_string())),
        ("RSS at start", Box::new(move |p| kib(p.rss_start_kib))),
        (
            "RSS, largest sample",
            Box::new(move |p| kib(p.rss_max_sampled_kib)),
        ),
        ("peak RSS (VmHWM)", Box::new(move |p| kib(p.peak_rss_kib))),
        (
            "RSS once no document live",
            Box::new(move |p| match p.live_documents_after_idle {
                Some(0) => kib(p.rss_no_document_live_kib),
                live => format!(
                    "{} (still {} live)",
                    kib(p.rss_no_document_live_kib),
                    live.map_or("?".to_string(), |n| n.to_string())
                ),
            }),
        ),
        (
            "RSS at end, after the trim",
            Box::new(move |p| kib(p.rss_end_kib)),
        ),
        (
            "end / start",
            Box::new(|p| {
                p.end_over_start
                    .map_or("—".to_string(), |r| format!("{r:.2}"))
            }),
        ),
        (
            "commits",
            Box::new(|p| {
                p.commits_total
                    .map_or("—".to_string(), |n| format!("{n:.0}"))
            }),
        ),
        ("commit mean", Box::new(move |p| ms(p.commit_mean_ms))),
        (
            "log lines (WARN / ERROR)",
            Box::new(|p| {
                format!(
                    "{} ({} / {})",
                    p.log_lines, p.log_warn_lines, p.log_error_lines
                )
            }),
        ),
        ("exit", Box::new(|p| p.exit.clone())),
    ];
    let headers: Vec<String> = summary
        .processes
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    bench::print_table(&headers, &summary.processes, &rows);
    for p in &summary.processes {
        println!("[{}] log: {}", p.name, p.log);
    }
}
