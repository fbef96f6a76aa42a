//! Real-browser tests: one headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `tests/js`) per test binary, shared by its tests;
//! each test drives its own pages through a small Node driver
//! (`tests/js/browser-driver.mjs`) that takes one JSON command per line.
//! Playwright's locators wait for the elements they act on, and
//! [`Driver::wait_for_text`] waits on a condition, so no test sleeps.
//!
//! Screenshots go under `target/browser-artifacts/<test>/`.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::{Mutex, OnceLock},
};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::{ensure_js_dependencies, workspace_root};

/// Where Debian's `chromium` package puts the browser (`CHROMIUM` overrides).
fn chromium() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !path.exists() {
        bail!(
            "{} not found: the browser tests need Chromium (sudo apt-get install chromium)",
            path.display()
        );
    }
    Ok(path)
}

/// The shared browser's endpoint; the browser process lives as long as the
/// test binary (it stops when its stdin, held here, closes at exit).
fn shared_browser() -> anyhow::Result<String> {
    struct Browser {
        endpoint: String,
        _process: Child,
    }
    static BROWSER: OnceLock<Result<Mutex<Browser>, String>> = OnceLock::new();
    let browser = BROWSER.get_or_init(|| {
        let launch = || -> anyhow::Result<Browser> {
            let js = ensure_js_dependencies()?;
            let mut process = Command::new("node")
                .arg(js.join("browser-server.mjs"))
                .env("CHROMIUM", chromium()?)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting node browser-server.mjs (install Node.js)")?;
            let line = crate::first_stdout_line(&mut process, "browser-server.mjs")?;
            let endpoint = serde_json::from_str::<Value>(&line)?["wsEndpoint"]
                .as_str()
                .context("browser-server.mjs printed no wsEndpoint")?
                .to_string();
            Ok(Browser {
                endpoint,
                _process: process,
            })
        };
        launch()
            .map(Mutex::new)
            .map_err(|error| format!("{error:#}"))
    });
    match browser {
        Ok(browser) => Ok(browser.lock().expect("browser poisoned").endpoint.clone()),
        Err(error) => bail!("the shared browser did not start: {error}"),
    }
}

/// A page id of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page(u64);

/// One test's connection to the shared browser.
pub struct Driver {
    process: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    artifacts: PathBuf,
}

impl Driver {
    /// A driver for the test named `test`, its screenshots under
    /// `target/browser-artifacts/<test>/`.
    pub fn start(test: &str) -> anyhow::Result<Driver> {
        let endpoint = shared_browser()?;
        let js = ensure_js_dependencies()?;
        let mut process = Command::new("node")
            .arg(js.join("browser-driver.mjs"))
            .env("BROWSER_WS", endpoint)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting node browser-driver.mjs")?;
        let stdin = process.stdin.take().context("driver stdin")?;
        let stdout = BufReader::new(process.stdout.take().context("driver stdout")?);
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let artifacts = target.join("browser-artifacts").join(test);
        std::fs::create_dir_all(&artifacts)
            .with_context(|| format!("creating {}", artifacts.display()))?;
        Ok(Driver {
            process,
            stdin,
            stdout,
            artifacts,
        })
    }

    /// Sends one command and returns its answer; an error names the command.
    /// Blocking, but each answer comes as soon as the page does what it was
    /// asked (or the driver's own timeout, 20 s, says it did not).
    pub fn send(&mut self, command: Value) -> anyhow::Result<Value> {
        // Blocking while the page works: let the runtime's other tasks (a
        // phone syncing, say) run on other threads meanwhile.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.send_blocking(command))
            }
            _ => self.send_blocking(command),
        }
    }

    fn send_blocking(&mut self, command: Value) -> anyhow::Result<Value> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the browser driver ended before answering {command}");
        }
        let answer: Value =
            serde_json::from_str(&line).with_context(|| format!("the driver answered {line:?}"))?;
        if let Some(error) = answer.get("error") {
            bail!("browser: {command}: {}", error.as_str().unwrap_or_default());
        }
        Ok(answer["ok"].clone())
    }

    pub fn new_page(&mut self, width: u32, height: u32, locale: &str) -> anyhow::Result<Page> {
        let id = self
            .send(json!({"op": "newPage", "width": width, "height": height, "locale": locale}))?;
        Ok(Page(id.as_u64().context("a page id")?))
    }

    /// A page (its own browser context: one device) whose position is
    /// `(latitude, longitude, accuracy in metres)`, geolocation allowed.
    pub fn new_located_page(
        &mut self,
        width: u32,
        height: u32,
        locale: &str,
        (latitude, longitude, accuracy): (f64, f64, f64),
    ) -> anyhow::Result<Page> {
        let id = self.send(json!({
            "op": "newPage", "width": width, "height": height, "locale": locale,
            "geolocation": {"latitude": latitude, "longitude": longitude, "accuracy": accuracy},
        }))?;
        Ok(Page(id.as_u64().context("page id")?))
    }

    /// Cuts the page's device off the network, or reconnects it.
    pub fn set_offline(&mut self, page: Page, offline: bool) -> anyhow::Result<()> {
        self.send(json!({"op": "setOffline", "page": page.0, "offline": offline}))?;
        Ok(())
    }

    /// Hands `bytes` to the file input `selector`, as the camera would.
    pub fn set_input_file(
        &mut self,
        page: Page,
        selector: &str,
        name: &str,
        mime_type: &str,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.send(
            json!({"op": "setInputFile", "page": page.0, "selector": selector,
            "name": name, "mimeType": mime_type, "base64": encoded}),
        )?;
        Ok(())
    }

    /// Bytes the page has received over WebSockets since it opened.
    pub fn web_socket_bytes(&mut self, page: Page) -> anyhow::Result<u64> {
        let bytes = self.send(json!({"op": "webSocketBytes", "page": page.0}))?;
        bytes.as_u64().context("a byte count")
    }

    pub fn goto(&mut self, page: Page, url: &str) -> anyhow::Result<()> {
        self.send(json!({"op": "goto", "page": page.0, "url": url}))
            .map(drop)
    }

    pub fn reload(&mut self, page: Page) -> anyhow::Result<()> {
        self.send(json!({"op": "reload", "page": page.0})).map(drop)
    }

    pub fn set_viewport(&mut self, page: Page, width: u32, height: u32) -> anyhow::Result<()> {
        self.send(json!({"op": "setViewport", "page": page.0, "width": width, "height": height}))
            .map(drop)
    }

    pub fn fill(&mut self, page: Page, selector: &str, value: &str) -> anyhow::Result<()> {
        self.send(json!({"op": "fill", "page": page.0, "selector": selector, "value": value}))
            .map(drop)
    }

    pub fn click(&mut self, page: Page, selector: &str) -> anyhow::Result<()> {
        self.send(json!({"op": "click", "page": page.0, "selector": selector}))
            .map(drop)
    }

    /// Closes the page and its context (a device put away).
    pub fn close_page(&mut self, page: Page) -> anyhow::Result<()> {
        self.send(json!({"op": "closePage", "page": page.0}))
            .map(drop)
    }

    /// Clicks `selector` at (`x`, `y`) pixels from its top left corner (a
    /// point on a map).
    pub fn click_at(&mut self, page: Page, selector: &str, x: u32, y: u32) -> anyhow::Result<()> {
        self.send(json!({"op": "clickAt", "page": page.0, "selector": selector, "x": x, "y": y}))
            .map(drop)
    }

    /// The questions of the confirmation dialogs the page asked so far (each
    /// was accepted).
    pub fn dialogs(&mut self, page: Page) -> anyhow::Result<Vec<String>> {
        let asked = self.send(json!({"op": "dialogs", "page": page.0}))?;
        Ok(serde_json::from_value(asked)?)
    }

    pub fn check(&mut self, page: Page, selector: &str) -> anyhow::Result<()> {
        self.send(json!({"op": "check", "page": page.0, "selector": selector}))
            .map(drop)
    }

    pub fn select(&mut self, page: Page, selector: &str, value: &str) -> anyhow::Result<()> {
        self.send(json!({"op": "select", "page": page.0, "selector": selector, "value": value}))
            .map(drop)
    }

    /// Presses `key` on the page's focused element (e.g. `Tab`, `Enter`).
    pub fn key(&mut self, page: Page, key: &str) -> anyhow::Result<()> {
        self.send(json!({"op": "keyboard", "page": page.0, "key": key}))
            .map(drop)
    }

    pub fn text(&mut self, page: Page, selector: &str) -> anyhow::Result<String> {
        let text = self.send(json!({"op": "text", "page": page.0, "selector": selector}))?;
        Ok(text.as_str().unwrap_or_default().to_string())
    }

    pub fn count(&mut self, page: Page, selector: &str) -> anyhow::Result<u64> {
        let n = self.send(json!({"op": "count", "page": page.0, "selector": selector}))?;
        n.as_u64().context("a count")
    }

    pub fn wait_for(&mut self, page: Page, selector: &str) -> anyhow::Result<()> {
        self.send(json!({"op": "waitFor", "page": page.0, "selector": selector}))
            .map(drop)
    }

    /// Waits until `selector`'s first element contains `text`; returns its text.
    pub fn wait_for_text(
        &mut self,
        page: Page,
        selector: &str,
        text: &str,
    ) -> anyhow::Result<String> {
        let seen = self.send(
            json!({"op": "waitForText", "page": page.0, "selector": selector, "text": text}),
        )?;
        Ok(seen.as_str().unwrap_or_default().to_string())
    }

    /// Waits until `selector` matches exactly `n` elements.
    pub fn wait_for_count(&mut self, page: Page, selector: &str, n: u64) -> anyhow::Result<()> {
        self.send(json!({"op": "waitForCount", "page": page.0, "selector": selector, "n": n}))
            .map(drop)
    }

    /// Clicks `selector` and saves the download it starts as `<name>` in
    /// this test's artifacts; its path and the name the page gave the file.
    pub fn download(
        &mut self,
        page: Page,
        selector: &str,
        name: &str,
    ) -> anyhow::Result<(PathBuf, String)> {
        let path = self.artifacts.join(name);
        let suggested = self
            .send(json!({"op": "download", "page": page.0, "selector": selector, "path": path}))?;
        Ok((path, suggested.as_str().unwrap_or_default().to_string()))
    }

    /// Renders the page as printed (`print`) or back on screen (`screen`).
    pub fn emulate_media(&mut self, page: Page, media: &str) -> anyhow::Result<()> {
        self.send(json!({"op": "emulateMedia", "page": page.0, "media": media}))
            .map(drop)
    }

    pub fn evaluate(&mut self, page: Page, expression: &str) -> anyhow::Result<Value> {
        self.send(json!({"op": "evaluate", "page": page.0, "expression": expression}))
    }

    /// A full-page screenshot `<name>.png` in this test's artifacts; its path.
    pub fn screenshot(&mut self, page: Page, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.artifacts.join(format!("{name}.png"));
        self.send(json!({"op": "screenshot", "page": page.0, "path": path}))?;
        Ok(path)
    }

    /// The WCAG 2.1 A/AA violations axe-core finds on the page now (contrast,
    /// labels, names, roles…): `{id, impact, help, nodes}` each.
    pub fn accessibility_violations(&mut self, page: Page) -> anyhow::Result<Vec<Value>> {
        let found = self.send(json!({"op": "axe", "page": page.0}))?;
        Ok(serde_json::from_value(found)?)
    }

    /// Fails, listing them, if axe-core finds WCAG 2.1 A/AA violations on the
    /// page as it is now; `what` names the page in the message.
    pub fn assert_accessible(&mut self, page: Page, what: &str) -> anyhow::Result<()> {
        let violations = self.accessibility_violations(page)?;
        assert!(
            violations.is_empty(),
            "{what}: {}",
            serde_json::to_string_pretty(&violations)?
        );
        Ok(())
    }

    /// Errors thrown in the pages since the last call.
    pub fn page_errors(&mut self) -> anyhow::Result<Vec<String>> {
        let errors = self.send(json!({"op": "errors"}))?;
        Ok(serde_json::from_value(errors)?)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
