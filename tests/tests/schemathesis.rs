//! The HTTP API fuzzed from its own OpenAPI document with schemathesis
//! (PyPI, in the tests' virtual environment): requests generated from each
//! operation's parameters and bodies, valid and invalid, sent as each role
//! — admin, coordinator, régie auditor, volunteer's device — must get no
//! 5xx, and only answers the document describes (status, content type,
//! body schema).

use std::{path::Path, process::Command};

use fieldnotes_tests::{accounts, init_test_logging, python_venv, ServerProcess, TestDatabase};

/// What schemathesis checks of every answer.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance";

/// Generated requests per operation and role: enough to reach each
/// parameter's and body field's invalid forms, few enough for CI's budget.
const MAX_EXAMPLES: &str = "10";

/// Seconds one role's run may take at most: all roles together stay well
/// within what CI gives the suite.
const MAX_SECONDS_PER_ROLE: &str = "60";

/// Fixed, so that a failure repeats.
const SEED: &str = "22";

/// Operations left out (by operationId), each with the reason. Logging out
/// would end the session the rest of the run uses (its answers are checked
/// by enrolment_and_login.rs).
const EXCLUDED_OPERATIONS: &[&str] = &["logout"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_only_documented_answers_and_no_server_error() -> anyhow::Result<()> {
    init_test_logging();
    let python = python_venv()?;
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let f = accounts::seed(&pool).await?;
    let schema = server.http_url("/api/openapi.json");
    let base = server.http_url("");
    let roles = [
        ("admin", &f.admin),
        ("coordinator", &f.coordinator),
        ("auditor", &f.auditor),
        ("volunteer device", &f.volunteer),
    ];
    let mut failures = Vec::new();
    for (role, actor) in roles {
        let output = schemathesis(&python, &schema, &base, &actor.token)?;
        if !output.status.success() {
            failures.push(format!(
                "as {role} ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(())
}

fn schemathesis(
    python: &Path,
    schema: &str,
    base: &str,
    token: &str,
) -> anyhow::Result<std::process::Output> {
    let bin = python
        .parent()
        .expect("the venv's bin")
        .join("schemathesis");
    let mut command = Command::new(bin);
    command
        .args(["run", schema, "--url", base.trim_end_matches('/')])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--max-time", MAX_SECONDS_PER_ROLE])
        .args(["--seed", SEED])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--workers", "1"])
        .args(["--no-shrink", "--output-truncate", "false"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // Whatever it writes (its cache, reports) goes under the venv, not the working tree.
        .current_dir(python.parent().expect("the venv's bin"));
    for operation in EXCLUDED_OPERATIONS {
        command.args(["--exclude-operation-id", operation]);
    }
    Ok(command.output()?)
}
