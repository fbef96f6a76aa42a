//! `fieldkit`: a volunteer simulator built on the phone library, for demos and
//! tests. Every command works on one phone store directory (`--store`), exactly
//! as an app would: enrol with an invitation code, record sightings,
//! degradation reports and volunteer hours offline, sync when there is signal,
//! show what is pending.
//!
//! Output is JSON on stdout (one line) so scripts and tests can read it; errors
//! go to stderr, and a refused record exits with status 2, naming each field.
//!
//! Values of the records' enumerations (a report's `category`, an entry's
//! `activity`) are listed in the help but checked by the phone library's
//! validation, as an app's would be: a wrong one is refused with the allowed
//! values from the schema itself (and a test keeps the help equal to them).

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use chrono::{Local, Utc};
use clap::{Parser, Subcommand};
use fieldnotes_mobile_bridge::{CaptureError, Device, GpsFix, PendingRecord, RecordState};
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
    /// Reports of damage to nature (waste dumping, felled hedges, pollution…).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// The volunteer's timesheet: hours given, for grant files.
    Hours {
        #[command(subcommand)]
        command: HoursCommand,
    },
    /// Wait until the server acknowledged everything on this phone.
    Sync {
        /// Seconds to wait before giving up.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Device, records pending and synced (per kind) and last sync, as JSON.
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

#[derive(Subcommand)]
enum ReportCommand {
    /// Report damage seen here and now; prints its id.
    Add {
        /// waste_dumping, felled_or_damaged_trees_or_hedges, water_pollution,
        /// damaged_wetland, pesticide_use, harm_to_protected_species_or_habitat,
        /// invasive_alien_species, light_pollution or other.
        #[arg(long)]
        category: String,
        /// What the damage is, required with `--category other`.
        #[arg(long)]
        category_detail: Option<String>,
        /// What was seen.
        #[arg(long)]
        description: String,
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        /// GPS accuracy in metres.
        #[arg(long)]
        accuracy: Option<f64>,
        /// A named place of the territory.
        #[arg(long)]
        site: Option<String>,
        /// Keep the record even if it fails validation.
        #[arg(long)]
        draft: bool,
    },
}

#[derive(Subcommand)]
enum HoursCommand {
    /// Record time given on one day: `--minutes`, or `--start` and `--end`
    /// (or all three); prints the entry's id. The hours are the enrolled
    /// volunteer's own.
    Add {
        /// field_survey, planting, clean_up, data_entry, training, meeting,
        /// awareness_event or other.
        #[arg(long)]
        activity: String,
        /// The day worked, YYYY-MM-DD (default: today, local time).
        #[arg(long)]
        date: Option<String>,
        /// Minutes worked.
        #[arg(long)]
        minutes: Option<i64>,
        /// When the work started (RFC 3339, e.g. 2025-05-17T09:00:00+02:00).
        #[arg(long)]
        start: Option<String>,
        /// When the work ended (RFC 3339).
        #[arg(long)]
        end: Option<String>,
        /// A named place of the territory.
        #[arg(long)]
        site: Option<String>,
        #[arg(long)]
        notes: Option<String>,
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
        // Colours for a person at a terminal, plain text for a file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match run(&cli.store, cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<CaptureError>() {
            Some(CaptureError::Invalid(problems)) => {
                eprintln!("fieldkit: the record was not saved:");
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
            let fields = form([
                ("scientificName", Some(json!(name))),
                ("individualCount", count.map(Value::from)),
                ("notes", notes.map(Value::from)),
                ("recordedBy", recorded_by.map(Value::from)),
            ]);
            let fix = gps_fix(lat, lon, accuracy);
            capture(store, RecordKind::Sighting, &fields, Some(&fix), draft).await?;
        }
        Command::Report {
            command:
                ReportCommand::Add {
                    category,
                    category_detail,
                    description,
                    lat,
                    lon,
                    accuracy,
                    site,
                    draft,
                },
        } => {
            let fields = form([
                ("category", Some(json!(category))),
                ("categoryDetail", category_detail.map(Value::from)),
                ("description", Some(json!(description))),
                ("site", site.map(Value::from)),
            ]);
            let fix = gps_fix(lat, lon, accuracy);
            let kind = RecordKind::DegradationReport;
            capture(store, kind, &fields, Some(&fix), draft).await?;
        }
        Command::Hours {
            command:
                HoursCommand::Add {
                    activity,
                    date,
                    minutes,
                    start,
                    end,
                    site,
                    notes,
                    draft,
                },
        } => {
            // The volunteer's own day, as their phone's calendar shows it.
            let date = date.unwrap_or_else(|| Local::now().date_naive().to_string());
            // `volunteerId` is left to the phone library: the enrolled account.
            let fields = form([
                ("activity", Some(json!(activity))),
                ("workDate", Some(json!(date))),
                ("durationMinutes", minutes.map(Value::from)),
                ("startedAt", start.map(Value::from)),
                ("endedAt", end.map(Value::from)),
                ("site", site.map(Value::from)),
                ("notes", notes.map(Value::from)),
            ]);
            capture(store, RecordKind::TimesheetEntry, &fields, None, draft).await?;
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
            let records = device.records();
            print_json(&json!({
                "device": device_json(&device),
                "notebook": device.notebook_id().to_string(),
                "records": records.len(),
                "pendingRecords": pending.len(),
                "pending": pending,
                "kinds": counts_per_kind(&records, &pending),
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

/// The fields a form filled: those given, in order.
fn form<const N: usize>(fields: [(&str, Option<Value>); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), value?)))
            .collect::<Map<String, Value>>(),
    )
}

fn gps_fix(latitude: f64, longitude: f64, accuracy_m: Option<f64>) -> GpsFix {
    GpsFix {
        latitude,
        longitude,
        accuracy_m,
        taken_at: Utc::now(),
    }
}

/// Records a filled form as the app would: refused when invalid (exit status
/// 2), or kept as a draft with its problems (`--draft`). Prints the new id, or
/// for a draft `{"id", "problems"}`.
async fn capture(
    store: &Path,
    kind: RecordKind,
    fields: &Value,
    fix: Option<&GpsFix>,
    draft: bool,
) -> anyhow::Result<()> {
    let device = Device::open(store).await?;
    let result = if draft {
        device.save_draft(kind, fields, fix).map(|saved| {
            let problems: Vec<String> = saved.problems.iter().map(ToString::to_string).collect();
            print_json(&json!({ "id": saved.id, "problems": problems }));
        })
    } else {
        device.create(kind, fields, fix).map(|id| println!("{id}"))
    };
    device.shut_down().await;
    Ok(result?)
}

/// Per kind of record: how many the phone holds, how many wait for the
/// server's acknowledgement (deletions included), how many it acknowledged.
fn counts_per_kind(records: &[RecordState], pending: &[PendingRecord]) -> Value {
    let per_kind = RecordKind::ALL.map(|kind| {
        let is_pending = |key: &str| pending.iter().any(|p| p.kind == kind && p.key == key);
        let held: Vec<&RecordState> = records.iter().filter(|r| r.kind == kind).collect();
        let synced = held.iter().filter(|r| !is_pending(&r.key)).count();
        let counts = json!({
            "records": held.len(),
            "pending": pending.iter().filter(|p| p.kind == kind).count(),
            "synced": synced,
        });
        (kind.as_str().to_string(), counts)
    });
    Value::Object(per_kind.into_iter().collect())
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use schemas::{json_schema_of, DegradationReport, TimesheetEntry};

    use super::*;

    /// The help of `fieldkit <command> add --<arg>`.
    fn help(command: &str, arg: &str) -> String {
        let cli = Cli::command();
        let add = cli
            .find_subcommand(command)
            .and_then(|c| c.find_subcommand("add"))
            .expect("the subcommand exists");
        let arg = add
            .get_arguments()
            .find(|a| a.get_id() == arg)
            .expect("the argument exists");
        arg.get_help().expect("the argument has help").to_string()
    }

    /// The values of the enumeration `name` in a record's JSON Schema.
    fn allowed(schema: &Value, name: &str) -> Vec<String> {
        schema["$defs"][name]["enum"]
            .as_array()
            .expect("the schema lists the values")
            .iter()
            .map(|v| v.as_str().expect("a string value").to_string())
            .collect()
    }

    #[test]
    fn the_help_lists_exactly_the_values_the_schemas_allow() {
        for (command, arg, schema, name) in [
            (
                "report",
                "category",
                json_schema_of::<DegradationReport>(),
                "DegradationCategory",
            ),
            (
                "hours",
                "activity",
                json_schema_of::<TimesheetEntry>(),
                "ActivityType",
            ),
        ] {
            let help = help(command, arg);
            let listed: Vec<String> = help
                .split([',', ' '])
                .map(|word| word.trim_end_matches('.'))
                .filter(|word| !word.is_empty() && *word != "or")
                .map(str::to_string)
                .collect();
            assert_eq!(listed, allowed(&schema, name), "{command} --{arg}: {help}");
        }
    }
}
