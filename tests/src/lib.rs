//! Support for the end-to-end tests and the load generator: a fresh database per
//! test on a real PostgreSQL, the real server binary run as a child process,
//! sample records, a [`world::World`] of people and phones built in one call,
//! and an [`api`] client that calls the server as one of them.
//!
//! Each test creates its own database through a maintenance connection:
//! `TEST_DATABASE_URL` when set; otherwise a PostgreSQL cluster the tests run
//! themselves under `target/test-postgres` (the server's embedded mode), so
//! `cargo test` needs no database set up beforehand.

pub mod accounts;
pub mod api;
#[cfg(test)]
mod architecture_doc;
pub mod bench;
pub mod browser;
pub mod openapi;
pub mod phones;
pub mod raw_peer;
pub mod records;
pub mod replica;
pub mod world;

use std::{
    fs::OpenOptions,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use anyhow::{bail, Context};
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use url::Url;

/// The maintenance database URL the tests create their databases through.
pub fn maintenance_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| test_cluster_url()))
        .clone()
}

/// Starts (or reuses, when an earlier test binary left it running) the test
/// cluster. It is left running on purpose: the next test binary reuses it
/// instead of paying for a start; `pg_ctl -D target/test-postgres/data stop`
/// stops it.
fn test_cluster_url() -> String {
    let data_dir = workspace_root()
        .join("target")
        .join("test-postgres")
        .join("data");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for starting the test cluster");
        let cluster = runtime
            .block_on(server::embedded_pg::EmbeddedPostgres::start(&data_dir))
            .unwrap_or_else(|error| panic!("starting the test PostgreSQL cluster: {error}"));
        let url = cluster.database_url();
        std::mem::forget(cluster);
        // The maintenance database, not the service's.
        url.replacen("/fieldnotes?", "/postgres?", 1)
    })
    .join()
    .expect("the test cluster thread")
}

/// A database of its own for one test, dropped at the end.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<TestDatabase> {
        let maintenance = maintenance_url();
        let mut conn = PgConnection::connect(&maintenance)
            .await
            .with_context(|| format!("connecting to {maintenance} (set TEST_DATABASE_URL)"))?;
        let name = format!("fieldnotes_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let mut url = Url::parse(&maintenance)?;
        url.set_path(&name);
        Ok(TestDatabase {
            name,
            url: url.to_string(),
        })
    }

    pub async fn pool(&self) -> anyhow::Result<PgPool> {
        Ok(PgPool::connect(&self.url).await?)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a short-lived thread + runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&maintenance_url()).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// Path of the server binary, built once per test process.
pub fn server_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_binary("fieldnotes-server", "fieldnotes-server"))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Path of the `fieldkit` phone simulator, built once per test process.
pub fn fieldkit_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_binary("fieldnotes-mobile-bridge", "fieldkit"))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Builds one binary of the workspace (debug) and returns its path: the tests
/// run the real executables, as a user or a crash would.
fn build_binary(package: &str, bin: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .status()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of {bin} failed"));
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    Ok(target.join("debug").join(bin))
}

/// Installs the pinned npm packages of `tests/js` (package-lock.json) if they
/// are missing, and returns that directory. npm's output goes to stderr, so a
/// tool printing results on stdout keeps it clean. Once per process: tests
/// running side by side must not both run `npm ci`, which empties
/// `node_modules` before filling it.
pub fn ensure_js_dependencies() -> anyhow::Result<PathBuf> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| install_js_dependencies().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn install_js_dependencies() -> anyhow::Result<PathBuf> {
    use std::os::fd::AsFd;
    let js = workspace_root().join("tests").join("js");
    if !js
        .join("node_modules")
        .join("@automerge")
        .join("automerge-repo")
        .exists()
    {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&js)
            .stdout(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
            .status()
            .context("running npm (install Node.js and npm)")?;
        if !status.success() {
            bail!("npm ci in tests/js failed");
        }
    }
    Ok(js)
}

/// A Python interpreter with the packages of `tests/python/requirements.txt`,
/// in a virtual environment made once under the target directory.
pub fn python_venv() -> anyhow::Result<PathBuf> {
    static MADE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    MADE.get_or_init(|| make_venv().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn make_venv() -> anyhow::Result<PathBuf> {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let venv = target.join("python-venv");
    let python = venv.join("bin").join("python");
    let requirements = workspace_root().join("tests/python/requirements.txt");
    let stamp = venv.join("requirements.installed");
    let wanted = std::fs::read_to_string(&requirements)?;
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    let run = |command: &mut Command, what: &str| -> anyhow::Result<()> {
        let status = command
            .status()
            .with_context(|| format!("running {what}"))?;
        if !status.success() {
            bail!("{what} failed ({status})");
        }
        Ok(())
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv (Debian: install python3-venv)",
    )?;
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "pip install -r tests/python/requirements.txt",
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// Runs `fieldnotes-server <args>` (a subcommand: `backup`, `restore`,
/// `verify-audit`…) on `database_url` to its end, as an operator would;
/// its output whatever its exit status, for the test to judge.
pub fn run_server_command(
    database_url: &str,
    args: &[&str],
) -> anyhow::Result<std::process::Output> {
    let binary = server_binary()?;
    Command::new(&binary)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env(
            "RUST_LOG",
            std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".to_string()),
        )
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} {}", binary.display(), args.join(" ")))
}

/// The real server binary running as a child process.
pub struct ServerProcess {
    child: Child,
    pub addr: String,
    /// Where it serves `/metrics`, when started with `--metrics-listen`.
    pub metrics_addr: Option<String>,
    launch: Launch,
}

/// How a server process was started, so `restart` starts the same one.
#[derive(Debug, Clone)]
struct Launch {
    /// None: the debug build made by [`server_binary`].
    binary: Option<PathBuf>,
    database_url: Option<String>,
    extra_args: Vec<String>,
    /// Where the server's stderr is appended; None inherits ours.
    log: Option<PathBuf>,
    /// RUST_LOG for the server; None: `SERVER_LOG`, else warn.
    log_filter: Option<String>,
}

impl ServerProcess {
    /// Starts the server on `database_url` on a free port.
    pub fn start(database_url: &str) -> anyhow::Result<ServerProcess> {
        Self::spawn(Launch {
            binary: None,
            database_url: Some(database_url.to_string()),
            extra_args: Vec::new(),
            log: None,
            log_filter: None,
        })
    }

    /// Starts the server on `database_url` with extra command-line arguments
    /// (e.g. `--document-idle-secs 1`).
    pub fn start_with(database_url: &str, args: &[&str]) -> anyhow::Result<ServerProcess> {
        Self::spawn(Launch {
            binary: None,
            database_url: Some(database_url.to_string()),
            extra_args: args.iter().map(ToString::to_string).collect(),
            log: None,
            log_filter: None,
        })
    }

    /// Starts the server on `database_url` with its stderr appended to `log`,
    /// logging at `filter` (a RUST_LOG value): for tests that read the logs.
    pub fn start_logged(
        database_url: &str,
        log: &Path,
        filter: &str,
    ) -> anyhow::Result<ServerProcess> {
        Self::start_logged_with(database_url, log, filter, &[])
    }

    /// [`ServerProcess::start_logged`] with extra command-line arguments
    /// (e.g. `--log-format json`).
    pub fn start_logged_with(
        database_url: &str,
        log: &Path,
        filter: &str,
        args: &[&str],
    ) -> anyhow::Result<ServerProcess> {
        Self::spawn(Launch {
            binary: None,
            database_url: Some(database_url.to_string()),
            extra_args: args.iter().map(ToString::to_string).collect(),
            log: Some(log.to_path_buf()),
            log_filter: Some(filter.to_string()),
        })
    }

    /// Starts the server with no DATABASE_URL: it runs its own cluster under `data_dir`.
    pub fn start_embedded(data_dir: &std::path::Path) -> anyhow::Result<ServerProcess> {
        Self::spawn(Launch {
            binary: None,
            database_url: None,
            extra_args: vec!["--data-dir".to_string(), data_dir.display().to_string()],
            log: None,
            log_filter: None,
        })
    }

    /// Starts an already built server `binary` (e.g. the release build, for
    /// benchmarks) on `database_url` on a free port. Its stderr is appended to
    /// `log` if given, else inherited.
    pub fn start_binary(
        binary: &Path,
        database_url: &str,
        log: Option<&Path>,
    ) -> anyhow::Result<ServerProcess> {
        Self::start_binary_with(binary, database_url, log, &[])
    }

    /// [`ServerProcess::start_binary`] with extra command-line arguments.
    pub fn start_binary_with(
        binary: &Path,
        database_url: &str,
        log: Option<&Path>,
        args: &[&str],
    ) -> anyhow::Result<ServerProcess> {
        Self::spawn(Launch {
            binary: Some(binary.to_path_buf()),
            database_url: Some(database_url.to_string()),
            extra_args: args.iter().map(ToString::to_string).collect(),
            log: log.map(Path::to_path_buf),
            log_filter: None,
        })
    }

    fn spawn(launch: Launch) -> anyhow::Result<Self> {
        Self::spawn_on(launch, "127.0.0.1:0")
    }

    fn spawn_on(launch: Launch, listen: &str) -> anyhow::Result<Self> {
        let binary = match &launch.binary {
            Some(binary) => binary.clone(),
            None => server_binary()?,
        };
        let stderr = match &launch.log {
            Some(path) => Stdio::from(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening the server log {}", path.display()))?,
            ),
            None => Stdio::inherit(),
        };
        let mut command = Command::new(&binary);
        command
            .args(["--listen", listen])
            .args(&launch.extra_args)
            .env_remove("DATABASE_URL")
            .env(
                "RUST_LOG",
                launch.log_filter.clone().unwrap_or_else(|| {
                    std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".to_string())
                }),
            )
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(url) = &launch.database_url {
            command.env("DATABASE_URL", url);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let first = first_stdout_line(&mut child, "fieldnotes-server")?;
        let announced: Value = serde_json::from_str(&first)
            .with_context(|| format!("server's first line is not JSON: {first}"))?;
        let addr = announced["listening"]
            .as_str()
            .context("server did not announce its address")?
            .to_string();
        let metrics_addr = announced["metrics"].as_str().map(str::to_string);
        Ok(ServerProcess {
            child,
            addr,
            metrics_addr,
            launch,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sync_url(&self) -> Url {
        Url::parse(&format!("ws://{}/sync", self.addr)).expect("valid url")
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends `head` (request line and headers, each ending in CRLF, without
    /// the blank line) and then `body` over a raw connection, as a client that
    /// does not wait for `100 Continue` would; returns the response's status,
    /// head and body as soon as the response is complete, even if the server
    /// answered (and closed) before the body was through — which reqwest
    /// reports as a failed write instead.
    pub async fn send_raw(
        &self,
        head: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, String, Vec<u8>)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let stream = tokio::net::TcpStream::connect(&self.addr).await?;
        let (mut reader, mut writer) = stream.into_split();
        writer
            .write_all(format!("{head}Host: {}\r\n\r\n", self.addr).as_bytes())
            .await?;
        // Write errors are expected once the server has answered and closed.
        let sending = tokio::spawn(async move {
            let _ = writer.write_all(&body).await;
            writer
        });
        let mut response = Vec::new();
        let complete = tokio::time::timeout(Duration::from_secs(30), async {
            let mut buffer = [0u8; 8192];
            loop {
                if let Some(complete) = complete_response(&response) {
                    return Some(complete);
                }
                match reader.read(&mut buffer).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => response.extend_from_slice(&buffer[..n]),
                }
            }
        })
        .await;
        sending.abort();
        match complete {
            Ok(Some(parts)) => Ok(parts),
            Ok(None) => bail!("the connection closed before a whole response: {response:?}"),
            Err(_) => bail!("no whole response within 30 s: {response:?}"),
        }
    }

    /// SIGKILL: no shutdown code runs, exactly as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process's exit status once it has exited, without waiting.
    pub fn exit_status(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        Ok(self.child.wait()?)
    }

    /// Starts a new server process on the same database and address.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let addr = self.addr.clone();
        let mut last_error = None;
        // The port may linger briefly after the old process dies.
        for _ in 0..50 {
            match Self::spawn_on(self.launch.clone(), &addr) {
                Ok(new) => {
                    *self = new;
                    return Ok(());
                }
                Err(error) => {
                    last_error = Some(error);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Err(last_error.expect("at least one attempt"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line a server child writes to its piped stdout (where it
/// announces its address); the rest is drained in the background so the
/// child never blocks on a full pipe.
pub fn first_stdout_line(child: &mut Child, what: &str) -> anyhow::Result<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let first = match lines.next() {
        Some(line) => line?,
        None => {
            let status = child.wait()?;
            bail!("{what} exited before listening ({status})");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(first)
}

/// Status, head and body of a whole HTTP/1.1 response (with Content-Length)
/// at the start of `bytes`, once it is all there.
pub fn complete_response(bytes: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let body = bytes.get(end + 4..end + 4 + length)?;
    Some((status, head.to_string(), body.to_vec()))
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sets up `tracing` output for a test binary once (respects RUST_LOG).
pub fn init_test_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
    });
}
