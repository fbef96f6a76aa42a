//! Photo processing on real JPEG and PNG files made here, with EXIF written by
//! an independent writer (kamadak-exif's) and read back by its reader.

use std::io::Cursor;

use chrono::TimeZone;
use exif::{experimental::Writer, Field, In, Rational, Tag, Value};
use image::{ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use super::*;

const RED: Rgb<u8> = Rgb([230, 20, 20]);
const BLUE: Rgb<u8> = Rgb([20, 40, 200]);

/// A camera-like EXIF block: orientation, capture time with its offset, a GPS
/// position and the camera's make.
fn camera_exif(orientation: u16) -> Vec<u8> {
    let ascii = |tag, text: &str| Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    };
    let dms = |d, m, s| {
        Value::Rational(vec![
            Rational::from((d, 1)),
            Rational::from((m, 1)),
            Rational::from((s, 1)),
        ])
    };
    let fields = [
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![orientation]),
        },
        ascii(Tag::Make, "Fairphone"),
        ascii(Tag::DateTimeOriginal, "2024:05:17 09:30:00"),
        ascii(Tag::OffsetTimeOriginal, "+02:00"),
        ascii(Tag::GPSLatitudeRef, "N"),
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: dms(45, 46, 30),
        },
        ascii(Tag::GPSLongitudeRef, "E"),
        Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: dms(4, 50, 10),
        },
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("writing EXIF");
    tiff.into_inner()
}

fn jpeg(image: &RgbImage, exif: Option<Vec<u8>>) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut bytes, 95);
    if let Some(exif) = exif {
        encoder.set_exif_metadata(exif).unwrap();
    }
    encoder.encode_image(image).unwrap();
    bytes
}

fn decode(bytes: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(bytes, ImageFormat::Jpeg)
        .expect("a JPEG")
        .into_rgb8()
}

fn is_red(pixel: &Rgb<u8>) -> bool {
    let [r, g, b] = pixel.0;
    r > 150 && g < 90 && b < 90
}

/// 400×200, blue, with a 20×20 red marker centred on (50, 10), near the top
/// edge and left of centre, so every orientation moves it somewhere else.
fn marked() -> RgbImage {
    RgbImage::from_fn(400, 200, |x, y| {
        if (40..60).contains(&x) && y < 20 {
            RED
        } else {
            BLUE
        }
    })
}

#[test]
fn a_4000_by_3000_photo_is_downscaled_to_2048_by_1536() {
    let photo = RgbImage::from_fn(4000, 3000, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let processed = process_photo(&jpeg(&photo, None), PhotoSettings::default()).unwrap();
    assert_eq!((processed.width, processed.height), (2048, 1536));
    assert_eq!(decode(&processed.jpeg).dimensions(), (2048, 1536));
}

#[test]
fn a_photo_smaller_than_the_maximum_edge_is_not_enlarged() {
    let processed = process_photo(&jpeg(&marked(), None), PhotoSettings::default()).unwrap();
    assert_eq!((processed.width, processed.height), (400, 200));
    assert_eq!(decode(&processed.jpeg).dimensions(), (400, 200));
}

#[test]
fn the_maximum_edge_applies_to_portrait_photos_too() {
    let settings = PhotoSettings {
        max_edge: 100,
        ..PhotoSettings::default()
    };
    let portrait = RgbImage::from_pixel(300, 600, BLUE);
    let processed = process_photo(&jpeg(&portrait, None), settings).unwrap();
    assert_eq!((processed.width, processed.height), (50, 100));
}

#[test]
fn orientation_6_turns_a_400_by_200_photo_into_an_upright_200_by_400_one() {
    let processed = process_photo(
        &jpeg(&marked(), Some(camera_exif(6))),
        PhotoSettings::default(),
    )
    .unwrap();
    assert_eq!((processed.width, processed.height), (200, 400));
    let upright = decode(&processed.jpeg);
    assert_eq!(upright.dimensions(), (200, 400));
    // Rotating 90° clockwise takes (x, y) to (height - 1 - y, x): the marker
    // near the top-left corner ends up near the top-right one.
    assert!(is_red(upright.get_pixel(189, 50)), "marker at (189, 50)");
    assert!(
        !is_red(upright.get_pixel(10, 50)),
        "nothing red at (10, 50)"
    );
}

#[test]
fn each_of_the_eight_exif_orientations_is_applied_to_the_pixels() {
    // Where the marker centred on (50, 10) of the stored 400×200 pixels must
    // be seen, per the EXIF 2.32 definition of each value.
    let expected = [
        (1, (400, 200), (50, 10)),
        (2, (400, 200), (349, 10)),  // mirrored left-right
        (3, (400, 200), (349, 189)), // turned 180°
        (4, (400, 200), (50, 189)),  // mirrored top-bottom
        (5, (200, 400), (10, 50)),   // transposed
        (6, (200, 400), (189, 50)),  // turned 90° clockwise
        (7, (200, 400), (189, 349)), // transversed
        (8, (200, 400), (10, 349)),  // turned 90° anticlockwise
    ];
    for (orientation, dimensions, (x, y)) in expected {
        let input = jpeg(&marked(), Some(camera_exif(orientation)));
        let processed = process_photo(&input, PhotoSettings::default()).unwrap();
        let upright = decode(&processed.jpeg);
        assert_eq!(
            upright.dimensions(),
            dimensions,
            "orientation {orientation}"
        );
        assert!(
            is_red(upright.get_pixel(x, y)),
            "orientation {orientation}: marker expected at ({x}, {y})"
        );
    }
}

#[test]
fn of_all_the_metadata_only_the_capture_time_is_kept() {
    let input = jpeg(&marked(), Some(camera_exif(6)));
    // The input does carry what must go.
    let before = exif::Reader::new()
        .read_from_container(&mut Cursor::new(&input))
        .unwrap();
    assert!(before.get_field(Tag::GPSLatitude, In::PRIMARY).is_some());

    let processed = process_photo(&input, PhotoSettings::default()).unwrap();
    let after = exif::Reader::new()
        .read_from_container(&mut Cursor::new(&processed.jpeg))
        .expect("the output keeps an EXIF block for the capture time");
    let mut tags: Vec<Tag> = after.fields().map(|field| field.tag).collect();
    tags.sort_by_key(|tag| tag.number());
    assert_eq!(
        tags,
        vec![Tag::DateTimeOriginal, Tag::OffsetTimeOriginal],
        "no GPS, no orientation, no camera make"
    );
    assert_eq!(
        after
            .get_field(Tag::DateTimeOriginal, In::PRIMARY)
            .unwrap()
            .display_value()
            .to_string(),
        "2024-05-17 09:30:00"
    );
    // 09:30 at +02:00.
    assert_eq!(
        processed.captured_at,
        Some(Utc.with_ymd_and_hms(2024, 5, 17, 7, 30, 0).unwrap())
    );
    // Nothing rides in other segments either: a JPEG of the same pixels
    // without EXIF differs only by that block.
    let bare = process_photo(&jpeg(&marked(), None), PhotoSettings::default()).unwrap();
    assert_eq!(bare.captured_at, None);
    assert!(exif::Reader::new()
        .read_from_container(&mut Cursor::new(&bare.jpeg))
        .is_err());
}

#[test]
fn the_thumbnail_fits_in_256_pixels_and_keeps_the_proportions() {
    let photo = RgbImage::from_fn(3000, 2000, |x, _| Rgb([(x % 256) as u8, 120, 60]));
    let processed = process_photo(&jpeg(&photo, None), PhotoSettings::default()).unwrap();
    let thumbnail = decode(&processed.thumbnail);
    assert_eq!(thumbnail.dimensions(), (256, 171));
    assert!(processed.thumbnail.len() < processed.jpeg.len());
}

#[test]
fn a_png_is_converted_to_jpeg_with_transparency_on_white() {
    let png_image = RgbaImage::from_fn(300, 100, |x, _| {
        if x < 150 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([20, 40, 200, 255])
        }
    });
    let mut png = Vec::new();
    png_image
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let processed = process_photo(&png, PhotoSettings::default()).unwrap();
    let output = decode(&processed.jpeg);
    assert_eq!(output.dimensions(), (300, 100));
    let [r, g, b] = output.get_pixel(20, 50).0;
    assert!(r > 240 && g > 240 && b > 240, "transparent became white");
    assert!(!is_red(output.get_pixel(250, 50)));
}

#[test]
fn a_text_file_named_jpg_is_refused_as_not_an_image() {
    let text = b"Liste des especes: Bufo bufo, Erinaceus europaeus\n";
    let error = process_photo(text, PhotoSettings::default()).unwrap_err();
    assert!(matches!(error, PhotoError::NotAnImage), "{error}");
    assert!(error.to_string().contains("only JPEG and PNG"));
}

#[test]
fn a_jpeg_cut_before_its_pixels_is_refused_as_damaged() {
    // (A file cut within the pixels decodes, the rest grey: the decoder is
    // lenient, as phone galleries are, with files a camera did not finish.)
    let whole = jpeg(&marked(), None);
    let error = process_photo(&whole[..40], PhotoSettings::default()).unwrap_err();
    assert!(matches!(error, PhotoError::Damaged { .. }), "{error}");
}

#[test]
fn the_address_is_the_lowercase_hex_sha256_of_the_final_jpeg() {
    let processed = process_photo(&jpeg(&marked(), None), PhotoSettings::default()).unwrap();
    assert_eq!(processed.sha256.len(), 64);
    assert!(processed
        .sha256
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert_eq!(processed.sha256, sha256_hex(&processed.jpeg));
    // The same input gives the same photo, hence the same address.
    let again = process_photo(&jpeg(&marked(), None), PhotoSettings::default()).unwrap();
    assert_eq!(again.sha256, processed.sha256);
}

#[test]
fn settings_out_of_range_are_refused() {
    let input = jpeg(&marked(), None);
    for settings in [
        PhotoSettings {
            jpeg_quality: 0,
            ..PhotoSettings::default()
        },
        PhotoSettings {
            max_edge: 0,
            ..PhotoSettings::default()
        },
    ] {
        assert!(matches!(
            process_photo(&input, settings),
            Err(PhotoError::Settings(_))
        ));
    }
}

#[test]
fn the_outbox_keeps_each_photo_once_until_it_is_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = PhotoOutbox::new(dir.path()).unwrap();
    let first = process_photo(&jpeg(&marked(), None), PhotoSettings::default()).unwrap();
    let second = process_photo(
        &jpeg(&RgbImage::from_pixel(64, 64, RED), None),
        PhotoSettings::default(),
    )
    .unwrap();
    outbox.add(&first).unwrap();
    outbox.add(&second).unwrap();
    outbox.add(&first).unwrap();
    let mut expected = vec![first.sha256.clone(), second.sha256.clone()];
    expected.sort();
    assert_eq!(outbox.pending().unwrap(), expected);
    assert_eq!(
        crate::sync_client::PendingPhotos::pending_photos(&outbox),
        2
    );
    let stored = std::fs::read(
        dir.path()
            .join("pending")
            .join(format!("{}.jpg", first.sha256)),
    )
    .unwrap();
    assert_eq!(stored, first.jpeg);
    // A reopened outbox (the app restarted) finds the same queue.
    assert_eq!(
        PhotoOutbox::new(dir.path()).unwrap().pending().unwrap(),
        expected
    );
}

#[test]
fn the_outbox_refuses_a_photo_whose_bytes_do_not_match_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = PhotoOutbox::new(dir.path()).unwrap();
    let mut photo = process_photo(&jpeg(&marked(), None), PhotoSettings::default()).unwrap();
    photo.jpeg.push(0);
    assert!(matches!(outbox.add(&photo), Err(PhotoError::Mismatch(_))));
    assert!(outbox.pending().unwrap().is_empty());
}
