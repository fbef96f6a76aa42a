//! `/sync`: the automerge-repo WebSocket, authenticated before the upgrade.

use axum::{
    extract::{ws::rejection::WebSocketUpgradeRejection, State, WebSocketUpgrade},
    http::{request::Parts, Method},
    response::{IntoResponse, Response},
};

use super::{
    error::UNAUTHENTICATED, extractor::principal_from_request_parts, ApiError, AppState, Routes,
};

/// Largest WebSocket message read at all: above the protocol's own limit
/// (`sync::protocol::Limits`), so that a message between the two is refused
/// with an `error` naming that limit rather than a bare close.
const MAX_FRAME_BYTES: usize = sync::protocol::Limits::DEFAULT_MAX_MESSAGE_BYTES + 1024 * 1024;

pub fn routes() -> Routes {
    Routes::new().route(Method::GET, "/sync", upgrade)
}

/// automerge-repo sync over WebSocket
///
/// A WebSocket upgrade (`Connection: Upgrade`, `Upgrade: websocket`), then
/// the automerge-repo protocol (CBOR messages, wire-compatible with
/// `@automerge/automerge-repo` 2.x). The credential comes in the
/// `Authorization` header or, for browsers, in the `fieldnotes_sync` cookie
/// of a page of the server's own origin (what the field app sends: no URL
/// holds the credential) or as `?token=`. At most 8 open
/// connections per credential; every change is judged before it is applied,
/// and a refused one gets an `error` message naming the field and the limit.
#[utoipa::path(
    get,
    path = "/sync",
    operation_id = "sync",
    params(
        ("token" = Option<String>, Query, description = "The credential, for clients that cannot set headers on a WebSocket (the header, then the `fieldnotes_sync` cookie of a same-origin page, win over it)"),
    ),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request (`field`: `upgrade`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 429, description = "The credential has 8 connections open already", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds to wait before dialling again"))),
    ),
    security(("bearer" = []), ("token" = [])),
)]
async fn upgrade(
    State(state): State<AppState>,
    parts: Parts,
    // Checked after authentication, so an anonymous caller learns nothing.
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Browsers cannot set headers on a WebSocket, so the credential may also
    // come in the field app's cookie or as `?token=`; it is never logged
    // (request spans record the path only).
    let principal = principal_from_request_parts(&parts, &state, true).await?;
    let ws = ws.map_err(|rejection| ApiError::bad_request("upgrade", rejection.body_text()))?;
    let connection_id = uuid::Uuid::new_v4();
    // Taken before the upgrade, so parallel upgrades cannot pass the limit;
    // given back if the upgrade fails (the registration is dropped with it).
    let registration = state
        .sync
        .access()
        .register(&principal, connection_id)
        .map_err(|limit| ApiError::TooManyRequests {
            message: limit.to_string(),
            retry_after: std::time::Duration::from_secs(30),
        })?;
    tracing::info!(%connection_id, account = %principal.account_id, "sync connection authenticated");
    Ok(ws
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            state.sync.accept(socket, principal, registration);
        })
        .into_response())
}
