//! The coordinators' and régies' web app at `/`: the files `build.rs` built
//! from `server/web/` (Vite, npm packages pinned by its lockfile), embedded in
//! the binary so a deployment is one file and nothing is fetched from a CDN.
//!
//! These are public, static files: the login page has to load before anyone
//! is logged in. Everything the app shows comes from the API routes, each
//! authenticated and checked. Not in [`super::route_list`] nor the OpenAPI
//! document, which describe the API.
//!
//! The only per-installation setting the page needs, the map's tile URL
//! (`--map-tiles-url`), is written into `index.html` as a `<meta>` when the
//! server starts; the Content-Security-Policy allows images from that origin
//! and nothing else from outside.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use super::ApiError;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// What the page is told about this installation.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// Raster tiles for the maps (`{z}/{x}/{y}`, optionally `{s}`); empty for
    /// none (the maps then show points, outlines and sites only).
    pub map_tiles_url: String,
}

/// `index.html` with this installation's settings, and the headers every
/// page answer carries.
struct Prepared {
    index: Vec<u8>,
    security: HeaderMap,
}

pub fn router(settings: &WebSettings) -> Router {
    let prepared = Arc::new(prepare(settings));
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{*path}", get(asset))
        .with_state(prepared)
}

fn prepare(settings: &WebSettings) -> Prepared {
    let page = WebAssets::get("index.html").expect("build.rs checked that vite wrote index.html");
    let page = String::from_utf8_lossy(&page.data).into_owned();
    let meta = format!(
        "<head>\n    <meta name=\"fieldnotes-map-tiles\" content=\"{}\" />",
        escape_attribute(&settings.map_tiles_url)
    );
    let index = page.replacen("<head>", &meta, 1).into_bytes();

    let mut security = HeaderMap::new();
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
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
    Prepared { index, security }
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

async fn asset(State(prepared): State<Arc<Prepared>>, Path(path): Path<String>) -> Response {
    let Some(file) = WebAssets::get(&format!("assets/{path}")) else {
        return ApiError::NotFound(format!("no web asset /assets/{path}")).into_response();
    };
    let content_type = file.metadata.mimetype().to_string();
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            // Vite names them by content hash: a changed file has a new name.
            (
                header::CACHE_CONTROL,
                "public, max-age=31536000, immutable".to_string(),
            ),
        ],
        file.data.into_owned(),
    )
        .into_response();
    response.headers_mut().extend(prepared.security.clone());
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
        let prepared = prepare(&WebSettings {
            map_tiles_url: "https://t.example.org/{z}/{x}/{y}.png?a=1&b=\"2\"".into(),
        });
        let page = String::from_utf8(prepared.index).unwrap();
        assert!(page.contains(
            "<meta name=\"fieldnotes-map-tiles\" content=\"https://t.example.org/{z}/{x}/{y}.png?a=1&amp;b=&quot;2&quot;\" />"
        ));
    }
}
