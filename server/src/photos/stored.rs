//! The photos the server holds: their description, and their bytes or
//! thumbnail as served.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// A stored photo.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Photo {
    pub sha256: String,
    /// The territory it is filed under: its members may read it.
    pub territory_id: Uuid,
    /// In bytes.
    pub size: i32,
    /// In pixels, as stored (before any EXIF orientation).
    pub width: i32,
    pub height: i32,
    /// `image/jpeg` or `image/png`.
    pub content_type: String,
    pub created_at: DateTime<Utc>,
}

/// A held photo's description, or None.
pub async fn find(pool: &PgPool, sha256: &str) -> sqlx::Result<Option<Photo>> {
    sqlx::query_as!(
        Photo,
        "SELECT sha256, territory_id, size, width, height, content_type, created_at \
         FROM photos WHERE sha256 = $1",
        sha256,
    )
    .fetch_optional(pool)
    .await
}

/// The territory a held photo is filed under, or None.
pub async fn territory_of(pool: &PgPool, sha256: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT territory_id FROM photos WHERE sha256 = $1", sha256)
        .fetch_optional(pool)
        .await
}

/// What of a photo is served.
#[derive(Debug, Clone, Copy)]
pub enum Image {
    /// The bytes as uploaded.
    Original,
    /// The server's JPEG of at most [`super::verify::THUMBNAIL_EDGE`] px.
    Thumbnail,
}

/// The content type and bytes of `image` of a held photo.
pub async fn image(pool: &PgPool, sha256: &str, image: Image) -> sqlx::Result<(String, Vec<u8>)> {
    match image {
        Image::Original => {
            let row = sqlx::query!(
                "SELECT content_type, data FROM photos WHERE sha256 = $1",
                sha256
            )
            .fetch_one(pool)
            .await?;
            Ok((row.content_type, row.data))
        }
        Image::Thumbnail => {
            let data =
                sqlx::query_scalar!("SELECT thumbnail FROM photos WHERE sha256 = $1", sha256)
                    .fetch_one(pool)
                    .await?;
            Ok(("image/jpeg".to_string(), data))
        }
    }
}
