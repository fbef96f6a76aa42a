//! `GET /api/territories/{id}/events`: the live updates of a territory's
//! review, as server-sent events (`text/event-stream`), for the
//! coordinators' web app; `crate::live` hears the changes.
//!
//! The stream sends `event: ready` once it is subscribed — every change
//! committed after it reaches the stream — then `event: changed` with
//! `{"kind", "territoryId"}` for each change of the territory (`kind`
//! `sighting`, `degradation_report`, `timesheet_entry`, `invalid_record`, or
//! `*` when changes may have been missed: refetch everything), and a comment
//! every 15 s so that proxies keep it open. It authorises like the review's
//! reads (coordinators and régie auditors of the territory, admins) with the
//! bearer header, so the web app reads it with `fetch()`; and it ends when
//! its credential does: at a session's expiry, at once when the session is
//! logged out or the device revoked, the account disabled or one of its
//! roles removed (any process; `auth::admin::close_account_connections`),
//! and at the next check, every minute, for whatever was missed. The client
//! then reconnects, and is refused if it may no longer follow the territory.
//! A credential holds at most `live::MAX_STREAMS_PER_CREDENTIAL` streams,
//! the process serves at most `--max-event-streams`: beyond, 429.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Path, State},
    http::{header::HeaderName, HeaderValue, Method},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures::Stream;
use sqlx::PgPool;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    error::UNAUTHENTICATED, extractor::AuthUser, territories::require_territory, ApiError,
    AppState, Routes,
};
use crate::{
    auth::{self, Principal, Role},
    live::StreamPermit,
    notifications::{ChangeKind, LiveEvent},
};

/// Who may follow a territory: who may read its review.
const FOLLOWERS: &[Role] = &[Role::Coordinator, Role::RegieAuditor];
const ACTION: &str = "follow the review's live updates";
/// How often the credential and the role are checked again.
const RECHECK: Duration = Duration::from_secs(60);
/// When a refused client may try again: a page's stream ends when the page
/// is closed, which frees its place.
const STREAM_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How often a comment keeps an idle stream open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn routes() -> Routes {
    Routes::new().route(Method::GET, "/api/territories/{id}/events", events)
}

/// `GET /api/territories/{id}/events`: the territory's changes, live.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/events",
    operation_id = "reviewEvents",
    tag = "events",
    params(("id" = Uuid, Path, description = "The territory")),
    responses(
        (status = 200, description = "A `text/event-stream` that stays open: `event: ready` \
            (data `{\"territoryId\"}`) once subscribed, then `event: changed` (data \
            `{\"kind\", \"territoryId\"}`) whenever records of the territory change — `kind` \
            `*` when changes may have been missed (refetch everything) — and a comment every \
            15 s. It ends when the credential does: a session's expiry or logout, a device's \
            revocation, or the role lost (checked every minute); reconnect then.",
            content_type = "text/event-stream", body = String),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators and régie auditors follow it", body = ApiError),
        (status = 404, description = "No such territory (admins)", body = ApiError),
        (status = 429, description = "The credential holds 8 streams open already, or the server \
            serves as many as it may (`--max-event-streams`); the message names the limit",
            body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    ),
    security(("bearer" = [])),
)]
async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
) -> Result<Response, ApiError> {
    user.require_role(territory, FOLLOWERS, ACTION)?;
    // Members' territories exist; an admin may name any.
    if user.0.is_admin {
        require_territory(&state.pool, territory).await?;
    }
    let permit = state
        .live
        .open_stream(&user.0.credential)
        .map_err(|limit| ApiError::TooManyRequests {
            message: limit.to_string(),
            retry_after: STREAM_RETRY_AFTER,
        })?;
    // Subscribed first: whatever commits from now on reaches this stream.
    let receiver = state.live.subscribe();
    // The session's expiry, which the principal does not carry.
    let checked = auth::reauthenticate(&state.pool, &user.0.credential)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    tracing::info!(%territory, account = %user.0.account_id, "live updates: stream opened");
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let follow = Follow {
        pool: state.pool.clone(),
        principal: user.0,
        territory,
        receiver,
        expires: checked.expires_at.map(deadline),
        recheck,
        stop: state.live.stopping(),
        ready_sent: false,
        ended: None,
        _permit: permit,
    };
    let sse = Sse::new(follow.into_stream()).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    // nginx would otherwise buffer the stream.
    let headers = [(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    )];
    Ok((headers, sse).into_response())
}

/// The tokio instant of a wall-clock time (now if it is past).
fn deadline(at: chrono::DateTime<chrono::Utc>) -> tokio::time::Instant {
    let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::Instant::now() + left
}

/// One open stream.
struct Follow {
    pool: PgPool,
    principal: Principal,
    territory: Uuid,
    receiver: broadcast::Receiver<LiveEvent>,
    /// When the session expires; None for a device credential.
    expires: Option<tokio::time::Instant>,
    recheck: tokio::time::Interval,
    stop: CancellationToken,
    ready_sent: bool,
    /// Why the server ended it; None while open, or if the client left.
    ended: Option<&'static str>,
    /// Counts the stream against the limits while it is open.
    _permit: StreamPermit,
}

impl Follow {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
        futures::stream::unfold(self, |mut follow| async move {
            let event = follow.next().await?;
            Some((Ok(event), follow))
        })
    }

    /// The next event to send; None ends the stream (the reason in `ended`).
    async fn next(&mut self) -> Option<Event> {
        if !self.ready_sent {
            self.ready_sent = true;
            return Some(
                Event::default()
                    .event("ready")
                    .data(serde_json::json!({ "territoryId": self.territory }).to_string()),
            );
        }
        loop {
            let expires = self.expires;
            let expiry = async move {
                match expires {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.stop.cancelled() => return self.end("the server is stopping"),
                () = expiry => return self.end("the session expired"),
                _ = self.recheck.tick() => {
                    if let Err(reason) = self.check_again().await {
                        return self.end(reason);
                    }
                }
                received = self.receiver.recv() => match received {
                    Ok(LiveEvent::Changed { territory, kind }) if territory == self.territory => {
                        return Some(self.changed(kind));
                    }
                    Ok(LiveEvent::Changed { .. }) => {}
                    Ok(LiveEvent::Missed) => return Some(self.changed(ChangeKind::Everything)),
                    Ok(LiveEvent::CredentialEnded(credential)) => {
                        if credential == self.principal.credential {
                            return self.end(
                                "its credential was logged out or revoked, or its account disabled or its roles changed",
                            );
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(territory = %self.territory, skipped, "live updates: a stream lagged");
                        return Some(self.changed(ChangeKind::Everything));
                    }
                    Err(RecvError::Closed) => return self.end("the server is stopping"),
                },
            }
        }
    }

    fn changed(&self, kind: ChangeKind) -> Event {
        Event::default().event("changed").data(
            serde_json::json!({ "kind": kind.as_str(), "territoryId": self.territory }).to_string(),
        )
    }

    /// Checks the credential and the role again; Err says why the stream ends.
    async fn check_again(&mut self) -> Result<(), &'static str> {
        let checked = match auth::reauthenticate(&self.pool, &self.principal.credential).await {
            Ok(Some(checked)) => checked,
            Ok(None) => return Err("its credential is no longer valid"),
            Err(error) => {
                tracing::warn!(%error, territory = %self.territory, "live updates: rechecking a credential");
                return Err("its credential could not be checked again");
            }
        };
        let user = AuthUser(checked.principal);
        if user
            .require_role(self.territory, FOLLOWERS, ACTION)
            .is_err()
        {
            return Err("its account may no longer follow the territory");
        }
        self.principal = user.0;
        self.expires = checked.expires_at.map(deadline);
        Ok(())
    }

    fn end(&mut self, reason: &'static str) -> Option<Event> {
        self.ended = Some(reason);
        None
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let reason = self.ended.unwrap_or("the client left");
        tracing::info!(territory = %self.territory, account = %self.principal.account_id, reason, "live updates: stream closed");
    }
}
