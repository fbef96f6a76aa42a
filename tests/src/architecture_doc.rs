//! `docs/ARCHITECTURE.md` names files; this checks that they exist: every
//! path of its "Step → file" table (one row per step of the data path), and
//! every backquoted path to a `.rs`, `.js`, `.sql` or `.json` file anywhere
//! in it, each from the repository root. A file moved without its line in
//! the document fails here, named.
//!
//! A unit test of this library rather than a test binary of its own: the
//! library's tests are built and linked by `cargo test --workspace` anyway,
//! and this one only reads a file.

use std::path::{Path, PathBuf};

const DOC: &str = "docs/ARCHITECTURE.md";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_path_buf()
}

/// The backquoted spans of `markdown`, paired within each paragraph (a span
/// may wrap a line, never a blank one); code fences are left out, the
/// diagrams between them are read like paragraphs.
fn code_spans(markdown: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut paragraph = String::new();
    for line in markdown.lines().chain([""]) {
        if line.trim().is_empty() || line.trim_start().starts_with("```") {
            spans.extend(paragraph.split('`').skip(1).step_by(2).map(str::to_string));
            paragraph.clear();
        } else {
            paragraph.push_str(line);
            paragraph.push('\n');
        }
    }
    spans
}

/// A span naming a source, SQL or JSON file (rather than a module, a table, a value).
fn is_file_path(span: &str) -> bool {
    [".rs", ".js", ".sql", ".json"]
        .iter()
        .any(|extension| span.ends_with(extension))
        && !span.contains(char::is_whitespace)
}

/// The rows of the "Step → file" table: each step, and the paths its row
/// names (every backquoted span of the row is a path).
fn step_table(markdown: &str) -> Vec<(String, Vec<String>)> {
    let mut lines = markdown
        .lines()
        .skip_while(|line| !(line.starts_with('#') && line.to_lowercase().contains("step → file")));
    assert!(
        lines.next().is_some(),
        "{DOC} has no \"Step → file\" heading"
    );
    lines
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        // The header and the separator.
        .skip(2)
        .map(|row| {
            let step = row.split('|').nth(1).unwrap_or_default().trim().to_string();
            let paths = row
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            (step, paths)
        })
        .collect()
}

/// What `markdown` names that `root` does not hold, each with where it is named.
fn missing_files(markdown: &str, root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let table = step_table(markdown);
    for (step, paths) in &table {
        if paths.is_empty() {
            missing.push(format!("step {step} names no file"));
        }
        missing.extend(
            paths
                .iter()
                .filter(|path| !root.join(path).exists())
                .map(|path| format!("{path} (step {step} of the table)")),
        );
    }
    let in_table = |span: &String| table.iter().any(|(_, paths)| paths.contains(span));
    missing.extend(
        code_spans(markdown)
            .into_iter()
            .filter(|span| is_file_path(span) && !in_table(span) && !root.join(span).exists()),
    );
    missing
}

#[test]
fn every_file_the_architecture_names_exists() {
    let root = repository();
    let doc = std::fs::read_to_string(root.join(DOC)).unwrap_or_else(|e| panic!("{DOC}: {e}"));
    let steps: Vec<String> = step_table(&doc).into_iter().map(|(step, _)| step).collect();
    assert_eq!(
        steps,
        ["1", "2", "3", "4", "5", "6", "7", "8"],
        "the step → file table of {DOC} has one row per step of the data path"
    );
    let missing = missing_files(&doc, &root);
    assert!(
        missing.is_empty(),
        "{DOC} names files that do not exist (paths are from the repository root):\n{}",
        missing.join("\n")
    );
}

#[test]
fn a_file_named_in_the_table_or_the_text_that_is_gone_is_named() {
    let doc = "# Doc\n\n### Step → file\n\n| Step | What | Files |\n|---|---|---|\n\
               | 1 | saving | `Cargo.toml`, `sync/src/gone.rs` |\n| 2 | dialing | |\n\n\
               Prose naming `sync/src/lib.rs`, `schemas/json/gone.json`, a\n\
               module `sync::judge` and a wrapped `NOTIFY\nsomething`.\n";
    assert_eq!(
        missing_files(doc, &repository()),
        [
            "sync/src/gone.rs (step 1 of the table)",
            "step 2 names no file",
            "schemas/json/gone.json",
        ]
    );
}
