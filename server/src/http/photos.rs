//! The photo routes: the HTTP side of `crate::photos` (upload state,
//! verification, thumbnails), which phones upload to and the review UI reads.
//!
//! The upload protocol, for connections that drop in basements:
//!
//! - `HEAD /api/photos/{sha256}`: 200 when the server holds the photo (nothing
//!   to send); otherwise 404 with `Upload-Offset: n`, the bytes of the
//!   caller's own partial upload already received (0 for none).
//! - `PUT /api/photos/{sha256}` with `Content-Range: bytes start-end/total`
//!   (end inclusive) and those bytes as the body appends them when `start` is
//!   the server's offset: 204 with the new `Upload-Offset`, or, for the last
//!   chunk, 201 with the stored photo's description. Another `start` gets 409
//!   with the server's `Upload-Offset`, to resume from. Without
//!   `Content-Range` the body is the whole photo. A photo already held gets
//!   200 at once, its body unread: nothing is stored twice.
//! - When the last byte arrives the server checks that the bytes hash to the
//!   address (else 422, and the partial upload is discarded), that they are a
//!   JPEG or PNG it can decode (else 415 or 422), makes the thumbnail itself,
//!   and stores both in one transaction.
//! - A `total` above `--max-photo-bytes` (default 20 MiB) is refused with 413
//!   naming `Content-Range` (or `Content-Length`), before the body is read;
//!   the body is read with a limit of the length the range announces, so no
//!   client streams more than it declared.
//!
//! Who: uploading takes a volunteer or coordinator of the territory the photo
//! is filed under (`?territory=`, or the uploader's only such territory), or
//! an admin; auditors write nothing. Reading a photo or its thumbnail takes a
//! role in its territory, or admin.

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use uuid::Uuid;

use super::{error::UNAUTHENTICATED, extractor::AuthUser, ApiError, AppState, Routes};
use crate::{
    auth::{Credential, Role},
    photos::{
        stored::{self, Image, Photo},
        upload::{self, Appended, Chunk, Upload},
        PhotoError,
    },
};

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::HEAD, "/api/photos/{sha256}", upload_status)
        .route(Method::PUT, "/api/photos/{sha256}", upload)
        .route(Method::GET, "/api/photos/{sha256}", photo)
        .route(Method::GET, "/api/photos/{sha256}/thumbnail", thumbnail)
}

/// Who may file a photo under a territory (admins too).
const UPLOADERS: &[Role] = &[Role::Volunteer, Role::Coordinator];
const UPLOAD_OFFSET: &str = "upload-offset";
/// Photos never change under their address: browsers may keep them, but only
/// for the person who was allowed to see them.
const CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// The address in the path: 64 lowercase hex digits.
fn address(sha256: &str) -> Result<&str, ApiError> {
    if sha256.len() == 64
        && sha256
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    {
        Ok(sha256)
    } else {
        Err(ApiError::bad_request(
            "sha256",
            "must be the photo's SHA-256 as 64 lowercase hexadecimal digits",
        ))
    }
}

/// The territory a photo is filed under: `?territory=` if given, else the
/// caller's only territory where they volunteer or coordinate.
fn upload_territory(user: &AuthUser, query: Option<&str>) -> Result<Uuid, ApiError> {
    let requested = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "territory")
        .map(|(_, value)| {
            value
                .parse::<Uuid>()
                .map_err(|_| ApiError::bad_request("territory", "must be a territory id (UUID)"))
        })
        .transpose()?;
    if let Some(territory) = requested {
        user.require_role(territory, UPLOADERS, "upload photos to it")?;
        return Ok(territory);
    }
    match user.0.territories_with(UPLOADERS).as_slice() {
        [only] => Ok(*only),
        [] if !user.0.is_admin => Err(ApiError::forbidden(
            "only volunteers and coordinators upload photos, and you are neither in any territory",
        )),
        _ => Err(ApiError::bad_request(
            "territory",
            "name the territory the photo belongs to with ?territory=<id>",
        )),
    }
}

/// How much of a photo the server holds
///
/// Whether the photo is held, else how much of the caller's own upload is.
/// As for any `HEAD`, answers carry headers only: an error's `ApiError` is
/// the body a `GET` of the same request would get.
#[utoipa::path(
    head,
    path = "/api/photos/{sha256}",
    operation_id = "photoUploadStatus",
    params(
        ("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "The photo's SHA-256, 64 lowercase hexadecimal digits"),
        ("territory" = Option<Uuid>, Query, description = "The territory the photo would be filed under; needed when the caller uploads to more than one"),
    ),
    responses(
        (status = 200, description = "The server holds the photo: nothing to send"),
        (status = 404, description = "Not held; `Upload-Offset` says how many bytes of the caller's own upload are",
            headers(("Upload-Offset" = u64, description = "Bytes of the caller's partial upload received (0 for none)"))),
        (status = 400, description = "`sha256` or `territory` is invalid, or `territory` is needed", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Neither a volunteer nor a coordinator of the territory, nor an admin", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn upload_status(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha256): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let sha256 = address(&sha256)?;
    upload_territory(&user, query.as_deref())?;
    if stored::find(&state.pool, sha256).await?.is_some() {
        return Ok(StatusCode::OK.into_response());
    }
    let received = upload::received(&state.pool, sha256, user.0.account_id).await?;
    Ok((
        StatusCode::NOT_FOUND,
        [(UPLOAD_OFFSET, received.to_string())],
    )
        .into_response())
}

/// The byte range a PUT carries.
struct ChunkRange {
    start: u64,
    /// Exclusive.
    end: u64,
    total: u64,
    /// The header the total came from, named when it is refused.
    field: &'static str,
}

/// `Content-Range: bytes start-end/total`, or, without one, the whole photo
/// as `Content-Length` says.
fn chunk_range(headers: &HeaderMap) -> Result<ChunkRange, ApiError> {
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return match content_length {
            Some(total) if total > 0 => Ok(ChunkRange {
                start: 0,
                end: total,
                total,
                field: "Content-Length",
            }),
            _ => Err(ApiError::bad_request(
                "Content-Range",
                "send `Content-Range: bytes <start>-<end>/<total>` (or the whole photo with its \
                 Content-Length)",
            )),
        };
    };
    let invalid = || {
        ApiError::bad_request(
            "Content-Range",
            "must be `bytes <start>-<end>/<total>`, end inclusive, within the total",
        )
    };
    let (start, end, total) = value
        .to_str()
        .ok()
        .and_then(|value| value.trim().strip_prefix("bytes "))
        .and_then(|range| {
            let (span, total) = range.split_once('/')?;
            let (start, end) = span.split_once('-')?;
            Some((
                start.trim().parse::<u64>().ok()?,
                end.trim().parse::<u64>().ok()?,
                total.trim().parse::<u64>().ok()?,
            ))
        })
        .ok_or_else(invalid)?;
    if start > end || end >= total {
        return Err(invalid());
    }
    Ok(ChunkRange {
        start,
        end: end + 1,
        total,
        field: "Content-Range",
    })
}

/// Reads and discards `body`, up to `limit` bytes.
async fn drain(body: Body, limit: u64) {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    while let Some(Ok(bytes)) = stream.next().await {
        read += bytes.len() as u64;
        if read > limit {
            return;
        }
    }
}

/// Uploads a photo, or a chunk of one
///
/// Appends a chunk at the server's offset; stores the photo when the last
/// byte is in. Resumable: send `Content-Range: bytes start-end/total` (end inclusive)
/// with those bytes, from the server's offset (`HEAD`); without
/// `Content-Range` the body is the whole photo. For volunteers and
/// coordinators of the territory it is filed under, and admins.
#[utoipa::path(
    put,
    path = "/api/photos/{sha256}",
    operation_id = "uploadPhoto",
    params(
        ("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "The photo's SHA-256, 64 lowercase hexadecimal digits"),
        ("territory" = Option<Uuid>, Query, description = "The territory to file the photo under; needed when the caller uploads to more than one"),
        ("Content-Range" = Option<String>, Header, description = "`bytes <start>-<end>/<total>`, end inclusive; `total` at most `--max-photo-bytes` (20 MiB by default)"),
    ),
    request_body(
        description = "The bytes of the chunk (or of the whole photo): a JPEG or PNG image",
        content(("image/jpeg"), ("image/png"), ("application/octet-stream")),
    ),
    responses(
        (status = 200, description = "The server held the photo already (the body is not read)", body = Photo),
        (status = 201, description = "The last chunk is in: the photo is checked and stored", body = Photo),
        (status = 204, description = "The chunk is stored; send the next one from `Upload-Offset`",
            headers(("Upload-Offset" = u64, description = "Bytes of the upload received"))),
        (status = 400, description = "`sha256`, `territory` or `Content-Range` is invalid, or the body is not as long as announced", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Neither a volunteer nor a coordinator of the territory, nor an admin", body = ApiError),
        (status = 404, description = "No such territory (an admin naming one with `?territory=`)", body = ApiError),
        (status = 409, description = "The chunk does not start at the server's offset; resume from `Upload-Offset`", body = ApiError,
            headers(("Upload-Offset" = u64, description = "Bytes of the upload received"))),
        (status = 413, description = "The photo is above `--max-photo-bytes` (`field`: `Content-Range` or `Content-Length`)", body = ApiError),
        (status = 415, description = "The bytes are neither a JPEG nor a PNG", body = ApiError),
        (status = 422, description = "The bytes do not hash to the address, or the image cannot be decoded; the upload is discarded", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha256): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let sha256 = address(&sha256)?;
    let territory = upload_territory(&user, query.as_deref())?;
    // An admin may name any territory: one that does not exist is a 404,
    // not a row the database refuses.
    super::territories::require_territory(&state.pool, territory).await?;
    if let Some(stored) = stored::find(&state.pool, sha256).await? {
        // A client that sends the body anyway (without `Expect: 100-continue`)
        // is read to its end, within the photo limit, so it gets this answer
        // rather than a connection closed under the body it is still writing.
        drain(body, state.max_photo_bytes).await;
        return Ok((StatusCode::OK, Json(stored)).into_response());
    }
    // Everything here is decided from the headers: an oversized photo is
    // refused before a byte of its body is read.
    let range = chunk_range(&headers)?;
    if range.total > state.max_photo_bytes {
        return Err(ApiError::TooLarge {
            field: range.field.to_string(),
            message: format!(
                "the photo is {} bytes; this server accepts photos of at most {} bytes \
                 (the phone app shrinks photos to about 0.5 MB before sending them)",
                range.total, state.max_photo_bytes
            ),
        });
    }
    let length = range.end - range.start;
    let bytes = axum::body::to_bytes(body, length as usize)
        .await
        .map_err(|_| {
            ApiError::bad_request(
                "body",
                format!("is longer than the {length} bytes Content-Range announces, or was cut"),
            )
        })?;
    if bytes.len() as u64 != length {
        return Err(ApiError::bad_request(
            "body",
            format!(
                "holds {} bytes; Content-Range announces {length}",
                bytes.len()
            ),
        ));
    }
    metrics::counter!(crate::telemetry::PHOTO_UPLOAD_BYTES).increment(length);
    let device = match user.0.credential {
        Credential::Device { device_id } => Some(device_id),
        Credential::Session { .. } => None,
    };

    let upload = Upload {
        sha256,
        account: user.0.account_id,
        territory,
        device,
    };
    let chunk = Chunk {
        start: range.start,
        end: range.end,
        total: range.total,
    };
    match upload::append(&state.pool, &upload, chunk, &bytes).await? {
        Appended::Partial { offset } => Ok((
            StatusCode::NO_CONTENT,
            [(UPLOAD_OFFSET, offset.to_string())],
        )
            .into_response()),
        Appended::Misplaced { offset } => {
            let mut response = ApiError::Conflict {
                field: "Content-Range".to_string(),
                message: format!(
                    "this upload has {offset} bytes so far; send the chunk starting at byte {offset}"
                ),
            }
            .into_response();
            response
                .headers_mut()
                .insert(UPLOAD_OFFSET, HeaderValue::from(offset));
            Ok(response)
        }
        Appended::Finished(stored) => Ok((StatusCode::CREATED, Json(stored)).into_response()),
    }
}

impl From<PhotoError> for ApiError {
    fn from(error: PhotoError) -> Self {
        match error {
            PhotoError::Unprocessable { field, message } => ApiError::Unprocessable {
                field: field.to_string(),
                message,
            },
            PhotoError::NotAPhoto(message) => ApiError::UnsupportedMediaType {
                field: "body".to_string(),
                message,
            },
            PhotoError::Database(error) => ApiError::Database(error),
            PhotoError::Internal(message) => ApiError::Internal(message),
        }
    }
}

/// A photo
///
/// To members of the territory it is filed under, and admins.
#[utoipa::path(
    get,
    path = "/api/photos/{sha256}",
    operation_id = "photo",
    params(
        ("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "The photo's SHA-256, 64 lowercase hexadecimal digits"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of the copy held"),
    ),
    responses(
        (status = 200, description = "The photo's bytes, as uploaded",
            content(("image/jpeg"), ("image/png")),
            headers(
                ("ETag" = String, description = "The address, quoted: photos never change"),
                ("Cache-Control" = String, description = "`private, max-age=31536000, immutable`"),
            )),
        (status = 304, description = "The copy held (`If-None-Match`) is current"),
        (status = 400, description = "`sha256` is not 64 lowercase hexadecimal digits", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in the photo's territory", body = ApiError),
        (status = 404, description = "No such photo", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn photo(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_image(&state, &user, &sha256, &headers, Image::Original).await
}

/// A photo's thumbnail
///
/// A JPEG of at most 256 px on its longer edge, upright, made by the server.
/// To members of the territory the photo is filed under, and admins.
#[utoipa::path(
    get,
    path = "/api/photos/{sha256}/thumbnail",
    operation_id = "photoThumbnail",
    params(
        ("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "The photo's SHA-256, 64 lowercase hexadecimal digits"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of the copy held"),
    ),
    responses(
        (status = 200, description = "The thumbnail",
            content(("image/jpeg")),
            headers(
                ("ETag" = String, description = "The photo's address, quoted"),
                ("Cache-Control" = String, description = "`private, max-age=31536000, immutable`"),
            )),
        (status = 304, description = "The copy held (`If-None-Match`) is current"),
        (status = 400, description = "`sha256` is not 64 lowercase hexadecimal digits", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "The caller holds no role in the photo's territory", body = ApiError),
        (status = 404, description = "No such photo", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn thumbnail(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_image(&state, &user, &sha256, &headers, Image::Thumbnail).await
}

/// Serves `image` of a photo to a member of its territory; 304 when the
/// client's copy is current.
async fn serve_image(
    state: &AppState,
    user: &AuthUser,
    sha256: &str,
    headers: &HeaderMap,
    image: Image,
) -> Result<Response, ApiError> {
    let sha256 = address(sha256)?;
    let territory = stored::territory_of(&state.pool, sha256).await?;
    let territory = territory.ok_or_else(|| ApiError::NotFound(format!("photo {sha256}")))?;
    user.require_member(territory)?;
    let etag = format!("\"{sha256}\"");
    let cache_headers = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, CACHE_CONTROL.to_string()),
    ];
    let current = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    if current {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response());
    }
    let (content_type, bytes) = stored::image(&state.pool, sha256, image).await?;
    Ok((
        cache_headers,
        [
            (header::CONTENT_TYPE, content_type),
            // Served bytes are images only, whatever a browser might sniff.
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    )
        .into_response())
}
