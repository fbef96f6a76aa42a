//! Builds the coordinators' web app (`web/`) with its own pinned toolchain —
//! `npm ci` from `web/package-lock.json`, then `vite build` into `OUT_DIR` —
//! so `cargo build`, `cargo run` and `cargo test` serve the app with nothing
//! built committed. `src/http/web.rs` embeds what lands in `OUT_DIR/web`.
//!
//! Node.js and npm are the only things needed beyond Rust; their absence, or
//! a Node too old for Vite, stops the build with what to install.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

/// Vite 8 needs Node 20.19 or later (or 22.12+).
const NODE_MINIMUM: (u32, u32) = (20, 19);

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let web = manifest.join("web");
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("web");
    for input in [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.js",
    ] {
        println!("cargo:rerun-if-changed=web/{input}");
    }

    check_node();
    install_packages(&web);
    run(
        Command::new("node")
            .arg("node_modules/vite/bin/vite.js")
            .arg("build")
            .arg("--logLevel")
            .arg("warn")
            .env("FIELDNOTES_WEB_OUT", &out)
            .current_dir(&web),
        "vite build (server/web)",
    );
    if !out.join("index.html").is_file() {
        fail(&format!(
            "vite build wrote no {}",
            out.join("index.html").display()
        ));
    }

    // The embedding struct names the absolute output folder, which differs
    // per machine and profile: generated here, included by src/http/web.rs.
    let generated = format!(
        "/// The built web app, embedded in the binary.\n\
         #[derive(rust_embed::Embed)]\n\
         #[folder = {:?}]\n\
         pub struct WebAssets;\n",
        out.display().to_string()
    );
    let target = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("web_assets.rs");
    std::fs::write(&target, generated)
        .unwrap_or_else(|error| fail(&format!("writing {}: {error}", target.display())));
}

fn check_node() {
    let version = Command::new("node").arg("--version").output();
    let Some(version) = version.ok().filter(|output| output.status.success()) else {
        fail(
            "Node.js is needed to build the web app (server/web) and was not found: \
             install Node.js 20.19 or later and npm (Debian/Ubuntu: sudo apt-get install nodejs npm)",
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
            "Node.js {text} is too old to build the web app (server/web): Vite needs {}.{} or later",
            NODE_MINIMUM.0, NODE_MINIMUM.1
        ));
    }
    if Command::new("npm").arg("--version").output().is_err() {
        fail("npm is needed to build the web app (server/web): sudo apt-get install npm");
    }
}

/// `npm ci` when `node_modules` is missing or older than the lockfile.
fn install_packages(web: &Path) {
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
        "npm ci (server/web)",
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
