//! `fieldnotes-server`: starts the sync server, with its own PostgreSQL cluster
//! when no `DATABASE_URL` is given; `create-admin` bootstraps the first admin
//! account on the same database; `verify-audit` checks the audit trail's
//! hash chains; `backup` and `restore` copy the database to a file and back.

use std::{
    io::{BufRead, IsTerminal, Write},
    time::Duration,
};

use anyhow::Context;
use clap::Parser;
use fieldnotes_server::{
    audit,
    auth::admin,
    backup,
    config::{Command, LogFormat},
    connect_database, connect_read_replica,
    connections::{connection_cap, ConnectionLimits},
    embedded_pg::EmbeddedPostgres,
    serve,
    sync::SyncSettings,
    Config, ServeOptions,
};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    init_logging(config.log_format);
    // Asked before the (slow) database start, so the prompt comes at once.
    let admin_password = match &config.command {
        Some(Command::CreateAdmin { .. }) => Some(read_password()?),
        _ => None,
    };

    let (database, embedded) = match &config.database_url {
        Some(url) => (
            Database {
                url: url.clone(),
                owner_url: config.database_owner_url.clone(),
            },
            None,
        ),
        None => {
            let data_dir = std::path::absolute(config.data_dir.join("postgres"))
                .context("resolving the data directory")?;
            // Starting the embedded cluster creates one where there is none:
            // a mistyped --data-dir would back up an empty database.
            if matches!(config.command, Some(Command::Backup { .. }))
                && !data_dir.join("PG_VERSION").is_file()
            {
                anyhow::bail!(
                    "{} holds no database to back up: give the server's --data-dir, or DATABASE_URL",
                    config.data_dir.display()
                );
            }
            let embedded = EmbeddedPostgres::start(&data_dir)
                .await
                .context("starting the embedded PostgreSQL cluster")?;
            let database = Database {
                url: embedded.service_url(),
                owner_url: Some(embedded.database_url()),
            };
            (database, Some(embedded))
        }
    };

    let result = match (&config.command, admin_password) {
        (
            Some(Command::CreateAdmin {
                email,
                display_name,
            }),
            Some(password),
        ) => create_admin(&config, &database, email, display_name, &password).await,
        (Some(Command::VerifyAudit { territory }), _) => {
            verify_audit(&config, &database, *territory).await
        }
        (Some(Command::Backup { output }), _) => backup::backup(database.owner(), output)
            .await
            .map(|bytes| {
                println!(
                    "{}",
                    serde_json::json!({ "backup": output, "bytes": bytes })
                )
            })
            .with_context(|| format!("backing up to {}", output.display())),
        (Some(Command::Restore { input }), _) => backup::restore(database.owner(), input)
            .await
            .map(|()| println!("{}", serde_json::json!({ "restored": input })))
            .with_context(|| format!("restoring {}", input.display())),
        _ => run(&config, &database).await,
    };
    if let Some(embedded) = embedded {
        if let Err(error) = embedded.stop().await {
            tracing::warn!(%error, "stopping the embedded PostgreSQL cluster");
        }
    }
    result
}

/// Logs on stderr, filtered by RUST_LOG (default `info`). Text is coloured
/// only for a person at a terminal (and not with NO_COLOR set): a file, a pipe
/// or journald gets plain text, not escape codes.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
            logs.with_ansi(colour).init();
        }
        // Span fields (request id, path, connection id) come with each event.
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
}

/// Where the service's database is: the URL it logs in with, and the
/// owner's for the migrations when it is another role.
struct Database {
    url: String,
    owner_url: Option<String>,
}

impl Database {
    async fn connect(&self, max_connections: u32) -> anyhow::Result<sqlx::PgPool> {
        connect_database(&self.url, self.owner_url.as_deref(), max_connections).await
    }

    /// The schema owner's URL (the migrations'): backups read and restores
    /// write as the owner, which may read every table and own what it restores.
    fn owner(&self) -> &str {
        self.owner_url.as_deref().unwrap_or(&self.url)
    }
}

async fn run(config: &Config, database: &Database) -> anyhow::Result<()> {
    let pool = database.connect(config.db_connections).await?;
    let read_pool = match &config.database_read_url {
        Some(url) => Some(connect_read_replica(url, config.db_connections).await?),
        None => None,
    };
    let fd_limit = fieldnotes_server::connections::raise_fd_limit();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let metrics_listener = match config.metrics_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("binding {address} for metrics"))?,
        ),
        None => None,
    };
    // One machine-readable line on stdout: scripts and tests find the ports here.
    let mut announced = serde_json::json!({ "listening": listener.local_addr()?.to_string() });
    if let Some(metrics) = &metrics_listener {
        announced["metrics"] = metrics.local_addr()?.to_string().into();
    }
    println!("{announced}");
    if let Some(metrics) = metrics_listener {
        // Installed before anything is recorded; served until the process ends.
        fieldnotes_server::telemetry::handle();
        tokio::spawn(fieldnotes_server::telemetry::serve(metrics));
    }
    let options = ServeOptions {
        max_photo_bytes: config.max_photo_bytes,
        sync: SyncSettings {
            document_idle: Duration::from_secs(config.document_idle_secs),
            ping_interval: Duration::from_secs(config.sync_ping_secs),
            max_inflated_bytes: usize::try_from(config.max_inflated_bytes)?,
        },
        web: fieldnotes_server::http::web::WebSettings {
            map_tiles_url: config.map_tiles_url.clone(),
        },
        connections: ConnectionLimits {
            max_connections: connection_cap(
                config.max_connections,
                fd_limit,
                config.db_connections,
            ),
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
        },
        max_event_streams: usize::try_from(config.max_event_streams).unwrap_or(usize::MAX),
        public_url: config
            .public_url
            .as_ref()
            .map(|url| url.as_str().trim_end_matches('/').to_string()),
        metrics: config.metrics_listen.is_some(),
        read_pool,
        compact_after_chunks: config.compact_after_chunks,
        compact_every: std::time::Duration::from_secs(config.compact_every_secs),
    };
    serve(pool, listener, options, shutdown_signal()).await
}

async fn create_admin(
    config: &Config,
    database: &Database,
    email: &str,
    display_name: &str,
    password: &str,
) -> anyhow::Result<()> {
    let pool = database.connect(config.db_connections.min(2)).await?;
    let account = admin::create_account(&pool, display_name, Some(email), Some(password), true)
        .await
        .context("creating the admin account")?;
    println!(
        "{}",
        serde_json::json!({ "accountId": account, "email": email.trim(), "isAdmin": true })
    );
    Ok(())
}

/// Verifies the audit chain of `only` (or of every territory); an error
/// (exit status 1) names each broken territory.
async fn verify_audit(
    config: &Config,
    database: &Database,
    only: Option<uuid::Uuid>,
) -> anyhow::Result<()> {
    let pool = database.connect(config.db_connections.min(2)).await?;
    let territories: Vec<uuid::Uuid> = match only {
        Some(territory) => vec![territory],
        None => sqlx::query_scalar("SELECT id FROM territories ORDER BY id")
            .fetch_all(&pool)
            .await
            .context("listing the territories")?,
    };
    let mut broken = Vec::new();
    for territory in territories {
        let verification = audit::verify::verify(&pool, territory, None)
            .await
            .with_context(|| format!("verifying the audit trail of territory {territory}"))?;
        println!("{}", serde_json::to_string(&verification)?);
        if let Some(entry) = verification.first_broken {
            broken.push(format!("territory {territory}: {}", entry.problem));
        }
    }
    if !broken.is_empty() {
        anyhow::bail!("the audit trail does not hold: {}", broken.join("; "));
    }
    Ok(())
}

/// The new admin's password from standard input: on a terminal, typed twice
/// without echo; otherwise the first line (for scripts: `… < password-file`).
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = prompt_silently("Password for the new admin: ")?;
    let second = prompt_silently("The same password again: ")?;
    if first != second {
        anyhow::bail!("the two passwords differ; nothing was created");
    }
    Ok(first)
}

fn prompt_silently(prompt: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};

    let stdin = std::io::stdin();
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let original = tcgetattr(&stdin).context("reading the terminal settings")?;
    let mut silent = original.clone();
    silent.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &silent).context("turning echo off")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    // Echo comes back whatever happened to the read.
    tcsetattr(&stdin, SetArg::TCSANOW, &original).context("turning echo back on")?;
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down");
}
