//! Builds the two front-ends the server serves — the coordinators' web app
//! (`web/`) and the volunteers' field app (`../mobile-bridge/web/`) — each
//! with its own pinned toolchain (`npm ci` from its lockfile, then `vite
//! build` into `OUT_DIR`), so `cargo build`, `cargo run` and `cargo test`
//! serve both with nothing built committed. `src/http/web.rs` embeds what
//! lands in `OUT_DIR/web` and `OUT_DIR/field`.
//!
//! Both import the shared web package (`web/shared`: API client, session
//! state, i18n core, record vocabulary), which reads the JSON Schema files of
//! `../schemas/json`: a change to either rebuilds both apps.
//!
//! Node.js and npm are the only things needed beyond Rust; their absence, or
//! a Node too old for Vite, stops the build with what to install.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

/// Vite 6 runs on Node 18 and later: Node 18 is what Debian 12 and Ubuntu
/// 24.04 ship, and the README's commands must work with their packages (the
/// reason the front-ends stay on Vite 6, whose successors need Node 20.19).
const NODE_MINIMUM: (u32, u32) = (18, 0);

/// One front-end: where its sources are, where vite writes it, and the
/// rust-embed struct that carries it into the binary.
struct App {
    /// Relative to this crate, as cargo's `rerun-if-changed` wants it.
    dir: &'static str,
    /// Its own inputs beyond `src/` and the usual files.
    extra_inputs: &'static [&'static str],
    out: &'static str,
    embed: &'static str,
    what: &'static str,
}

/// What both apps import, relative to this crate: the shared web package and
/// the JSON Schemas its record vocabulary is read from.
const SHARED_INPUTS: [&str; 2] = ["web/shared", "../schemas/json"];

const APPS: [App; 2] = [
    App {
        dir: "web",
        extra_inputs: &[],
        out: "web",
        embed: "WebAssets",
        what: "The coordinators' web app (`server/web`), served at `/`",
    },
    // The phones' field app ships with the phone side (`mobile-bridge`); the
    // server only serves it, so it is built here, where it is embedded.
    App {
        dir: "../mobile-bridge/web",
        extra_inputs: &["scripts"],
        out: "field",
        embed: "FieldAssets",
        what: "The volunteers' field app (`mobile-bridge/web`), served at `/field/`",
    },
];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    check_node();
    for input in SHARED_INPUTS {
        println!("cargo:rerun-if-changed={input}");
    }
    let mut generated = String::new();
    for app in &APPS {
        let out = out_dir.join(app.out);
        build(app, &manifest.join(app.dir), &out);
        // The embedding struct names the absolute output folder, which
        // differs per machine and profile: generated here, included by
        // src/http/web.rs.
        generated.push_str(&format!(
            "/// {}: the files vite built, embedded in the binary.\n\
             #[derive(rust_embed::Embed)]\n\
             #[folder = {:?}]\n\
             pub struct {};\n",
            app.what,
            out.display().to_string(),
            app.embed,
        ));
    }
    let target = out_dir.join("web_assets.rs");
    std::fs::write(&target, generated)
        .unwrap_or_else(|error| fail(&format!("writing {}: {error}", target.display())));
}

fn build(app: &App, dir: &Path, out: &Path) {
    let standard = [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.js",
    ];
    for input in standard.iter().chain(app.extra_inputs) {
        println!("cargo:rerun-if-changed={}/{input}", app.dir);
    }
    install_packages(dir, app.dir);
    run(
        Command::new("node")
            .arg("node_modules/vite/bin/vite.js")
            .arg("build")
            .arg("--logLevel")
            .arg("warn")
            .env("FIELDNOTES_WEB_OUT", out)
            .current_dir(dir),
        &format!("vite build ({})", app.dir),
    );
    if !out.join("index.html").is_file() {
        fail(&format!(
            "vite build wrote no {}",
            out.join("index.html").display()
        ));
    }
}

fn check_node() {
    let version = Command::new("node").arg("--version").output();
    let Some(version) = version.ok().filter(|output| output.status.success()) else {
        fail(
            "Node.js is needed to build the web apps (server/web, mobile-bridge/web) and was not found: \
             install Node.js 18 or later and npm (Debian 12, Ubuntu 24.04: sudo apt-get install nodejs npm)",
        );
    };
    let text = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let mut parts = text
        .trim_start_matches('v')
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < NODE_MINIMUM {
        fail(&format!(
            "Node.js {text} is too old to build the web apps (server/web, mobile-bridge/web): Vite needs {}.{} or later \
             (the nodejs package of Debian 12 and Ubuntu 24.04 is recent enough)",
            NODE_MINIMUM.0, NODE_MINIMUM.1
        ));
    }
    if Command::new("npm").arg("--version").output().is_err() {
        fail("npm is needed to build the web apps (server/web, mobile-bridge/web): sudo apt-get install npm");
    }
}

/// `npm ci` when `node_modules` is missing or older than the lockfile.
fn install_packages(web: &Path, name: &str) {
    let installed = web.join("node_modules/.package-lock.json");
    let lock = web.join("package-lock.json");
    let modified = |path: &Path| path.metadata().and_then(|m| m.modified()).ok();
    if matches!((modified(&installed), modified(&lock)), (Some(i), Some(l)) if i >= l) {
        return;
    }
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel", "error"])
            .current_dir(web),
        &format!("npm ci ({name})"),
    );
}

fn run(command: &mut Command, what: &str) {
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!("{what} failed ({status}); its output is above")),
        Err(error) => fail(&format!("{what} could not start: {error}")),
    }
}

fn fail(message: &str) -> ! {
    // cargo shows a build script's stderr when it fails.
    eprintln!("error: {message}");
    std::process::exit(1);
}
