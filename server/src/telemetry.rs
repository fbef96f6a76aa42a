//! Prometheus metrics, served on a listener of their own (`--metrics-listen`,
//! off by default) so that nothing about the service's load is public: the
//! city's Prometheus reaches it on an internal address, and the public port
//! has no `/metrics`. Events are recorded where they happen through the
//! `metrics` facade (messages, commits, refusals, HTTP requests, photo
//! bytes); what is a state rather than an event (open connections, live
//! documents, the database pool, the audit backlog) is sampled every
//! [`SAMPLE_EVERY`]. The names are below, each with its help text.

use std::{sync::OnceLock, time::Duration};

use axum::{
    extract::{MatchedPath, Request},
    http::header::CONTENT_TYPE,
    middleware::Next,
    response::Response,
    routing::get,
    Router,
};
use metrics::{counter, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::sync::SyncCore;

pub const SYNC_CONNECTIONS: &str = "fieldnotes_sync_connections";
pub const LIVE_DOCUMENTS: &str = "fieldnotes_live_documents";
pub const SYNC_MESSAGES_RECEIVED: &str = "fieldnotes_sync_messages_received_total";
pub const SYNC_MESSAGES_SENT: &str = "fieldnotes_sync_messages_sent_total";
pub const SYNC_REFUSALS: &str = "fieldnotes_sync_refusals_total";
pub const COMMITS: &str = "fieldnotes_commits_total";
pub const COMMIT_SECONDS: &str = "fieldnotes_commit_seconds";
pub const HTTP_REQUESTS: &str = "fieldnotes_http_requests_total";
pub const HTTP_REQUEST_SECONDS: &str = "fieldnotes_http_request_seconds";
pub const DB_POOL_CONNECTIONS: &str = "fieldnotes_db_pool_connections";
pub const DB_POOL_MAX_CONNECTIONS: &str = "fieldnotes_db_pool_max_connections";
pub const DB_POOL_ACQUIRE_SECONDS: &str = "fieldnotes_db_pool_acquire_seconds";
pub const AUDIT_BACKLOG: &str = "fieldnotes_audit_backlog_commits";
pub const PHOTO_UPLOAD_BYTES: &str = "fieldnotes_photo_upload_bytes_total";

/// How often the states are sampled: finer than any scrape interval worth
/// having, and a few cheap queries.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Latency buckets, in seconds, for every `_seconds` histogram: a commit
/// takes milliseconds, an export seconds.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use, with every series
/// described (and the counters at zero, so a scrape finds them before the
/// first event).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = || {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .expect("the buckets are not empty")
        };
        let handle = match builder().install_recorder() {
            Ok(handle) => handle,
            // Another recorder holds the process (an embedding program's):
            // this one then renders what it is given, nothing.
            Err(error) => {
                tracing::warn!(%error, "metrics: another recorder is installed");
                builder().build_recorder().handle()
            }
        };
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(SYNC_CONNECTIONS, "Open /sync WebSocket connections.");
    describe_gauge!(
        LIVE_DOCUMENTS,
        "Documents held in memory (by a connection, or idle for less than --document-idle-secs)."
    );
    describe_counter!(SYNC_MESSAGES_RECEIVED, "Sync messages received from peers.");
    describe_counter!(SYNC_MESSAGES_SENT, "Sync messages sent to peers.");
    describe_counter!(
        SYNC_REFUSALS,
        "Sync messages or connections refused, by reason (the judge's refusal or the limit reached)."
    );
    describe_counter!(COMMITS, "Documents whose changes were stored.");
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "Time to store one group commit (one transaction for the changes of several documents), retries included."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route, method and status."
    );
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "Time to answer an HTTP request until its headers, by route and method."
    );
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "PostgreSQL connections of the process's pool, by state (idle, in_use)."
    );
    describe_gauge!(
        DB_POOL_MAX_CONNECTIONS,
        "The pool's size (--db-connections)."
    );
    describe_histogram!(
        DB_POOL_ACQUIRE_SECONDS,
        Unit::Seconds,
        "Time the sampler waited for a pool connection: a pool always busy makes it grow."
    );
    describe_gauge!(
        AUDIT_BACKLOG,
        "Commits the audit trail has not finished with, by stage (to_write_out, set_aside)."
    );
    describe_counter!(
        PHOTO_UPLOAD_BYTES,
        Unit::Bytes,
        "Bytes of photo uploads received."
    );
    for name in [
        SYNC_MESSAGES_RECEIVED,
        SYNC_MESSAGES_SENT,
        COMMITS,
        PHOTO_UPLOAD_BYTES,
    ] {
        counter!(name).absolute(0);
    }
}

/// Records one refused sync message or connection; `reason` is one of a
/// fixed set of codes (never free text: each is a series).
pub fn sync_refused(reason: &'static str) {
    counter!(SYNC_REFUSALS, "reason" => reason).increment(1);
}

/// Middleware for the routed requests: counts each by its route's pattern
/// (`/api/territories/{id}`, never the id: one series per route) and times it.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let method = request.method().as_str().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    histogram!(HTTP_REQUEST_SECONDS, "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status).increment(1);
    response
}

/// Samples the states every [`SAMPLE_EVERY`] until `stop`.
pub async fn sample(pool: PgPool, core: SyncCore, stop: CancellationToken) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        gauge!(SYNC_CONNECTIONS).set(core.access().open_connections() as f64);
        gauge!(LIVE_DOCUMENTS).set(core.live_documents() as f64);
        let idle = pool.num_idle() as f64;
        gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(idle);
        gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(pool.size()) - idle);
        gauge!(DB_POOL_MAX_CONNECTIONS).set(f64::from(pool.options().get_max_connections()));
        let started = std::time::Instant::now();
        let backlog: Result<(i64, i64), sqlx::Error> = async {
            let mut conn = pool.acquire().await?;
            histogram!(DB_POOL_ACQUIRE_SECONDS).record(started.elapsed().as_secs_f64());
            sqlx::query_as(
                "SELECT (SELECT count(*) FROM audit_commits_pending), \
                        (SELECT count(*) FROM audit_commits_set_aside)",
            )
            .fetch_one(&mut *conn)
            .await
        }
        .await;
        match backlog {
            Ok((to_write_out, set_aside)) => {
                gauge!(AUDIT_BACKLOG, "stage" => "to_write_out").set(to_write_out as f64);
                gauge!(AUDIT_BACKLOG, "stage" => "set_aside").set(set_aside as f64);
            }
            Err(error) => tracing::debug!(%error, "sampling the audit backlog"),
        }
        handle().run_upkeep();
    }
}

/// Serves `GET /metrics` (the Prometheus text format) on `listener`, for
/// as long as the process runs.
pub async fn serve(listener: TcpListener) {
    let app = Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                handle().render(),
            )
        }),
    );
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "serving metrics");
    }
}
