//! `fieldnotes-fuzz`: runs the fuzz targets of `tests/fuzz` — bounded
//! (`run`), or under AFL++ (`afl`, built with `cargo afl build --features
//! afl`) — and writes their seed corpora for AFL++ (`seeds`). See
//! docs/SECURITY.md, "Fuzzing".

use std::{path::PathBuf, time::Duration};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use fieldnotes_fuzz::{run, target, BoundaryDatabase, Budget, Kind, Target, TARGETS};

#[derive(Parser)]
#[command(about = "Fuzz targets of the field survey service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lists the targets.
    List,
    /// Runs targets on their seeds and random mutations of them (no coverage
    /// feedback), each until its executions or its seconds are spent.
    Run {
        /// A target's name, or `all`.
        target: String,
        #[arg(long, default_value_t = u64::MAX)]
        executions: u64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// The random seed of the mutations; a run is repeated with the same one.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Writes a target's seed corpus, one file per input, for `afl-fuzz -i`.
    Seeds { target: String, dir: PathBuf },
    /// Runs one target under AFL++ (`cargo afl fuzz … -- fieldnotes-fuzz afl NAME`).
    #[cfg(feature = "afl")]
    Afl { target: String },
}

fn named(name: &str) -> anyhow::Result<&'static Target> {
    target(name).with_context(|| {
        let names: Vec<_> = TARGETS.iter().map(|t| t.name).collect();
        format!("no target {name:?}; the targets are {}", names.join(", "))
    })
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::List => {
            for target in TARGETS {
                println!("{:<14} {}", target.name, target.what);
            }
        }
        Command::Run {
            target,
            executions,
            seconds,
            seed,
        } => {
            let chosen: Vec<&Target> = if target == "all" {
                TARGETS.iter().collect()
            } else {
                vec![named(&target)?]
            };
            let seed = seed.unwrap_or_else(rand::random);
            let budget = Budget {
                executions,
                time: Duration::from_secs(seconds),
            };
            for target in chosen {
                let report = match target.kind {
                    Kind::Bytes(execute) => run(target, seed, budget, &mut |data| execute(data)),
                    Kind::Database => {
                        let database = BoundaryDatabase::create()?;
                        run(target, seed, budget, &mut |data| database.execute(data))
                    }
                };
                println!(
                    "{}: {} executions in {:.1} s from {} seeds (mutation seed {seed}), no failure",
                    target.name,
                    report.executions,
                    report.elapsed.as_secs_f64(),
                    report.seeds
                );
            }
        }
        Command::Seeds { target, dir } => {
            let target = named(&target)?;
            let seeds = fieldnotes_fuzz::seeds::seeds(target.name);
            if seeds.is_empty() {
                bail!("{} has no seeds", target.name);
            }
            std::fs::create_dir_all(&dir)?;
            for (index, seed) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{index:03}")), seed)?;
            }
            println!("{} seeds written to {}", seeds.len(), dir.display());
        }
        #[cfg(feature = "afl")]
        Command::Afl { target } => {
            let target = named(&target)?;
            match target.kind {
                Kind::Bytes(execute) => afl::fuzz!(|data: &[u8]| execute(data)),
                Kind::Database => {
                    // A panic ends the process under AFL++: no state outlives it.
                    let database = std::panic::AssertUnwindSafe(BoundaryDatabase::create()?);
                    afl::fuzz!(|data: &[u8]| database.execute(data));
                }
            }
        }
    }
    Ok(())
}
