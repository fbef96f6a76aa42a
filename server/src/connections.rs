//! Accepting and holding client connections, bounded: the server's own
//! accept loop (in place of `axum::serve`, which has no timeouts and no cap),
//! serving each connection with hyper's HTTP/1.1.
//!
//! What one client can hold is bounded here, below the routes:
//! - **a cap on open connections** ([`ConnectionLimits::max_connections`]),
//!   counted from accept until the socket is closed — WebSockets and
//!   server-sent event streams included — and kept below the process's file
//!   descriptor limit ([`raise_fd_limit`], [`connection_cap`]), so the
//!   database pool, the live-updates listener and photo files always find
//!   a descriptor;
//! - at the cap, a new connection **takes the place of the one idle
//!   longest** (accepted and not yet sent a request, or kept alive between
//!   requests): whoever holds idle connections cannot keep `/health` or a
//!   phone out. Only when every connection is busy (a request in progress,
//!   a stream, a WebSocket) is the newcomer refused, with a 503 naming the
//!   cap;
//! - **a header-read timeout**: a connection that has not sent its first
//!   request's headers within it is closed (a half-sent request counts as
//!   none);
//! - **an idle timeout**: a kept-alive connection with no new request
//!   within it after its last answer is closed.
//!
//! WebSockets are bounded by their own pings (`sync::connection`), live-event
//! streams per credential and per process (`live`).

use std::{
    collections::HashMap,
    convert::Infallible,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::{Request, Response, StatusCode},
    Router,
};
use hyper::body::Incoming;
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Notify,
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// File descriptors kept out of the connection cap: the PostgreSQL pool
/// (`--db-connections`, counted on top), the live-updates listener, the
/// embedded cluster's pipes, photo and log files, the listening socket. A
/// few dozen are in use at any time; this leaves room to spare.
pub const FD_RESERVE: u64 = 128;

/// Pause after a failed accept (out of descriptors, out of memory): retrying
/// at once would spin, and what failed needs a connection closed first.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Least time between two warnings of refused connections: under attack
/// they come by the thousand a second, and the log must not become one more
/// thing the attacker fills.
const REFUSAL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// When a client turned away at the cap may dial again: busy connections
/// are requests finishing and streams ending, seconds rather than minutes.
const REFUSED_RETRY_AFTER_SECS: u64 = 5;

/// How connections are bounded (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once, after [`connection_cap`].
    pub max_connections: usize,
    /// From accept to the first request's complete headers.
    pub header_read_timeout: Duration,
    /// From an answer to the next request's complete headers.
    pub idle_timeout: Duration,
}

/// Raises the process's soft limit on open files to its hard limit (which
/// an unprivileged process may do) and returns the soft limit in force:
/// distributions start services at 1024, the hard limit is often far above.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        // Unknown: the configured cap stands alone.
        return u64::MAX;
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            tracing::info!(from = soft, to = hard, "raised the open files limit");
            hard
        }
        Err(error) => {
            tracing::warn!(%error, soft, hard, "could not raise the open files limit");
            soft
        }
    }
}

/// The connection cap in force: `configured`, lowered so that connections
/// leave `db_connections` and [`FD_RESERVE`] descriptors of `fd_limit` free.
pub fn connection_cap(configured: u64, fd_limit: u64, db_connections: u32) -> usize {
    let room = fd_limit
        .saturating_sub(FD_RESERVE)
        .saturating_sub(u64::from(db_connections))
        .max(1);
    let cap = configured.min(room);
    if cap < configured {
        tracing::warn!(
            configured,
            cap,
            fd_limit,
            "--max-connections lowered to stay below the open files limit"
        );
    }
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// Serves `app` on `listener` until `stop` is cancelled; then asks every
/// connection to finish its request and waits for them (the caller bounds
/// the wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let open = OpenConnections::new(limits.max_connections);
    let tasks = TaskTracker::new();
    let service = TowerToHyperService::new(app);
    let mut refused_since_warning: u64 = 0;
    let mut warned_at: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept error");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Some(connection) = open.admit() else {
            refuse(stream, limits.max_connections);
            refused_since_warning += 1;
            if warned_at.is_none_or(|at| at.elapsed() >= REFUSAL_WARNING_EVERY) {
                tracing::warn!(
                    cap = limits.max_connections,
                    refused = refused_since_warning,
                    "connections refused: every connection is busy at the cap"
                );
                warned_at = Some(Instant::now());
                refused_since_warning = 0;
            }
            continue;
        };
        let service = service.clone();
        let stop = stop.clone();
        tasks.spawn(serve_connection(stream, connection, service, limits, stop));
    }
    tasks.close();
    tasks.wait().await;
}

/// Tells a client turned away at the cap why, if its socket takes the few
/// bytes at once, and closes it.
fn refuse(stream: TcpStream, cap: usize) {
    let body = serde_json::json!({ "error": {
        "code": "server_busy",
        "field": null,
        "message": format!(
            "the server holds {cap} connections, its limit, all busy; retry in a moment"
        ),
    }})
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {REFUSED_RETRY_AFTER_SECS}\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

async fn serve_connection(
    stream: TcpStream,
    connection: Arc<Connection>,
    service: TowerToHyperService<Router>,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let io = TokioIo::new(Counted {
        stream,
        _slot: Slot(connection.clone()),
    });
    let tracked = {
        let connection = connection.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let activity = Activity::start(connection.clone());
            let call = hyper::service::Service::call(&service, request);
            async move {
                let response: Response<Body> = call.await?;
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    activity.connection.upgraded();
                }
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(Tracked {
                        body,
                        _activity: activity,
                    })
                }))
            }
        })
    };
    // The builder's own header timeout is off: it also runs between
    // kept-alive requests, where the idle timeout applies instead.
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(None)
        .serve_connection(io, tracked)
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = connection.idle_deadline(limits);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = connection.evicted.cancelled() => {
                tracing::debug!("an idle connection made room for a new one");
                return;
            }
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = connection.changed.notified() => {}
            () = sleep_until(deadline) => {
                if connection.idle_deadline(limits).is_some_and(|at| at <= Instant::now()) {
                    tracing::debug!("closing a connection idle past its timeout");
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The connections open now, for the cap.
struct OpenConnections {
    cap: usize,
    next_id: AtomicU64,
    /// A std mutex: held for map updates only, never across an await.
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl OpenConnections {
    fn new(cap: usize) -> Arc<OpenConnections> {
        Arc::new(OpenConnections {
            cap,
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection in, at the cap in place of the one idle
    /// longest (which is told to close); None when every one is busy.
    fn admit(self: &Arc<Self>) -> Option<Arc<Connection>> {
        let mut open = self.open.lock().expect("connection registry poisoned");
        if open.len() >= self.cap {
            let idlest = open
                .values()
                .filter_map(|c| c.idle_since().map(|since| (since, c.id)))
                .min()
                .map(|(_, id)| id)?;
            if let Some(evicted) = open.remove(&idlest) {
                evicted.evicted.cancel();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            id,
            registry: Arc::downgrade(self),
            state: Mutex::new(State {
                idle_since: Some(Instant::now()),
                in_progress: 0,
                answered: false,
                upgraded: false,
            }),
            changed: Notify::new(),
            evicted: CancellationToken::new(),
        });
        open.insert(id, connection.clone());
        Some(connection)
    }
}

/// One open connection, as the cap and the timeouts see it.
struct Connection {
    id: u64,
    registry: std::sync::Weak<OpenConnections>,
    state: Mutex<State>,
    /// Woken when the connection becomes idle.
    changed: Notify,
    /// Cancelled when a new connection takes this idle one's place.
    evicted: CancellationToken,
}

struct State {
    /// Since when no request has been in progress; None while one is (or
    /// for good once upgraded to a WebSocket).
    idle_since: Option<Instant>,
    in_progress: usize,
    /// Whether a request has been answered: the idle timeout applies then,
    /// the header-read timeout before.
    answered: bool,
    upgraded: bool,
}

impl Connection {
    fn idle_since(&self) -> Option<Instant> {
        self.state
            .lock()
            .expect("connection state poisoned")
            .idle_since
    }

    /// When the connection is to be closed if it stays idle; None while busy.
    fn idle_deadline(&self, limits: ConnectionLimits) -> Option<Instant> {
        let state = self.state.lock().expect("connection state poisoned");
        let timeout = if state.answered {
            limits.idle_timeout
        } else {
            limits.header_read_timeout
        };
        state.idle_since.map(|since| since + timeout)
    }

    fn upgraded(&self) {
        let mut state = self.state.lock().expect("connection state poisoned");
        state.upgraded = true;
        state.idle_since = None;
    }
}

/// Removes its connection from the count when the socket is dropped —
/// after the connection's task when it was upgraded to a WebSocket, whose
/// task holds the socket then.
struct Slot(Arc<Connection>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(registry) = self.0.registry.upgrade() {
            let mut open = registry.open.lock().expect("connection registry poisoned");
            open.remove(&self.0.id);
        }
    }
}

/// A request in progress, from the call until its answer's body is sent
/// (or dropped: the client left).
struct Activity {
    connection: Arc<Connection>,
}

impl Activity {
    fn start(connection: Arc<Connection>) -> Activity {
        {
            let mut state = connection.state.lock().expect("connection state poisoned");
            state.in_progress += 1;
            state.idle_since = None;
        }
        Activity { connection }
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        let mut state = self
            .connection
            .state
            .lock()
            .expect("connection state poisoned");
        state.in_progress -= 1;
        state.answered = true;
        if state.in_progress == 0 && !state.upgraded {
            state.idle_since = Some(Instant::now());
            drop(state);
            self.connection.changed.notify_one();
        }
    }
}

/// An answer's body, holding its request's [`Activity`] until sent.
struct Tracked {
    body: Body,
    _activity: Activity,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The accepted socket, holding the connection's [`Slot`] in the count.
struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_idlest_connection_makes_room_and_busy_ones_never_do() {
        let open = OpenConnections::new(2);
        let first = open.admit().expect("room");
        let second = open.admit().expect("room");
        // Both idle since accepted: the one idle longest makes room.
        let third = open.admit().expect("the idlest makes room");
        assert!(first.evicted.is_cancelled());
        assert!(!second.evicted.is_cancelled());
        // Every connection busy: a newcomer is refused, nobody evicted.
        let answering = Activity::start(second.clone());
        let upgrading = Activity::start(third.clone());
        assert!(open.admit().is_none());
        // A WebSocket stays busy once its upgrade is answered.
        third.upgraded();
        drop(upgrading);
        assert!(open.admit().is_none());
        // Answered, a kept-alive connection is idle again, and makes room.
        drop(answering);
        let fourth = open.admit().expect("the answered one makes room");
        assert!(second.evicted.is_cancelled());
        assert!(!third.evicted.is_cancelled());
        // A closed socket leaves the count: room without evicting anyone.
        drop(Slot(third.clone()));
        assert!(open.admit().is_some());
        assert!(!fourth.evicted.is_cancelled());
    }

    #[test]
    fn the_cap_leaves_the_pool_and_a_reserve_of_descriptors_free() {
        assert_eq!(connection_cap(10_000, 1 << 20, 16), 10_000);
        assert_eq!(connection_cap(10_000, 1024, 16), 1024 - 128 - 16);
        assert_eq!(connection_cap(10_000, 100, 16), 1);
    }
}
