//! Photos end to end: a camera JPEG (orientation, capture time and GPS in its
//! EXIF) processed on the phone, queued in the outbox, uploaded to the real
//! server process over a connection that is cut halfway, and served back as a
//! thumbnail to the people of its territory only. Oversized and fake photos
//! are refused with the status and the field that say why.

use std::{io::Cursor, time::Duration};

use exif::{experimental::Writer, Field, In, Rational, Tag, Value as ExifValue};
use fieldnotes_tests::{
    accounts::{self, Fixture},
    init_test_logging, ServerProcess, TestDatabase,
};
use image::{codecs::jpeg::JpegEncoder, ImageEncoder, ImageFormat, Rgb, RgbImage};
use mobile_bridge::photos::{
    process_photo, sha256_hex, PhotoOutbox, PhotoSettings, ProcessedPhoto,
};
use reqwest::{header, Method};
use serde_json::Value;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// The chunk size of the phone's outbox (`mobile-bridge/src/photos/outbox.rs`).
const CHUNK: usize = 256 * 1024;

/// A 2048×1536 photo as a camera writes it: noisy pixels (so the JPEG is
/// large, several chunks), EXIF with orientation 6, capture time and GPS.
fn camera_jpeg(seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let pixels = RgbImage::from_fn(2048, 1536, |_, _| {
        // xorshift: cheap noise that JPEG cannot compress away.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        Rgb([r, g, b])
    });
    let ascii = |tag, text: &str| Field {
        tag,
        ifd_num: In::PRIMARY,
        value: ExifValue::Ascii(vec![text.as_bytes().to_vec()]),
    };
    let fields = [
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: ExifValue::Short(vec![6]),
        },
        ascii(Tag::DateTimeOriginal, "2024:06:01 18:05:00"),
        ascii(Tag::GPSLatitudeRef, "N"),
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: ExifValue::Rational(vec![
                Rational::from((45, 1)),
                Rational::from((46, 1)),
                Rational::from((30, 1)),
            ]),
        },
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut exif = Cursor::new(Vec::new());
    writer.write(&mut exif, false).expect("writing EXIF");
    let mut jpeg = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut jpeg, 90);
    encoder.set_exif_metadata(exif.into_inner()).unwrap();
    encoder
        .write_image(pixels.as_raw(), 2048, 1536, image::ExtendedColorType::Rgb8)
        .unwrap();
    jpeg
}

fn processed(seed: u32) -> ProcessedPhoto {
    let photo = process_photo(&camera_jpeg(seed), PhotoSettings::default()).expect("processing");
    assert!(
        photo.jpeg.len() > 2 * CHUNK,
        "the photo spans several chunks"
    );
    photo
}

struct Setup {
    _db: TestDatabase,
    server: ServerProcess,
    pool: PgPool,
    fixture: Fixture,
    base: Url,
}

async fn setup() -> anyhow::Result<Setup> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let fixture = accounts::seed(&pool).await?;
    let base = Url::parse(&server.http_url("/"))?;
    Ok(Setup {
        _db: db,
        server,
        pool,
        fixture,
        base,
    })
}

/// Sends `method path` with raw `body` as the holder of `token`; returns the
/// status, the headers and the body.
async fn request(
    setup: &Setup,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> anyhow::Result<(u16, header::HeaderMap, Vec<u8>)> {
    let mut request = reqwest::Client::new().request(method, setup.server.http_url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.bytes().await?.to_vec()))
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// Writes the head of an HTTP/1.1 request and `send` bytes of its body, then
/// reads the response while the rest of the body (if `finish`) is written.
async fn raw_put(
    setup: &Setup,
    path: &str,
    token: &str,
    extra: &str,
    body: &[u8],
    finish: bool,
) -> anyhow::Result<Option<(u16, Value)>> {
    let stream = tokio::net::TcpStream::connect(&setup.server.addr).await?;
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: {}\r\n{extra}\r\n",
        setup.server.addr,
        body.len()
    );
    writer.write_all(head.as_bytes()).await?;
    if !finish {
        // The connection is cut in the middle of the body.
        writer.write_all(&body[..body.len() / 2]).await?;
        writer.flush().await?;
        drop(writer);
        drop(reader);
        return Ok(None);
    }
    let body = body.to_vec();
    // The server may answer and close before the body is through: writing
    // errors are expected and ignored.
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(&body).await;
    });
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buffer = [0u8; 8192];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buffer[..n]),
            }
            if fieldnotes_tests::complete_response(&response).is_some() {
                break;
            }
        }
    })
    .await;
    sending.abort();
    read?;
    let (status, _, body) = fieldnotes_tests::complete_response(&response)
        .ok_or_else(|| anyhow::anyhow!("incomplete response: {response:?}"))?;
    Ok(Some((status, json(&body))))
}

async fn stored_photos(pool: &PgPool, sha256: &str) -> anyhow::Result<(i64, i64)> {
    let photos: i64 = sqlx::query_scalar("SELECT count(*) FROM photos WHERE sha256 = $1")
        .bind(sha256)
        .fetch_one(pool)
        .await?;
    let partial: i64 = sqlx::query_scalar("SELECT count(*) FROM photo_uploads")
        .fetch_one(pool)
        .await?;
    Ok((photos, partial))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_mid_chunk_resumes_from_the_servers_offset_and_sends_each_byte_once(
) -> anyhow::Result<()> {
    let setup = setup().await?;
    let volunteer = &setup.fixture.volunteer;
    let photo = processed(1);
    let phone = tempfile::tempdir()?;
    let outbox = PhotoOutbox::new(phone.path())?;
    outbox.add(&photo)?;
    assert_eq!(outbox.pending()?, vec![photo.sha256.clone()]);
    let path = format!("/api/photos/{}", photo.sha256);
    let total = photo.jpeg.len();

    // A first chunk arrives; the second is cut halfway.
    let (status, headers, _) = request(
        &setup,
        Method::PUT,
        &path,
        Some(&volunteer.token),
        &[("content-range", format!("bytes 0-{}/{total}", CHUNK - 1))],
        Some(photo.jpeg[..CHUNK].to_vec()),
    )
    .await?;
    assert_eq!(status, 204);
    assert_eq!(headers["upload-offset"], CHUNK.to_string().as_str());
    raw_put(
        &setup,
        &path,
        &volunteer.token,
        &format!("Content-Range: bytes {CHUNK}-{}/{total}\r\n", 2 * CHUNK - 1),
        &photo.jpeg[CHUNK..2 * CHUNK],
        false,
    )
    .await?;
    // The server keeps whole chunks only.
    let offset = fieldnotes_tests::eventually(Duration::from_secs(5), "the cut chunk", || async {
        let (status, headers, _) = request(
            &setup,
            Method::HEAD,
            &path,
            Some(&volunteer.token),
            &[],
            None,
        )
        .await?;
        assert_eq!(status, 404, "not complete yet");
        Ok(Some(headers["upload-offset"].to_str()?.to_string()))
    })
    .await?;
    assert_eq!(offset, CHUNK.to_string());

    // Signal is back: the outbox asks where the server is and sends the rest.
    let report = outbox.upload_all(&setup.base, &volunteer.token).await;
    assert_eq!(report.uploaded, vec![photo.sha256.clone()], "{report:?}");
    assert!(report.failed.is_empty() && report.rejected.is_empty());
    assert_eq!(
        report.bytes_sent,
        (total - CHUNK) as u64,
        "each byte sent once"
    );
    assert!(outbox.pending()?.is_empty());

    let (data, territory, device): (Vec<u8>, uuid::Uuid, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT data, territory_id, device_id FROM photos WHERE sha256 = $1")
            .bind(&photo.sha256)
            .fetch_one(&setup.pool)
            .await?;
    assert!(data == photo.jpeg, "the server holds exactly the photo");
    assert_eq!(territory, setup.fixture.territory_a);
    assert_eq!(device, volunteer.device_id);
    assert_eq!(stored_photos(&setup.pool, &photo.sha256).await?, (1, 0));
    // What reached the server says when, not where.
    let exif = exif::Reader::new().read_from_container(&mut Cursor::new(&data))?;
    assert!(exif.get_field(Tag::GPSLatitude, In::PRIMARY).is_none());
    assert!(exif.get_field(Tag::DateTimeOriginal, In::PRIMARY).is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_the_server_already_holds_is_never_uploaded_again() -> anyhow::Result<()> {
    let setup = setup().await?;
    let volunteer = &setup.fixture.volunteer;
    let photo = processed(2);
    let phone = tempfile::tempdir()?;
    let outbox = PhotoOutbox::new(phone.path())?;
    outbox.add(&photo)?;
    let first = outbox.upload_all(&setup.base, &volunteer.token).await;
    assert_eq!(first.uploaded, vec![photo.sha256.clone()], "{first:?}");
    assert_eq!(first.bytes_sent, photo.jpeg.len() as u64);

    // Added again on the same phone: already uploaded, nothing queued.
    outbox.add(&photo)?;
    assert!(outbox.pending()?.is_empty());
    // The same photo on a reinstalled phone: the server says it has it.
    let reinstalled = tempfile::tempdir()?;
    let outbox = PhotoOutbox::new(reinstalled.path())?;
    outbox.add(&photo)?;
    let again = outbox.upload_all(&setup.base, &volunteer.token).await;
    assert_eq!(
        again.already_on_server,
        vec![photo.sha256.clone()],
        "{again:?}"
    );
    assert_eq!(again.bytes_sent, 0);
    assert!(outbox.pending()?.is_empty());
    // A client that PUTs it anyway gets 200 at once; nothing is stored twice.
    let path = format!("/api/photos/{}", photo.sha256);
    let (status, _, body) = request(
        &setup,
        Method::PUT,
        &path,
        Some(&volunteer.token),
        &[],
        Some(photo.jpeg.clone()),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["sha256"], photo.sha256.as_str());
    assert_eq!(stored_photos(&setup.pool, &photo.sha256).await?, (1, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_are_served_to_the_people_of_the_photos_territory_only() -> anyhow::Result<()> {
    let setup = setup().await?;
    let f = &setup.fixture;
    let photo = processed(3);
    let phone = tempfile::tempdir()?;
    let outbox = PhotoOutbox::new(phone.path())?;
    outbox.add(&photo)?;
    let report = outbox.upload_all(&setup.base, &f.volunteer.token).await;
    assert_eq!(report.uploaded.len(), 1, "{report:?}");
    let thumbnail_path = format!("/api/photos/{}/thumbnail", photo.sha256);

    let (status, headers, body) = request(
        &setup,
        Method::GET,
        &thumbnail_path,
        Some(&f.coordinator.token),
        &[],
        None,
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
    let etag = format!("\"{}\"", photo.sha256);
    assert_eq!(headers[header::ETAG], etag.as_str());
    let cache = headers[header::CACHE_CONTROL].to_str()?;
    assert!(cache.starts_with("private, max-age="), "{cache}");
    let thumbnail = image::load_from_memory_with_format(&body, ImageFormat::Jpeg)?;
    // The photo was 1536×2048 once upright.
    assert_eq!((thumbnail.width(), thumbnail.height()), (192, 256));

    // The browser's copy is current: nothing resent.
    let (status, _, body) = request(
        &setup,
        Method::GET,
        &thumbnail_path,
        Some(&f.coordinator.token),
        &[("if-none-match", etag)],
        None,
    )
    .await?;
    assert_eq!((status, body.len()), (304, 0));

    // The full photo, to the territory's auditor.
    let (status, headers, body) = request(
        &setup,
        Method::GET,
        &format!("/api/photos/{}", photo.sha256),
        Some(&f.auditor.token),
        &[],
        None,
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
    assert!(body == photo.jpeg);

    let (status, _, body) = request(
        &setup,
        Method::GET,
        &thumbnail_path,
        Some(&f.other_volunteer.token),
        &[],
        None,
    )
    .await?;
    assert_eq!(status, 403, "a volunteer of another territory");
    assert!(json(&body)["error"]["message"].is_string());
    let (status, _, _) = request(&setup, Method::GET, &thumbnail_path, None, &[], None).await?;
    assert_eq!(status, 401, "anonymous");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_upload_is_refused_with_413_naming_the_field_before_its_body_is_read(
) -> anyhow::Result<()> {
    let setup = setup().await?;
    let volunteer = &setup.fixture.volunteer;
    let fifty_mb = vec![0xAB_u8; 50 * 1024 * 1024];
    let sha256 = sha256_hex(&fifty_mb);
    let path = format!("/api/photos/{sha256}");
    let total = fifty_mb.len();

    for (extra, field) in [
        (
            format!("Content-Range: bytes 0-{}/{total}\r\n", total - 1),
            "Content-Range",
        ),
        // The whole photo in one request, as `curl -T` sends it.
        (String::new(), "Content-Length"),
    ] {
        let (status, body) = raw_put(&setup, &path, &volunteer.token, &extra, &fifty_mb, true)
            .await?
            .expect("a response");
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["error"]["field"], field);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&total.to_string()), "{message}");
        assert!(
            message.contains(&(20 * 1024 * 1024).to_string()),
            "{message}"
        );
    }
    assert_eq!(stored_photos(&setup.pool, &sha256).await?, (0, 0));
    // The server is none the worse.
    let (status, _, _) = request(
        &setup,
        Method::HEAD,
        &path,
        Some(&volunteer.token),
        &[],
        None,
    )
    .await?;
    assert_eq!(status, 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_the_photo_they_claim_to_be_are_refused_and_discarded(
) -> anyhow::Result<()> {
    let setup = setup().await?;
    let volunteer = &setup.fixture.volunteer;

    // A species list renamed `liste.jpg`, under its own (correct) hash.
    let text = b"Bufo bufo; Erinaceus europaeus; Pipistrellus pipistrellus\n".repeat(20);
    let sha256 = sha256_hex(&text);
    let (status, _, body) = request(
        &setup,
        Method::PUT,
        &format!("/api/photos/{sha256}"),
        Some(&volunteer.token),
        &[("content-type", "image/jpeg".to_string())],
        Some(text),
    )
    .await?;
    let body = json(&body);
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["error"]["field"], "body");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not a photo"), "{message}");
    assert_eq!(stored_photos(&setup.pool, &sha256).await?, (0, 0));

    // A real photo under another photo's address.
    let photo = processed(4);
    let wrong = sha256_hex(b"another photo");
    let (status, _, body) = request(
        &setup,
        Method::PUT,
        &format!("/api/photos/{wrong}"),
        Some(&volunteer.token),
        &[],
        Some(photo.jpeg.clone()),
    )
    .await?;
    let body = json(&body);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "sha256");
    assert_eq!(stored_photos(&setup.pool, &wrong).await?, (0, 0));
    Ok(())
}
