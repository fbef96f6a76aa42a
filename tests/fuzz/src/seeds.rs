//! The seed corpus of each target: valid inputs a mutation starts from. The
//! protocol seeds are the frames recorded from the JavaScript automerge-repo
//! client and server (sync/tests/frames, made by tests/js/record-frames.mjs);
//! the others are made here, so they follow the code that writes them.

use std::{io::Cursor, path::PathBuf};

use automerge::Automerge;
use image::{ImageFormat, RgbImage};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sync::protocol::{decode, IncomingSync, Limits, Message, SyncDataLimits};

/// Seeds of the structured targets, whose bytes are read as choices (which
/// edit, which key, which value): any bytes make a valid input, these give
/// mutations somewhere to start.
const STRUCTURED_SEEDS: u64 = 16;
const STRUCTURED_SEED_BYTES: usize = 512;

pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "protocol" => recorded_frames(),
        "sync-message" => sync_messages(),
        "chunks" | "inflation" => chunks(),
        "judge" | "boundary" => structured(),
        "notebook" => {
            let mut seeds = structured();
            // A leading odd byte makes the target load the rest as a document.
            let mut saved = vec![1];
            saved.extend(notebook().save());
            seeds.push(saved);
            seeds
        }
        "species-csv" => species_lists(),
        "photo-upload" | "photo-phone" => photos(),
        _ => Vec::new(),
    }
}

fn frames_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sync/tests/frames")
}

/// Every recorded frame, in wire order.
pub fn recorded_frames() -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(frames_dir())
        .expect("the recorded frames (sync/tests/frames)")
        .map(|entry| entry.expect("a frame file").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cbor"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read(path).expect("reading a recorded frame"))
        .collect()
}

/// The automerge sync messages inside the recorded `sync` and `request` frames.
fn sync_messages() -> Vec<Vec<u8>> {
    recorded_frames()
        .iter()
        .filter_map(|frame| match decode(frame, &Limits::default()) {
            Ok(Message::Sync { data, .. } | Message::Request { data, .. }) => Some(data),
            _ => None,
        })
        .collect()
}

/// The change chunks the recorded sync messages carry, and a notebook's
/// changes one by one, as a run, and saved whole.
fn chunks() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = sync_messages()
        .iter()
        .filter_map(|data| {
            let limits = SyncDataLimits {
                max_chunks: usize::MAX,
                max_inflated_bytes: usize::MAX,
            };
            IncomingSync::decode(data, limits).ok()?.changes().ok()
        })
        .flatten()
        .collect();
    let doc = notebook();
    seeds.extend(doc.get_changes(&[]).iter().map(|c| c.raw_bytes().to_vec()));
    seeds.push(doc.save_after(&[]));
    seeds.push(doc.save());
    seeds
}

/// The committed notebook the judge starts from.
fn notebook() -> Automerge {
    crate::targets::committed_notebook().fork()
}

fn structured() -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    (0..STRUCTURED_SEEDS)
        .map(|_| (0..STRUCTURED_SEED_BYTES).map(|_| rng.random()).collect())
        .collect()
}

/// Lists in each shape the import reads: TAXREF's tab-separated extract,
/// `;` and `,` with quotes, a byte-order mark, English column names.
fn species_lists() -> Vec<Vec<u8>> {
    [
        "REGNE\tCD_NOM\tCD_REF\tRANG\tLB_NOM\tLB_AUTEUR\tNOM_VERN\n\
         Animalia\t60015\t60015\tES\tMyotis daubentonii\t(Kuhl, 1817)\tMurin de Daubenton\n\
         Animalia\t3764\t3764\tES\tParus major\tLinnaeus, 1758\tMésange charbonnière\n",
        "\u{feff}CD_NOM;LB_NOM;NOM_VERN;RANG\n\
         212;Bufo bufo;\"Crapaud commun; épineux\";ES\n\
         ;Rana temporaria;Grenouille rousse;ES\n",
        "taxonId,scientificName,vernacularName,rank\n\
         1,\"Erinaceus europaeus\",Hérisson,ES\n\
         2,Vulpes vulpes,\"Renard \"\"roux\"\"\",ES\n",
        "LB_NOM\nPipistrellus pipistrellus\nPipistrellus kuhlii\n",
    ]
    .iter()
    .map(|list| list.as_bytes().to_vec())
    .collect()
}

/// A small photo as JPEG and as PNG.
fn photos() -> Vec<Vec<u8>> {
    let image = RgbImage::from_fn(24, 16, |x, y| {
        image::Rgb([(x * 10) as u8, (y * 15) as u8, 90])
    });
    [ImageFormat::Jpeg, ImageFormat::Png]
        .into_iter()
        .map(|format| {
            let mut bytes = Cursor::new(Vec::new());
            image
                .write_to(&mut bytes, format)
                .expect("encoding a seed photo");
            bytes.into_inner()
        })
        .collect()
}
