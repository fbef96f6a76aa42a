//! Photos on the phone: what the camera produced becomes a small, clean JPEG
//! before it leaves the device, and travels to the server apart from the
//! automerge notebooks.
//!
//! [`process_photo`] decodes a JPEG or PNG, turns the pixels upright (the EXIF
//! orientation is applied, so no viewer has to), shrinks the photo to
//! [`PhotoSettings::max_edge`] (data plans are small), re-encodes it as JPEG and
//! keeps only the capture time of all its metadata: GPS position, camera serial
//! numbers and maker notes say more about a volunteer than the record needs
//! (the record carries its own, deliberate, coordinates). The result is
//! addressed by the SHA-256 of its bytes, which is what a record's `photos`
//! field holds.
//!
//! [`PhotoOutbox`] keeps processed photos on the device until the server holds
//! them, and uploads them resumably (see `docs/ARCHITECTURE.md`, "Photos").

mod outbox;

pub use outbox::{PhotoOutbox, UploadReport};

use std::io::Cursor;

use chrono::{DateTime, Utc};
use image::{
    codecs::jpeg::JpegEncoder, imageops::FilterType, DynamicImage, ExtendedColorType, ImageDecoder,
    ImageEncoder, ImageFormat, ImageReader, Limits, RgbImage,
};
use sha2::{Digest, Sha256};

/// How photos are shrunk and encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoSettings {
    /// Longest edge of the stored photo, in pixels; smaller photos are kept as they are.
    pub max_edge: u32,
    /// JPEG quality, 1–100.
    pub jpeg_quality: u8,
    /// Longest edge of the thumbnail, in pixels.
    pub thumbnail_edge: u32,
}

impl Default for PhotoSettings {
    /// 2048 px at quality 80 is about 0.5 MB: enough to identify a plant or
    /// an insect, cheap on a data plan.
    fn default() -> Self {
        PhotoSettings {
            max_edge: 2048,
            jpeg_quality: 80,
            thumbnail_edge: 256,
        }
    }
}

/// A photo ready to store and upload.
#[derive(Clone, PartialEq, Eq)]
pub struct ProcessedPhoto {
    /// Lowercase hex SHA-256 of `jpeg`: the photo's address in records and on the server.
    pub sha256: String,
    pub jpeg: Vec<u8>,
    pub thumbnail: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// When the camera took it (EXIF `DateTimeOriginal`), if it said.
    pub captured_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ProcessedPhoto {
    // The bytes would flood any log line that prints a photo.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessedPhoto")
            .field("sha256", &self.sha256)
            .field("jpeg", &format_args!("{} bytes", self.jpeg.len()))
            .field("thumbnail", &format_args!("{} bytes", self.thumbnail.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .field("captured_at", &self.captured_at)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("this file is not a photo: only JPEG and PNG images can be attached")]
    NotAnImage,
    #[error("this {format} image cannot be read (damaged or incomplete file): {reason}")]
    Damaged {
        format: &'static str,
        reason: String,
    },
    #[error("photo settings: {0}")]
    Settings(String),
    #[error("photo {0} does not hash to its address")]
    Mismatch(String),
    #[error("encoding the photo as JPEG: {0}")]
    Encode(String),
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("the photo outbox at {path}: {source}")]
    Storage {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Pixels larger than any phone camera makes are refused before decoding, so
/// a crafted file cannot make the decoder allocate gigabytes.
const MAX_DECODED_EDGE: u32 = 20_000;
const MAX_DECODE_ALLOC: u64 = 1 << 30;

/// Decodes `bytes` (JPEG or PNG), applies the EXIF orientation, downscales to
/// `settings.max_edge`, re-encodes as JPEG with no metadata but the capture
/// time, and makes the thumbnail.
pub fn process_photo(bytes: &[u8], settings: PhotoSettings) -> Result<ProcessedPhoto, PhotoError> {
    check_settings(&settings)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|error| PhotoError::Encode(error.to_string()))?;
    // The content decides, never the file name: a text file called `.jpg` has no signature.
    let format = match reader.format() {
        Some(format @ (ImageFormat::Jpeg | ImageFormat::Png)) => format,
        _ => return Err(PhotoError::NotAnImage),
    };
    let damaged = |error: image::ImageError| PhotoError::Damaged {
        format: format_name(format),
        reason: error.to_string(),
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODED_EDGE);
    limits.max_image_height = Some(MAX_DECODED_EDGE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(damaged)?;
    let exif = decoder.exif_metadata().map_err(damaged)?;
    let orientation = decoder.orientation().map_err(damaged)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(damaged)?;
    image.apply_orientation(orientation);

    let image = flatten(fit_within(image, settings.max_edge));
    let capture = exif.as_deref().and_then(CaptureTime::from_exif);
    let jpeg = encode_jpeg(
        &image,
        settings.jpeg_quality,
        capture.as_ref().map(CaptureTime::to_exif),
    )?;
    let thumbnail = encode_jpeg(
        &flatten(fit_within(
            DynamicImage::ImageRgb8(image.clone()),
            settings.thumbnail_edge,
        )),
        settings.jpeg_quality,
        None,
    )?;
    Ok(ProcessedPhoto {
        sha256: sha256_hex(&jpeg),
        width: image.width(),
        height: image.height(),
        captured_at: capture.map(|capture| capture.utc),
        jpeg,
        thumbnail,
    })
}

fn check_settings(settings: &PhotoSettings) -> Result<(), PhotoError> {
    if !(1..=100).contains(&settings.jpeg_quality) {
        return Err(PhotoError::Settings(format!(
            "jpeg_quality must be between 1 and 100 (got {})",
            settings.jpeg_quality
        )));
    }
    if settings.max_edge == 0 || settings.thumbnail_edge == 0 {
        return Err(PhotoError::Settings(
            "max_edge and thumbnail_edge must be at least 1 pixel".to_string(),
        ));
    }
    Ok(())
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        _ => "JPEG",
    }
}

/// Lowercase hex SHA-256, the form records and URLs use.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Shrinks `image` so its longest edge is at most `max_edge`, keeping its
/// proportions; never enlarges (that would cost bytes and add nothing).
fn fit_within(image: DynamicImage, max_edge: u32) -> DynamicImage {
    let (width, height) = (image.width(), image.height());
    let longest = width.max(height);
    if longest <= max_edge {
        return image;
    }
    // Rounded, at least 1 px: a 4000×3000 photo becomes 2048×1536, a
    // 5000×10 strip 2048×4.
    let scale = |edge: u32| {
        ((u64::from(edge) * u64::from(max_edge) + u64::from(longest) / 2) / u64::from(longest))
            .max(1) as u32
    };
    // Lanczos3 keeps fine detail (leaf venation, wing patterns) sharper than
    // the cheaper filters, at a cost a phone pays once per photo.
    image.resize_exact(scale(width), scale(height), FilterType::Lanczos3)
}

/// JPEG has no transparency: transparent pixels are laid on white, as a
/// viewer shows them, rather than on whatever colour they happen to hold.
fn flatten(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |channel: u8| {
            ((u32::from(channel) * u32::from(a) + 255 * (255 - u32::from(a))) / 255) as u8
        };
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

fn encode_jpeg(
    image: &RgbImage,
    quality: u8,
    exif: Option<Vec<u8>>,
) -> Result<Vec<u8>, PhotoError> {
    let mut jpeg = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut jpeg, quality);
    if let Some(exif) = exif {
        encoder
            .set_exif_metadata(exif)
            .map_err(|error| PhotoError::Encode(error.to_string()))?;
    }
    encoder
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|error| PhotoError::Encode(error.to_string()))?;
    Ok(jpeg)
}

/// The capture time as the camera wrote it, kept verbatim for the output's
/// EXIF, and as an instant.
struct CaptureTime {
    /// `YYYY:MM:DD HH:MM:SS`, local time of the camera.
    date_time: Vec<u8>,
    /// `±HH:MM` (`OffsetTimeOriginal`), when the camera wrote it.
    offset: Option<Vec<u8>>,
    utc: DateTime<Utc>,
}

impl CaptureTime {
    /// Reads `DateTimeOriginal` and `OffsetTimeOriginal` from a raw EXIF
    /// (TIFF) block; None when absent or unreadable — a photo with a broken
    /// clock is still a photo.
    fn from_exif(raw: &[u8]) -> Option<CaptureTime> {
        let exif = exif::Reader::new().read_raw(raw.to_vec()).ok()?;
        let ascii = |tag: exif::Tag| match &exif.get_field(tag, exif::In::PRIMARY)?.value {
            exif::Value::Ascii(values) => values.first().cloned(),
            _ => None,
        };
        let date_time = ascii(exif::Tag::DateTimeOriginal)?;
        let offset = ascii(exif::Tag::OffsetTimeOriginal);
        let mut parsed = exif::DateTime::from_ascii(&date_time).ok()?;
        if let Some(offset) = &offset {
            parsed.parse_offset(offset).ok()?;
        }
        let naive = chrono::NaiveDate::from_ymd_opt(
            i32::from(parsed.year),
            u32::from(parsed.month),
            u32::from(parsed.day),
        )?
        .and_hms_opt(
            u32::from(parsed.hour),
            u32::from(parsed.minute),
            u32::from(parsed.second),
        )?;
        // Without an offset the camera's time zone is unknown; it is taken as
        // UTC (the records' own eventDate, typed by the volunteer, carries
        // the zone; this is only a hint for the reviewer).
        let minutes = parsed.offset.map_or(0, i64::from);
        let utc = naive.and_utc() - chrono::Duration::minutes(minutes);
        Some(CaptureTime {
            date_time,
            offset,
            utc,
        })
    }

    /// A minimal EXIF block (little-endian TIFF) holding only these tags: an
    /// IFD0 whose single entry points to an Exif IFD with `DateTimeOriginal`
    /// (and `OffsetTimeOriginal`). Written by hand because the crates that
    /// write EXIF either rewrite whole files or mark their writer experimental;
    /// the format of these few entries is fixed by the TIFF 6.0 / Exif 2.32
    /// specifications.
    fn to_exif(&self) -> Vec<u8> {
        const ASCII: u16 = 2;
        const LONG: u16 = 4;
        let mut ascii_entries: Vec<(u16, Vec<u8>)> =
            vec![(0x9003, nul_terminated(&self.date_time))];
        if let Some(offset) = &self.offset {
            ascii_entries.push((0x9011, nul_terminated(offset)));
        }
        let ifd_len = |entries: usize| 2 + 12 * entries + 4;
        let ifd0_at = 8;
        let exif_ifd_at = ifd0_at + ifd_len(1);
        let mut data_at = exif_ifd_at + ifd_len(ascii_entries.len());

        let mut out = Vec::new();
        out.extend_from_slice(b"II*\0");
        out.extend_from_slice(&(ifd0_at as u32).to_le_bytes());
        // IFD0: ExifIFDPointer.
        out.extend_from_slice(&1u16.to_le_bytes());
        push_entry(&mut out, 0x8769, LONG, 1, exif_ifd_at as u32);
        out.extend_from_slice(&0u32.to_le_bytes());
        // Exif IFD: values longer than 4 bytes live after it, at `data_at`.
        out.extend_from_slice(&(ascii_entries.len() as u16).to_le_bytes());
        let mut values = Vec::new();
        for (tag, value) in &ascii_entries {
            if value.len() <= 4 {
                let mut inline = [0u8; 4];
                inline[..value.len()].copy_from_slice(value);
                push_entry(
                    &mut out,
                    *tag,
                    ASCII,
                    value.len() as u32,
                    u32::from_le_bytes(inline),
                );
            } else {
                push_entry(&mut out, *tag, ASCII, value.len() as u32, data_at as u32);
                values.extend_from_slice(value);
                data_at += value.len();
            }
        }
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&values);
        out
    }
}

fn nul_terminated(text: &[u8]) -> Vec<u8> {
    let mut value = text.to_vec();
    value.push(0);
    value
}

fn push_entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32) {
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests;
