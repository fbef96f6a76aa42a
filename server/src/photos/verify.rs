//! Checking a photo: its bytes hash to its address and decode as a JPEG or
//! PNG within bounds; and making its thumbnail. CPU work only: callers run
//! it off the async threads.

use image::{
    codecs::jpeg::JpegEncoder, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits,
};
use sha2::{Digest, Sha256};

use super::PhotoError;

/// Longest edge of thumbnails, in pixels.
pub const THUMBNAIL_EDGE: u32 = 256;

/// A photo whose bytes were checked, with the thumbnail made from them.
pub struct Verified {
    pub(super) data: Vec<u8>,
    pub(super) content_type: &'static str,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) thumbnail: Vec<u8>,
}

/// Pixels beyond any camera's are refused before decoding: a small file
/// must not make the server allocate gigabytes.
const MAX_DECODED_EDGE: u32 = 20_000;
const MAX_DECODE_ALLOC: u64 = 1 << 30;

/// Checks that `data` hashes to `sha256` and decodes as a JPEG or PNG photo,
/// and makes its thumbnail. Public for the fuzz targets (tests/fuzz), which
/// give it arbitrary bytes.
pub fn verify(sha256: &str, data: Vec<u8>) -> Result<Verified, PhotoError> {
    let actual: String = Sha256::digest(&data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if actual != sha256 {
        return Err(PhotoError::Unprocessable {
            field: "sha256",
            message: format!(
                "the bytes received hash to {actual}, not to the address {sha256}; the upload \
                 was discarded, send the photo again"
            ),
        });
    }
    let mut reader = ImageReader::new(std::io::Cursor::new(&data))
        .with_guessed_format()
        .map_err(|error| PhotoError::Internal(format!("reading a photo in memory: {error}")))?;
    let content_type = match reader.format() {
        Some(ImageFormat::Jpeg) => "image/jpeg",
        Some(ImageFormat::Png) => "image/png",
        _ => {
            return Err(PhotoError::NotAPhoto(
                "this is not a photo: only JPEG and PNG images are accepted, and these \
                 bytes are neither (whatever the file was named)"
                    .to_string(),
            ))
        }
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODED_EDGE);
    limits.max_image_height = Some(MAX_DECODED_EDGE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let damaged = |error: image::ImageError| PhotoError::Unprocessable {
        field: "body",
        message: format!("this image cannot be decoded (damaged or incomplete): {error}"),
    };
    let mut decoder = reader.into_decoder().map_err(damaged)?;
    let orientation = decoder.orientation().map_err(damaged)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(damaged)?;
    let (width, height) = (image.width(), image.height());
    // Photos from the phone library are upright already; other clients'
    // may still carry an EXIF orientation, which the thumbnail applies.
    image.apply_orientation(orientation);
    if image.width().max(image.height()) > THUMBNAIL_EDGE {
        image = image.thumbnail(THUMBNAIL_EDGE, THUMBNAIL_EDGE);
    }
    let mut thumbnail = Vec::new();
    JpegEncoder::new_with_quality(&mut thumbnail, 80)
        .encode_image(&image.into_rgb8())
        .map_err(|error| PhotoError::Internal(format!("encoding a thumbnail: {error}")))?;
    Ok(Verified {
        data,
        content_type,
        width,
        height,
        thumbnail,
    })
}
