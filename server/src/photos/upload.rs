//! A photo's upload, resumable chunk by chunk: the bytes received so far are
//! rows of `photo_upload_chunks` (per uploader: two people uploading one
//! photo do not mix their bytes), the upload itself a row of
//! `photo_uploads`. When the last byte is in, the photo is verified and
//! stored with its thumbnail, and the partial upload goes, in one transaction.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{
    stored::{self, Photo},
    verify::verify,
    PhotoError,
};

/// Partial uploads untouched for this long are deleted (`crate::retention`):
/// the phone then uploads the photo from its start.
pub const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 60 * 60);

/// Whose upload of which photo, filed under which territory.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The photo's address (checked: 64 lowercase hexadecimal digits).
    pub sha256: &'a str,
    pub account: Uuid,
    pub territory: Uuid,
    /// The device whose credential uploads, if it is one.
    pub device: Option<Uuid>,
}

/// Where a chunk's bytes go in the photo.
#[derive(Debug, Clone, Copy)]
pub struct Chunk {
    pub start: u64,
    /// Exclusive.
    pub end: u64,
    /// The photo's size.
    pub total: u64,
}

/// What became of a chunk.
#[derive(Debug)]
pub enum Appended {
    /// Stored; the upload now holds `offset` bytes, the photo more.
    Partial { offset: i64 },
    /// Not stored: the chunk does not start at the upload's `offset`.
    Misplaced { offset: i64 },
    /// It was the last: the photo is verified and stored.
    Finished(Photo),
}

/// The bytes of `account`'s own partial upload of `sha256` received so far.
pub async fn received<'e>(
    executor: impl PgExecutor<'e>,
    sha256: &str,
    account: Uuid,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT COALESCE(sum(length(data)), 0)::bigint AS "received!" FROM photo_upload_chunks
           WHERE sha256 = $1 AND account_id = $2"#,
        sha256,
        account,
    )
    .fetch_one(executor)
    .await
}

/// Appends `bytes` (the chunk `chunk`) to `upload`, and finishes the upload
/// when they are its last. A photo whose bytes are refused takes its
/// partial upload with it: resending the same bytes would be refused again.
pub async fn append(
    pool: &PgPool,
    upload: &Upload<'_>,
    chunk: Chunk,
    bytes: &[u8],
) -> Result<Appended, PhotoError> {
    let Upload {
        sha256,
        account,
        territory,
        device,
    } = *upload;
    let mut tx = pool.begin().await?;
    // The upsert locks the upload's row: concurrent chunks of one upload queue here.
    let expected_size: i32 = sqlx::query_scalar!(
        "INSERT INTO photo_uploads (sha256, account_id, territory_id, device_id, expected_size) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sha256, account_id) DO UPDATE \
           SET territory_id = $3, device_id = $4, updated_at = now() \
         RETURNING expected_size",
        sha256,
        account,
        territory,
        device,
        chunk.total as i32,
    )
    .fetch_one(&mut *tx)
    .await?;
    let mut offset = received(&mut *tx, sha256, account).await?;
    if i64::from(expected_size) != chunk.total as i64 {
        // The same address cannot have two sizes: what was received belongs to
        // a client's mistake. Start again.
        sqlx::query!(
            "DELETE FROM photo_upload_chunks WHERE sha256 = $1 AND account_id = $2",
            sha256,
            account,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE photo_uploads SET expected_size = $3 WHERE sha256 = $1 AND account_id = $2",
            sha256,
            account,
            chunk.total as i32,
        )
        .execute(&mut *tx)
        .await?;
        offset = 0;
    }
    if chunk.start as i64 != offset {
        tx.commit().await?;
        return Ok(Appended::Misplaced { offset });
    }
    sqlx::query!(
        "INSERT INTO photo_upload_chunks (sha256, account_id, byte_offset, data) \
         VALUES ($1, $2, $3, $4)",
        sha256,
        account,
        offset as i32,
        bytes,
    )
    .execute(&mut *tx)
    .await?;
    offset += (chunk.end - chunk.start) as i64;
    if (offset as u64) < chunk.total {
        tx.commit().await?;
        return Ok(Appended::Partial { offset });
    }

    let chunks: Vec<Vec<u8>> = sqlx::query_scalar!(
        "SELECT data FROM photo_upload_chunks WHERE sha256 = $1 AND account_id = $2 \
         ORDER BY byte_offset",
        sha256,
        account,
    )
    .fetch_all(&mut *tx)
    .await?;
    let photo = chunks.concat();
    let address = sha256.to_string();
    // Hashing and decoding are CPU work: off the async threads.
    let verified = tokio::task::spawn_blocking(move || verify(&address, photo))
        .await
        .map_err(|error| PhotoError::Internal(format!("photo verification task: {error}")))?;
    sqlx::query!(
        "DELETE FROM photo_uploads WHERE sha256 = $1 AND account_id = $2",
        sha256,
        account,
    )
    .execute(&mut *tx)
    .await?;
    let verified = match verified {
        Ok(verified) => verified,
        Err(refusal) => {
            tx.commit().await?;
            return Err(refusal);
        }
    };
    sqlx::query!(
        "INSERT INTO photos (sha256, territory_id, uploaded_by, device_id, size, width, height, \
           content_type, data, thumbnail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (sha256) DO NOTHING",
        sha256,
        territory,
        account,
        device,
        verified.data.len() as i32,
        verified.width as i32,
        verified.height as i32,
        verified.content_type,
        &verified.data,
        &verified.thumbnail,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let stored = stored::find(pool, sha256)
        .await?
        .ok_or_else(|| PhotoError::Internal(format!("photo {sha256} vanished after storing")))?;
    Ok(Appended::Finished(stored))
}
