//! Each fuzz target on its seeds and a fixed number of mutations of them,
//! from a fixed random seed (so a failure repeats): what CI runs of them in
//! every `cargo test`. Longer and coverage-guided runs: docs/SECURITY.md,
//! "Fuzzing".

use std::time::Duration;

use fieldnotes_fuzz::{run, target, BoundaryDatabase, Budget, Kind};

/// Inputs per target in a test run: about 10 s for all of them in a debug
/// build, the judge (a few milliseconds an input) the slowest.
const EXECUTIONS: u64 = 2_000;

/// The mutation seed: fixed, so that a failing input is found again.
const MUTATION_SEED: u64 = 22;

fn bounded(name: &str) {
    let target = target(name).expect("a target of that name");
    let budget = Budget {
        executions: EXECUTIONS,
        time: Duration::MAX,
    };
    let report = match target.kind {
        Kind::Bytes(execute) => run(target, MUTATION_SEED, budget, &mut |data| execute(data)),
        Kind::Database => {
            let database = BoundaryDatabase::create().expect("a database for the boundaries");
            run(target, MUTATION_SEED, budget, &mut |data| {
                database.execute(data)
            })
        }
    };
    assert!(report.seeds > 0, "{name} has seeds");
    assert_eq!(report.executions, EXECUTIONS.max(report.seeds as u64));
}

#[test]
fn protocol_frames() {
    bounded("protocol");
}

#[test]
fn sync_messages() {
    bounded("sync-message");
}

#[test]
fn change_chunks() {
    bounded("chunks");
}

#[test]
fn inflation_counting() {
    bounded("inflation");
}

#[test]
fn the_judge_on_arbitrary_changes() {
    bounded("judge");
}

#[test]
fn notebook_reading() {
    bounded("notebook");
}

#[test]
fn species_lists() {
    bounded("species-csv");
}

#[test]
fn photo_uploads() {
    bounded("photo-upload");
}

#[test]
fn phone_photos() {
    bounded("photo-phone");
}

#[test]
fn territory_boundaries() {
    bounded("boundary");
}
