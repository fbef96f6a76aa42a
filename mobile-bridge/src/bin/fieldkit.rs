//! `fieldkit`: a volunteer simulator built on the phone library, for demos and
//! tests. Every command works on one phone store directory (`--store`), exactly
//! as an app would: enrol with an invitation code, record sightings offline,
//! sync when there is signal, show what is pending.
//!
//! Output is JSON on stdout (one line) so scripts and tests can read it; errors
//! go to stderr, and a refused record exits with status 2, naming each field.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use chrono::Utc;
use clap::{Parser, Subcommand};
use fieldnotes_mobile_bridge::{CaptureError, Device, GpsFix, RecordState};
use schemas::RecordKind;
use serde_json::{json, Map, Value};
use url::Url;

/// Exit status of a record refused by validation (1 is any other failure).
const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(
    name = "fieldkit",
    about = "A volunteer's phone, simulated on the command line"
)]
struct Cli {
    /// The phone's store directory (created by `enroll`).
    #[arg(long, env = "FIELDKIT_STORE")]
    store: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Redeem an invitation code and keep the device credential in the store.
    Enroll {
        /// Base URL of the server, e.g. https://nature.example.org
        #[arg(long)]
        server: Url,
        /// What the coordinator sees in the device list.
        #[arg(long, default_value = "fieldkit")]
        device_name: String,
        /// The volunteer's name, written as `recordedBy` on sightings.
        #[arg(long)]
        name: Option<String>,
        /// The invitation code (e.g. ABCDE-FGHJK).
        code: String,
    },
    /// Species sightings.
    Sighting {
        #[command(subcommand)]
        command: SightingCommand,
    },
    /// Wait until the server acknowledged everything on this phone.
    Sync {
        /// Seconds to wait before giving up.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Device, pending records and last sync, as JSON.
    Status,
    /// Every record with its pending flag and problems, as JSON.
    List,
    /// Records sightings forever while syncing in the background, printing each
    /// id once it is on disk (for the crash test).
    #[command(hide = true)]
    RecordLoop {
        /// Pause between records, in milliseconds.
        #[arg(long, default_value_t = 2)]
        pause_ms: u64,
    },
}

#[derive(Subcommand)]
enum SightingCommand {
    /// Record a sighting; prints its id.
    Add {
        /// Scientific name (e.g. "Parus major").
        #[arg(long)]
        name: String,
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        /// GPS accuracy in metres.
        #[arg(long)]
        accuracy: Option<f64>,
        #[arg(long)]
        count: Option<i64>,
        #[arg(long)]
        notes: Option<String>,
        /// Overrides the name given at enrolment.
        #[arg(long)]
        recorded_by: Option<String>,
        /// Keep the record even if it fails validation.
        #[arg(long)]
        draft: bool,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(&cli.store, cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<CaptureError>() {
            Some(CaptureError::Invalid(problems)) => {
                eprintln!("fieldkit: the sighting was not recorded:");
                for problem in problems {
                    eprintln!("  {problem}");
                }
                ExitCode::from(EXIT_INVALID)
            }
            _ => {
                eprintln!("fieldkit: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run(store: &Path, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Enroll {
            server,
            device_name,
            name,
            code,
        } => {
            let device =
                Device::enrol(store, &server, &code, &device_name, name.as_deref()).await?;
            print_json(&device_json(&device));
            device.shut_down().await;
        }
        Command::Sighting {
            command:
                SightingCommand::Add {
                    name,
                    lat,
                    lon,
                    accuracy,
                    count,
                    notes,
                    recorded_by,
                    draft,
                },
        } => {
            let device = Device::open(store).await?;
            let mut fields = Map::new();
            fields.insert("scientificName".into(), json!(name));
            if let Some(count) = count {
                fields.insert("individualCount".into(), json!(count));
            }
            if let Some(notes) = notes {
                fields.insert("notes".into(), json!(notes));
            }
            if let Some(recorded_by) = recorded_by {
                fields.insert("recordedBy".into(), json!(recorded_by));
            }
            let fix = GpsFix {
                latitude: lat,
                longitude: lon,
                accuracy_m: accuracy,
                taken_at: Utc::now(),
            };
            let fields = Value::Object(fields);
            if draft {
                let saved = device.save_draft(RecordKind::Sighting, &fields, Some(&fix))?;
                let problems: Vec<String> =
                    saved.problems.iter().map(ToString::to_string).collect();
                print_json(&json!({ "id": saved.id, "problems": problems }));
            } else {
                let id = device.create(RecordKind::Sighting, &fields, Some(&fix))?;
                println!("{id}");
            }
            device.shut_down().await;
        }
        Command::Sync { timeout } => {
            let mut device = Device::open(store).await?;
            let result = device.sync(Duration::from_secs(timeout)).await;
            let status = device.sync_status();
            device.shut_down().await;
            result?;
            print_json(&serde_json::to_value(status)?);
        }
        Command::Status => {
            let device = Device::open(store).await?;
            let pending = device.pending()?;
            let status = device.sync_status();
            print_json(&json!({
                "device": device_json(&device),
                "notebook": device.notebook_id().to_string(),
                "records": device.records().len(),
                "pendingRecords": pending.len(),
                "pending": pending,
                "lastSync": status.last_sync,
            }));
            device.shut_down().await;
        }
        Command::List => {
            let device = Device::open(store).await?;
            let pending = device.pending()?;
            let records: Vec<Value> = device
                .records()
                .iter()
                .map(|record| record_json(record, pending.iter().any(|p| p.key == record.key)))
                .collect();
            print_json(&Value::Array(records));
            device.shut_down().await;
        }
        Command::RecordLoop { pause_ms } => record_loop(store, pause_ms).await?,
    }
    Ok(())
}

/// Records numbered sightings until killed; each id is printed (and flushed)
/// only after `create` returned, i.e. once it is durable.
async fn record_loop(store: &Path, pause_ms: u64) -> anyhow::Result<()> {
    let mut device = Device::open(store).await?;
    device.go_online()?;
    let mut stdout = std::io::stdout().lock();
    for n in 0u64.. {
        let fields = json!({
            "scientificName": "Parus major",
            "individualCount": (n % 7) + 1,
            "recordedBy": "fieldkit record-loop",
        });
        let fix = GpsFix {
            latitude: 45.7772 + (n % 100) as f64 * 1e-5,
            longitude: 4.855,
            accuracy_m: Some(8.0),
            taken_at: Utc::now(),
        };
        let id = device.create(RecordKind::Sighting, &fields, Some(&fix))?;
        writeln!(stdout, "{id}")
            .and_then(|()| stdout.flush())
            .context("printing an id")?;
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
    Ok(())
}

fn device_json(device: &Device) -> Value {
    let identity = device.identity();
    // The credential is never printed.
    json!({
        "deviceId": identity.credential.device_id,
        "accountId": identity.account_id,
        "territoryId": identity.territory_id,
        "deviceName": identity.device_name,
        "server": identity.server.as_str(),
    })
}

fn record_json(record: &RecordState, pending: bool) -> Value {
    let problems: Vec<String> = match &record.parsed {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    };
    json!({
        "kind": record.kind,
        "id": record.key,
        "pending": pending,
        "problems": problems,
        "conflicts": record.conflicts,
    })
}

fn print_json(value: &Value) {
    println!("{value}");
}
