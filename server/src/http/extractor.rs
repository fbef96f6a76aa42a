//! Extractors that do a handler's checking once: [`AuthUser`] authenticates
//! (so a handler's signature says whether it needs a caller), [`JsonBody`]
//! reads a JSON body and names the field at fault when it cannot; [`query`]
//! does the same for a query string, [`is_sha256_hex`] checks a hash a
//! caller names.

use axum::{
    body::Bytes,
    extract::{
        rejection::{BytesRejection, FailedToBufferBody, QueryRejection},
        FromRequest, FromRequestParts, Path, Query, Request,
    },
    http::{
        header::{AUTHORIZATION, CONTENT_LENGTH, COOKIE, HOST, ORIGIN},
        request::Parts,
    },
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{ApiError, AppState, MAX_JSON_BODY_BYTES};
use crate::auth::{self, Principal, Role};

/// A handler's query parameters, or a 400 on `query` saying what is wrong
/// with them (a handler takes `Result<Query<T>, QueryRejection>` and passes
/// it here, so the refusal is an [`ApiError`] like every other).
pub fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| ApiError::bad_request("query", rejection.body_text()))
}

/// Whether `text` is a SHA-256 in hex (64 digits, either case).
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The authenticated caller, from `Authorization: Bearer <token>`; refuses the
/// request with 401 when the token is missing, unknown, expired or revoked.
pub struct AuthUser(pub Principal);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        principal_from_request_parts(parts, state, false)
            .await
            .map(AuthUser)
    }
}

/// Authenticates a request from its bearer token, or — when
/// `websocket`, on which browsers cannot set headers — from the
/// [`SYNC_COOKIE`] of a same-origin page, or `?token=`. The header wins, then
/// the cookie. Request spans record the path only, so a query token is not
/// logged by this server (a reverse proxy's access log may, see
/// docs/SECURITY.md); the field app sends the cookie, so that no URL holds
/// its credential (a browser prints a WebSocket's URL in its console when
/// it cannot connect).
pub async fn principal_from_request_parts(
    parts: &Parts,
    state: &AppState,
    websocket: bool,
) -> Result<Principal, ApiError> {
    let token = bearer_token(parts).or_else(|| {
        websocket
            .then(|| same_origin_cookie(parts, state).or_else(|| query_token(parts)))
            .flatten()
    });
    let Some(token) = token else {
        return Err(ApiError::Unauthorized);
    };
    auth::authenticate(&state.pool, &token)
        .await?
        .ok_or(ApiError::Unauthorized)
}

fn bearer_token(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The cookie the field app sets for `/sync` (path `/sync`, `SameSite=Strict`)
/// holding its device credential.
pub const SYNC_COOKIE: &str = "fieldnotes_sync";

/// The [`SYNC_COOKIE`] of a request from a page of this server's own origin
/// (its `Origin` names the host the request was sent to, as `Host`, a
/// proxy's `X-Forwarded-Host` or `--public-url` says): another site's page
/// cannot open a WebSocket on the phone's credential, whatever the browser
/// does with `SameSite`.
fn same_origin_cookie(parts: &Parts, state: &AppState) -> Option<String> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let host_of = |url: &url::Url| -> Option<String> {
        Some(match url.port() {
            Some(port) => format!("{}:{port}", url.host_str()?),
            None => url.host_str()?.to_string(),
        })
    };
    let origin = host_of(&url::Url::parse(header(ORIGIN.as_str())?).ok()?)?;
    let public = state
        .public_url
        .as_deref()
        .and_then(|url| url::Url::parse(url).ok())
        .and_then(|url| host_of(&url));
    let served = [
        header(HOST.as_str()).map(str::to_string),
        header("x-forwarded-host").map(str::to_string),
        public,
    ];
    if !served
        .iter()
        .flatten()
        .any(|host| host.eq_ignore_ascii_case(&origin))
    {
        return None;
    }
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SYNC_COOKIE)
        .map(|(_, token)| token.to_string())
}

fn query_token(parts: &Parts) -> Option<String> {
    url::form_urlencoded::parse(parts.uri.query()?.as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, token)| token.into_owned())
}

impl AuthUser {
    /// Passes admins, and holders of one of `roles` in `territory`; `action`
    /// completes "only … may" in the refusal.
    pub fn require_role(
        &self,
        territory: Uuid,
        roles: &[Role],
        action: &str,
    ) -> Result<(), ApiError> {
        if self.0.is_admin || roles.iter().any(|&role| self.0.has_role(territory, role)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "only a {} of territory {territory}, or an admin, may {action}",
            names.join(" or ")
        )))
    }

    /// Passes admins and anyone holding a role in `territory`.
    pub fn require_member(&self, territory: Uuid) -> Result<(), ApiError> {
        if self.0.is_admin || self.0.is_member(territory) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "you hold no role in territory {territory}"
        )))
    }

    pub fn require_admin(&self, action: &str) -> Result<(), ApiError> {
        if self.0.is_admin {
            return Ok(());
        }
        Err(ApiError::forbidden(format!("only an admin may {action}")))
    }

    /// Territories whose inventory the caller may read: None means all (admin).
    pub fn readable_territories(&self) -> Option<Vec<Uuid>> {
        (!self.0.is_admin).then(|| self.0.territories_with(&Role::ALL))
    }
}

/// A JSON request body of type `T`. Unlike axum's `Json`, a refusal names the
/// field (`{"error": {"field": "role", …}}`), as every other error does. A body
/// above [`MAX_JSON_BODY_BYTES`] is refused with 413: before a byte of it is
/// read when its `Content-Length` says so, else once the limit is passed.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if let Some(length) = declared.filter(|&n| n > MAX_JSON_BODY_BYTES as u64) {
            return Err(too_large(
                "Content-Length",
                &format!("the body is {length} bytes"),
            ));
        }
        // The router's `DefaultBodyLimit` is the same limit, so a body without
        // a (truthful) Content-Length stops there.
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection {
                    BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                        too_large("body", "the body is longer")
                    }
                    rejection => ApiError::bad_request("body", rejection.body_text()),
                })?;
        refuse_forbidden_text(&bytes)?;
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(deserializer)
            .map(JsonBody)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = error.inner().to_string();
                // A missing field is reported at its parent; name the field itself.
                let missing = message
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next());
                let field = match (missing, path.as_str()) {
                    (Some(name), ".") => name.to_string(),
                    (Some(name), parent) => format!("{parent}.{name}"),
                    (None, ".") => "body".to_string(),
                    (None, _) => path,
                };
                ApiError::bad_request(&field, message)
            })
    }
}

/// Refuses a JSON body holding, in a key or a string, a character stored text
/// may not hold (`schemas::text`: U+0000 and other controls), naming the
/// field. JSON can carry them only as `\u` escapes, so a body without such an
/// escape is not parsed twice.
fn refuse_forbidden_text(body: &[u8]) -> Result<(), ApiError> {
    let escapes_one = body.windows(6).any(|escape| {
        escape.starts_with(b"\\u")
            && std::str::from_utf8(&escape[2..])
                .ok()
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .and_then(char::from_u32)
                .is_some_and(schemas::text::is_forbidden)
    });
    if !escapes_one {
        return Ok(());
    }
    // A body that does not parse is refused by the typed reading, with its reason.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(());
    };
    match schemas::text::forbidden_in_json(&value).into_iter().next() {
        Some(found) => Err(ApiError::bad_request(
            if found.field.is_empty() {
                "body"
            } else {
                &found.field
            },
            schemas::text::forbidden_reason(found.character),
        )),
        None => Ok(()),
    }
}

/// Refuses a query string holding, in a parameter's name or value, a
/// character stored text may not hold, naming the parameter: handlers pass
/// query values on to PostgreSQL, which cannot take U+0000.
pub async fn refuse_forbidden_query(
    request: Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    if let Some(query) = request.uri().query() {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let found = schemas::text::forbidden_char(&name)
                .or_else(|| schemas::text::forbidden_char(&value));
            if let Some(character) = found {
                return Err(ApiError::bad_request(
                    &schemas::text::printable(&name),
                    schemas::text::forbidden_reason(character),
                ));
            }
        }
    }
    Ok(next.run(request).await)
}

/// `what` begins the message: "the body is … bytes".
fn too_large(field: &str, what: &str) -> ApiError {
    ApiError::TooLarge {
        field: field.to_string(),
        message: format!(
            "{what}; this server accepts JSON bodies of at most {MAX_JSON_BODY_BYTES} bytes"
        ),
    }
}

/// The `{id}` of a path, refused with a 400 naming `id` when it is not a UUID.
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<Uuid>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| IdPath(id))
            .map_err(|rejection| ApiError::bad_request("id", rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, authorization: Option<&str>) -> Parts {
        let mut request = axum::http::Request::builder().uri(uri);
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_bearer_scheme_is_read_whatever_its_case() {
        for header in ["Bearer fns_abc", "bearer fns_abc", "BEARER  fns_abc "] {
            assert_eq!(
                bearer_token(&parts("/api/me", Some(header))).as_deref(),
                Some("fns_abc")
            );
        }
        assert_eq!(
            bearer_token(&parts("/api/me", Some("Basic Zm9vOmJhcg=="))),
            None
        );
        assert_eq!(bearer_token(&parts("/api/me", None)), None);
    }

    #[test]
    fn a_body_escaping_a_nul_character_is_refused_naming_the_field() {
        let refused = refuse_forbidden_text(br#"{"name": "ok", "reason": "a\u0000b"}"#);
        match refused {
            Err(ApiError::BadRequest { field, message }) => {
                assert_eq!(field, "reason");
                assert!(message.contains("U+0000"), "{message}");
            }
            other => panic!("expected a 400, got {other:?}"),
        }
        // An escaped backslash followed by "u0000" is text, not a NUL.
        assert!(refuse_forbidden_text(br#"{"reason": "C:\\u0000"}"#).is_ok());
        assert!(refuse_forbidden_text(br#"{"reason": "line\nbreak \u00e9"}"#).is_ok());
    }

    #[test]
    fn a_query_token_is_read_decoded() {
        let request = parts("/sync?peer=x&token=fnd_a%2Db", None);
        assert_eq!(query_token(&request).as_deref(), Some("fnd_a-b"));
        assert_eq!(query_token(&parts("/sync", None)), None);
    }
}
