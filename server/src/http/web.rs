//! The two front-ends, as `build.rs` built them (Vite, npm packages pinned
//! by their lockfiles), embedded in the binary so a deployment is one file
//! and nothing is fetched from a CDN:
//! - the coordinators' and régies' web app at `/` (`server/web/`);
//! - the volunteers' field app at `/field/` (`mobile-bridge/web/`), an
//!   offline PWA: its service worker (`/field/sw.js`) precaches the files
//!   served here, so they must answer the same bytes to every phone.
//!
//! These are public, static files: the login and enrolment pages have to load
//! before anyone holds a credential. Everything the apps show comes from the
//! API routes and the sync channel, each authenticated and checked. Not in
//! [`super::route_list`] nor the OpenAPI document, which describe the API.
//!
//! The only per-installation setting the pages need, the map's tile URL
//! (`--map-tiles-url`), is written into each `index.html` as a `<meta>` when
//! the server starts; the Content-Security-Policy allows images from that
//! origin and nothing else from outside.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Router,
};
use rust_embed::EmbeddedFile;
use tower_http::compression::CompressionLayer;

use super::ApiError;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// What the page is told about this installation.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// Raster tiles for the maps (`{z}/{x}/{y}`, optionally `{s}`); empty for
    /// none (the maps then show points, outlines and sites only).
    pub map_tiles_url: String,
}

/// One embedded front-end: `index.html` with this installation's settings,
/// the headers every answer carries, and where its files come from.
struct Prepared {
    index: Vec<u8>,
    security: HeaderMap,
    files: fn(&str) -> Option<EmbeddedFile>,
}

/// The field app's service worker: its scope is the app's folder, and a new
/// release must reach phones at their next start.
const SERVICE_WORKER: &str = "sw.js";

pub fn router(settings: &WebSettings) -> Router {
    let coordinators = Arc::new(prepare(settings, WebAssets::get, ""));
    // automerge is WebAssembly: the field app's scripts may compile it, and
    // its service worker runs from the same origin.
    let field = Arc::new(prepare(
        settings,
        FieldAssets::get,
        " 'wasm-unsafe-eval'; worker-src 'self'; manifest-src 'self'",
    ));
    let coordinators = Router::new()
        .route("/favicon.ico", get(favicon))
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{*path}", get(coordinators_asset))
        .with_state(coordinators);
    let field = Router::new()
        .route("/field", get(|| async { Redirect::permanent("/field/") }))
        .route("/field/", get(index))
        .route("/field/{*path}", get(field_file))
        .with_state(field);
    // The field app's automerge is 3.6 MB of WebAssembly (1.2 MB gzipped),
    // fetched by phones on field networks.
    coordinators
        .merge(field)
        .layer(CompressionLayer::new().gzip(true))
}

/// The web app's icon, which its page links (vite emits it under `assets/`).
/// Browsers and tools also ask for `/favicon.ico` on their own: it answers
/// the same SVG, whatever the name says.
const FAVICON: &[u8] = include_bytes!("../../web/src/favicon.svg");

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        FAVICON,
    )
        .into_response()
}

/// `script_extra` ends the `script-src` directive: extra script sources and
/// directives of this app only.
fn prepare(
    settings: &WebSettings,
    files: fn(&str) -> Option<EmbeddedFile>,
    script_extra: &str,
) -> Prepared {
    let page = files("index.html").expect("build.rs checked that vite wrote index.html");
    let page = String::from_utf8_lossy(&page.data).into_owned();
    let meta = format!(
        "<head>\n    <meta name=\"fieldnotes-map-tiles\" content=\"{}\" />",
        escape_attribute(&settings.map_tiles_url)
    );
    let index = page.replacen("<head>", &meta, 1).into_bytes();

    let mut security = HeaderMap::new();
    let csp = format!(
        "default-src 'self'; script-src 'self'{script_extra}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:{}; connect-src 'self'; font-src 'self'; object-src 'none'; \
         base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        tile_source(&settings.map_tiles_url)
            .map(|source| format!(" {source}"))
            .unwrap_or_default()
    );
    security.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).expect("the policy is ASCII"),
    );
    security.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    security.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Prepared {
        index,
        security,
        files,
    }
}

/// The CSP source of the tile server: its origin, with `{s}` subdomains as `*`.
fn tile_source(url: &str) -> Option<String> {
    if url.is_empty() {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?.replace("{s}", "*");
    let valid = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*'));
    valid.then(|| format!("{scheme}://{host}"))
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn index(State(prepared): State<Arc<Prepared>>) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // A new release's page names new asset files: always revalidate it.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        prepared.index.clone(),
    )
        .into_response();
    response.headers_mut().extend(prepared.security.clone());
    response
}

async fn coordinators_asset(
    State(prepared): State<Arc<Prepared>>,
    Path(path): Path<String>,
) -> Response {
    // Only the hashed files: the page itself is `/`.
    serve_file(&prepared, &format!("assets/{path}"), "/")
}

async fn field_file(State(prepared): State<Arc<Prepared>>, Path(path): Path<String>) -> Response {
    if path == "index.html" {
        return index(State(prepared)).await;
    }
    serve_file(&prepared, &path, "/field/")
}

fn serve_file(prepared: &Prepared, path: &str, app: &str) -> Response {
    let Some(file) = (prepared.files)(path) else {
        return ApiError::NotFound(format!("no web asset {app}{path}")).into_response();
    };
    let content_type = file.metadata.mimetype().to_string();
    let caching = if path.starts_with("assets/") {
        // Vite names them by content hash: a changed file has a new name.
        "public, max-age=31536000, immutable"
    } else {
        // The service worker, the manifest, the icons: same name, new
        // content in a new release.
        "no-cache"
    };
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, caching.to_string()),
        ],
        file.data.into_owned(),
    )
        .into_response();
    response.headers_mut().extend(prepared.security.clone());
    if path == SERVICE_WORKER {
        response.headers_mut().insert(
            "service-worker-allowed",
            HeaderValue::from_str(app).expect("the app's path is ASCII"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_sources() {
        assert_eq!(
            tile_source("https://tile.openstreetmap.org/{z}/{x}/{y}.png").as_deref(),
            Some("https://tile.openstreetmap.org")
        );
        assert_eq!(
            tile_source("https://{s}.tile.example.org:8443/{z}/{x}/{y}.png").as_deref(),
            Some("https://*.tile.example.org:8443")
        );
        assert_eq!(tile_source(""), None);
        assert_eq!(tile_source("javascript:alert(1)"), None);
        assert_eq!(tile_source("https://evil.org; script-src *"), None);
    }

    #[test]
    fn settings_are_escaped_into_the_page() {
        let prepared = prepare(
            &WebSettings {
                map_tiles_url: "https://t.example.org/{z}/{x}/{y}.png?a=1&b=\"2\"".into(),
            },
            FieldAssets::get,
            "",
        );
        let page = String::from_utf8(prepared.index).unwrap();
        assert!(page.contains(
            "<meta name=\"fieldnotes-map-tiles\" content=\"https://t.example.org/{z}/{x}/{y}.png?a=1&amp;b=&quot;2&quot;\" />"
        ));
    }
}
