//! What the benchmark binaries (`reconnect-storm`, `sync-latency`, `soak`)
//! share: process setup, finding the server binary, the JS reference server
//! as the baseline, enrolling the phones' volunteers, a process's memory, a
//! server's live documents and metrics, percentiles, server log counts and
//! the results table.

use std::{
    collections::HashMap,
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use serde_json::Value;
use url::Url;

use crate::{ensure_js_dependencies, first_stdout_line, phones, ServerProcess};

/// The options every benchmark binary takes.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// Maintenance connection through which a fresh database is created (and
    /// dropped afterwards) for our server.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,

    /// The server binary (default: `fieldnotes-server` next to this executable,
    /// i.e. the release build when this one is).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,

    /// Print one JSON object per measurement (one a line) instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Where the servers' stderr logs go (default: a new temporary directory, kept).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
}

/// Points `TestDatabase` at `database_url` (it creates and drops its
/// databases through TEST_DATABASE_URL), keeps ANSI codes out of the servers'
/// logs (the children inherit NO_COLOR) and sends our own tracing to stderr.
/// Call it first, before any thread exists: it sets environment variables.
pub fn init_process(database_url: &str) {
    std::env::set_var("TEST_DATABASE_URL", database_url);
    std::env::set_var("NO_COLOR", "1");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// `--log-dir`, created if needed; without one a new temporary directory
/// named after `prefix`, kept after the run so the logs can be read.
pub fn log_dir(chosen: Option<&Path>, prefix: &str) -> anyhow::Result<PathBuf> {
    let dir = match chosen {
        Some(dir) => dir.to_path_buf(),
        None => tempfile::Builder::new().prefix(prefix).tempdir()?.keep(),
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `--server-bin`, or `fieldnotes-server` next to this executable (the
/// release build when this one is); an error saying how to build it if absent.
pub fn server_binary(chosen: Option<&Path>) -> anyhow::Result<PathBuf> {
    let binary = match chosen {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .context("the executable has a directory")?
            .join("fieldnotes-server"),
    };
    if !binary.exists() {
        bail!(
            "{} does not exist: cargo build --release -p fieldnotes-server --bin fieldnotes-server",
            binary.display()
        );
    }
    Ok(binary)
}

/// The plain JS automerge-repo sync server (`tests/js/reference-sync-server.mjs`)
/// on a free port, storing into a temporary directory. It authenticates no one.
pub struct JsServer {
    /// None once stopped.
    child: Option<Child>,
    /// The node process, for CPU and memory figures.
    pub pid: u32,
    pub port: u16,
    data_dir: tempfile::TempDir,
}

impl JsServer {
    /// Starts it (installing the npm packages first if needed) with its stderr
    /// in `log` and its data in a new temporary directory named after `prefix`;
    /// returns once it listens.
    pub fn start(prefix: &str, log: &Path) -> anyhow::Result<JsServer> {
        let js = ensure_js_dependencies()?;
        let data_dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let mut child = Command::new("node")
            .arg(js.join("reference-sync-server.mjs"))
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(log)?))
            .spawn()
            .context("running node (install Node.js)")?;
        let first = first_stdout_line(
            &mut child,
            &format!("the JS reference server (log {})", log.display()),
        )?;
        // Held before the announcement is parsed: if it is garbled, dropping
        // the server stops the child.
        let mut server = JsServer {
            child: Some(child),
            pid: 0,
            port: 0,
            data_dir,
        };
        let announced: Value = serde_json::from_str(&first)
            .with_context(|| format!("the JS server's first line is not JSON: {first}"))?;
        server.port = announced["port"]
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .context("no port announced")?;
        server.pid = announced["pid"].as_u64().context("no pid announced")? as u32;
        Ok(server)
    }

    pub fn sync_url(&self) -> Url {
        Url::parse(&format!("ws://127.0.0.1:{}/sync", self.port)).expect("valid url")
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// SIGTERM (the JS server flushes its storage on it), then waits; returns
    /// how it exited.
    pub fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return "already stopped".to_string();
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        match child.wait() {
            Ok(status) => status.to_string(),
            Err(error) => format!("could not wait: {error}"),
        }
    }
}

impl Drop for JsServer {
    /// A run that failed half-way leaves no node process behind.
    fn drop(&mut self) {
        self.stop();
    }
}

/// The species the load generators' sightings name, in turn.
pub const SPECIES: [&str; 6] = [
    "Erinaceus europaeus",
    "Pipistrellus pipistrellus",
    "Bufo bufo",
    "Sciurus vulgaris",
    "Turdus merula",
    "Lacerta bilineata",
];

/// Enrols `count` volunteers, one per phone, spread over `territories`
/// territories named `"{prefix} {n}"`: our server authenticates every phone,
/// and each volunteer owns one notebook.
pub async fn enrol_volunteers(
    pool: &sqlx::PgPool,
    count: usize,
    territories: usize,
    prefix: &str,
) -> anyhow::Result<Vec<phones::Volunteer>> {
    let mut made = Vec::new();
    for t in 0..territories.max(1) {
        made.push(phones::territory(pool, &format!("{prefix} {t}")).await?);
    }
    let mut volunteers = Vec::with_capacity(count);
    for p in 0..count {
        let territory = &made[p % made.len()];
        volunteers.push(phones::enrol_volunteer(pool, territory, &format!("Volunteer {p}")).await?);
    }
    Ok(volunteers)
}

/// `VmHWM`, `VmRSS`, … of a process, in kiB (empty once it has exited).
pub fn proc_status(pid: u32) -> HashMap<String, u64> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            let kib = value.trim().strip_suffix(" kB")?.trim().parse().ok()?;
            Some((key.to_string(), kib))
        })
        .collect()
}

/// How long after the last document left memory the server's quiet-spell
/// `malloc_trim` has surely run: it looks every [`server::memory::LOOK_EVERY`]
/// and trims at the first look that finds nothing received since the one
/// before, so two looks and a margin.
pub const TRIMMED_WITHIN: Duration =
    Duration::from_secs(server::memory::LOOK_EVERY.as_secs() * 2 + 5);

/// Polls the server's `/health` until no document is live or `deadline`
/// passes; the last count seen (None if the server did not answer).
pub async fn wait_no_live_documents(server: &ServerProcess, deadline: Instant) -> Option<u64> {
    loop {
        let live = match server.anonymous().get("/health").await {
            Ok((_, health)) => health["sync"]["liveDocuments"].as_u64(),
            Err(error) => {
                tracing::warn!(%error, "asking the server's health");
                None
            }
        };
        if live == Some(0) || Instant::now() > deadline {
            return live;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The server's metrics as Prometheus reads them, from `http://{addr}/metrics`
/// (`addr`: [`ServerProcess::metrics_addr`]).
pub async fn scrape_metrics(addr: &str) -> anyhow::Result<prometheus_parse::Scrape> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(prometheus_parse::Scrape::parse(
        text.lines().map(|line| Ok(line.to_string())),
    )?)
}

/// The value of `metric`'s sample whose labels include `labels` (a
/// histogram's observations through its `_count` and `_sum`); None if it
/// has none.
pub fn metric_value(
    scrape: &prometheus_parse::Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    use prometheus_parse::Value;
    scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == metric
                && labels
                    .iter()
                    .all(|(name, want)| sample.labels.get(name) == Some(*want))
        })
        .and_then(|sample| match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
}

/// Nearest-rank percentile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// How many lines a server logged, and how many of them at WARN and ERROR.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogLines {
    pub lines: usize,
    pub warn: usize,
    pub error: usize,
}

impl LogLines {
    /// Counts the lines of the log at `path` (none if it cannot be read).
    pub fn count(path: &Path) -> LogLines {
        let mut counts = LogLines::default();
        if let Ok(text) = std::fs::read_to_string(path) {
            for line in text.lines() {
                counts.lines += 1;
                if line.contains(" WARN ") {
                    counts.warn += 1;
                } else if line.contains(" ERROR ") {
                    counts.error += 1;
                }
            }
        }
        counts
    }
}

/// How one row of a results table is computed from a result.
pub type Cell<R> = Box<dyn Fn(&R) -> String>;

/// Prints a Markdown table: one column per result, headed by `headers`, one
/// row per `(label, cell)`.
pub fn print_table<R>(headers: &[String], results: &[R], rows: &[(&str, Cell<R>)]) {
    let label_width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(_, f)| results.iter().map(f).collect())
        .collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, header)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([header.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let mut header_line = format!("| {} |", pad("", label_width));
    let mut rule = format!("|{}|", "-".repeat(label_width + 2));
    for (header, w) in headers.iter().zip(&widths) {
        header_line += &format!(" {} |", pad(header, *w));
        rule += &format!("{}|", "-".repeat(w + 2));
    }
    println!("{header_line}\n{rule}");
    for ((label, _), row) in rows.iter().zip(&cells) {
        let mut line = format!("| {} |", pad(label, label_width));
        for (cell, w) in row.iter().zip(&widths) {
            line += &format!(" {} |", pad(cell, *w));
        }
        println!("{line}");
    }
}
