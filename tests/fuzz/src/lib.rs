//! Fuzzing everything that parses bytes from outside: automerge-repo frames,
//! automerge sync messages and change chunks, the sync judge on arbitrary
//! changes, notebook reading, species lists, territory boundaries and photos.
//!
//! Each target ([`targets`]) runs two ways on stable Rust:
//! - bounded ([`run`]): seeds ([`seeds`]) and random mutations of them, for a
//!   number of executions or seconds, with no instrumentation. The tests of
//!   this crate and CI run this.
//! - coverage-guided: the `afl` subcommand of the `fieldnotes-fuzz` binary,
//!   built with `cargo afl build --features afl`, under AFL++ (docs/SECURITY.md,
//!   "Fuzzing"), with the seeds written out by its `seeds` subcommand.

pub mod edits;
pub mod mutate;
pub mod seeds;
pub mod targets;

use std::{
    panic::AssertUnwindSafe,
    path::PathBuf,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use rand::{rngs::StdRng, Rng, SeedableRng};

/// A fuzz target: its name on the command line and how it runs one input.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub what: &'static str,
    pub kind: Kind,
}

#[derive(Clone, Copy)]
pub enum Kind {
    /// Runs on the bytes alone.
    Bytes(fn(&[u8])),
    /// Needs the service's database (PostGIS checks territory boundaries).
    Database,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "protocol",
        what: "automerge-repo CBOR frames (sync::protocol::decode, re-encoded)",
        kind: Kind::Bytes(targets::protocol),
    },
    Target {
        name: "sync-message",
        what: "automerge sync messages, the data of a sync frame (IncomingSync::decode)",
        kind: Kind::Bytes(targets::sync_message),
    },
    Target {
        name: "chunks",
        what: "change chunks: change, run, bundle, document (sync::documents::wire::chunk_changes)",
        kind: Kind::Bytes(targets::chunks),
    },
    Target {
        name: "inflation",
        what: "what compressed chunks inflate to, counted before automerge (sync::documents::wire::InflationBudget)",
        kind: Kind::Bytes(targets::inflation),
    },
    Target {
        name: "judge",
        what: "the sync judge on arbitrary changes to a notebook (authorize_notebook_changes)",
        kind: Kind::Bytes(targets::judge),
    },
    Target {
        name: "notebook",
        what: "reading a notebook from arbitrary documents (read_notebook)",
        kind: Kind::Bytes(targets::notebook),
    },
    Target {
        name: "species-csv",
        what: "TAXREF-style species lists (server::species::import::parse_species_list)",
        kind: Kind::Bytes(targets::species_csv),
    },
    Target {
        name: "photo-upload",
        what: "photos uploaded to the server (server::photos::verify::verify)",
        kind: Kind::Bytes(targets::photo_upload),
    },
    Target {
        name: "photo-phone",
        what: "photos a phone attaches (mobile_bridge::photos::process_photo)",
        kind: Kind::Bytes(targets::photo_phone),
    },
    Target {
        name: "boundary",
        what: "territory boundaries checked by PostGIS (admin::create_described_territory)",
        kind: Kind::Database,
    },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

/// How long a bounded run lasts: whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub executions: u64,
    pub time: Duration,
}

/// What a bounded run did.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub executions: u64,
    pub seeds: usize,
    pub elapsed: Duration,
}

/// Inputs longer than this are cut: the targets' interesting structure is
/// in the first kilobytes, and long inputs only slow executions down.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// The message of the latest panic on any thread.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Keeps panic messages instead of printing them: the judge catches the
/// panics automerge raises on some malformed changes (and refuses them), and
/// a run meets thousands. The message of a panic that escapes a target is
/// printed with its input.
fn quiet_panics() {
    static SET: OnceLock<()> = OnceLock::new();
    SET.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            let backtrace = std::backtrace::Backtrace::capture();
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = Some(format!("{info}\n{backtrace}"));
            }
        }))
    });
}

/// Where a bounded run writes an input that made its target panic.
pub fn findings_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-findings")
}

/// Runs `target` on each of its seeds, then on mutations of them drawn from
/// `rng_seed`, until the budget is spent. A panic (a finding) propagates,
/// once the input is written under [`findings_dir`] for a regression test.
/// `execute` runs one input: the caller supplies it for database targets.
pub fn run(
    target: &Target,
    rng_seed: u64,
    budget: Budget,
    execute: &mut dyn FnMut(&[u8]),
) -> Report {
    let started = Instant::now();
    let corpus = seeds::seeds(target.name);
    let mut executions = 0;
    quiet_panics();
    let mut execute = |input: &[u8]| {
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| execute(input))) {
            if let Some(message) = LAST_PANIC.lock().ok().and_then(|mut last| last.take()) {
                eprintln!("{}: {message}", target.name);
            }
            let dir = findings_dir();
            let file = dir.join(format!(
                "{}-{}",
                target.name,
                mobile_bridge::photos::sha256_hex(input)
            ));
            match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, input)) {
                Ok(()) => eprintln!(
                    "{}: the failing input is in {}",
                    target.name,
                    file.display()
                ),
                Err(error) => eprintln!("{}: writing the failing input: {error}", target.name),
            }
            std::panic::resume_unwind(panic);
        }
    };
    for seed in &corpus {
        execute(seed);
        executions += 1;
    }
    let mut rng = StdRng::seed_from_u64(rng_seed);
    while executions < budget.executions && started.elapsed() < budget.time {
        let input = if corpus.is_empty() || rng.random_ratio(1, 10) {
            let length = rng.random_range(0..1024);
            (0..length).map(|_| rng.random()).collect()
        } else {
            let base = &corpus[rng.random_range(0..corpus.len())];
            let other = &corpus[rng.random_range(0..corpus.len())];
            mutate::mutate(&mut rng, base, other)
        };
        execute(&input);
        executions += 1;
    }
    Report {
        executions,
        seeds: corpus.len(),
        elapsed: started.elapsed(),
    }
}

/// A database of its own for the `boundary` target (on the tests' PostgreSQL,
/// as the end-to-end tests make theirs), with the service's migrations.
pub struct BoundaryDatabase {
    runtime: tokio::runtime::Runtime,
    pool: sqlx::PgPool,
    // Dropped last: the database goes when the run ends.
    _database: tests::TestDatabase,
}

impl BoundaryDatabase {
    pub fn create() -> anyhow::Result<BoundaryDatabase> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (database, pool) = runtime.block_on(async {
            let database = tests::TestDatabase::create().await?;
            let pool = database.pool().await?;
            server::MIGRATOR.run(&pool).await?;
            anyhow::Ok((database, pool))
        })?;
        Ok(BoundaryDatabase {
            runtime,
            pool,
            _database: database,
        })
    }

    pub fn execute(&self, data: &[u8]) {
        self.runtime.block_on(targets::boundary(&self.pool, data));
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}
