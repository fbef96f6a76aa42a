//! The fuzz targets: each takes the fuzzer's bytes, hands them (or what they
//! describe) to the code that parses input from outside, and panics only when
//! that code panics or breaks a property stated here. A refusal is a pass.

use std::sync::OnceLock;

use arbitrary::Unstructured;
use automerge::Automerge;
use schemas::FieldRecord;
use serde_json::{json, Value};
use sync::{
    documents::{
        new_notebook, put_record, read_header, read_notebook,
        wire::{chunk_changes, InflationBudget},
        NotebookHeader,
    },
    judge::{authorize_notebook_changes, Decision, WriterRights},
    protocol::{decode, encode, IncomingSync, Limits, Message, SyncDataLimits},
};
use uuid::Uuid;

use crate::edits;

/// Change chunks one sync message may carry in these targets: the server's
/// own bound is larger, but a fuzzer's message of a few kilobytes never
/// comes near it, and a smaller one keeps executions fast.
const MAX_CHUNKS: usize = 1_000;

/// What the chunks of one message may inflate to in these targets: far
/// below the server's (64 MiB), so that an input inflating past it is
/// refused quickly and executions stay fast.
const MAX_INFLATED_BYTES: usize = 1024 * 1024;

/// Inflated bytes a refusal may have counted beyond the limit: one read of
/// the counting buffer (32 KiB) and a chunk's header and metadata.
const INFLATION_SLACK: usize = 64 * 1024;

/// Protocol frames: a frame that decodes encodes back to one that decodes
/// to the same message.
pub fn protocol(data: &[u8]) {
    let limits = Limits::default();
    if let Ok(message) = decode(data, &limits) {
        let again = decode(&encode(&message), &limits)
            .unwrap_or_else(|error| panic!("{message:?} re-encoded does not decode: {error}"));
        assert_eq!(again, message, "a decoded frame changed in a round trip");
        if let Message::Sync { data, .. } | Message::Request { data, .. } = &message {
            sync_message(data);
        }
    }
}

/// The `data` of a `sync` message: an automerge sync message, whose change
/// chunks are then read as the judge reads them.
pub fn sync_message(data: &[u8]) {
    let limits = SyncDataLimits {
        max_chunks: MAX_CHUNKS,
        max_inflated_bytes: MAX_INFLATED_BYTES,
    };
    if let Ok(Ok(chunks)) = IncomingSync::decode(data, limits).map(|message| message.changes()) {
        for chunk in chunks {
            let _ = chunk_changes(&chunk);
        }
    }
}

/// Counting what chunks inflate to (`sync::documents::wire::InflationBudget`), before
/// automerge sees them: never more than the limit (and one buffer) counted,
/// whatever the bytes; what passes is then read as the judge reads it.
pub fn inflation(data: &[u8]) {
    let mut budget = InflationBudget::new(MAX_INFLATED_BYTES);
    let passed = budget.charge(data).is_ok();
    assert!(
        budget.spent() <= MAX_INFLATED_BYTES + INFLATION_SLACK,
        "counted {} bytes past a limit of {MAX_INFLATED_BYTES}",
        budget.spent()
    );
    if passed {
        let _ = chunk_changes(data);
    }
}

/// One change chunk (change, run of changes, bundle or document).
pub fn chunks(data: &[u8]) {
    let _ = chunk_changes(data);
}

/// The notebook every judge execution starts from: its owner, territory and one sighting.
struct Committed {
    doc: Automerge,
    header: NotebookHeader,
    /// Ids a hostile change would use: the owner's, a stranger's, the territory's, a record's.
    ids: Vec<String>,
}

fn committed() -> &'static Committed {
    static COMMITTED: OnceLock<Committed> = OnceLock::new();
    COMMITTED.get_or_init(|| {
        let header = NotebookHeader {
            territory_id: Uuid::from_u128(0x7e77),
            owner_id: Uuid::from_u128(0x0e1),
        };
        let stranger = Uuid::from_u128(0x57a);
        let mut doc = new_notebook(header);
        let record = Uuid::from_u128(0x5e1);
        let sighting = schemas::Sighting::from_raw(&json!({
            "id": record, "occurrenceID": format!("urn:uuid:{record}"),
            "scientificName": "Parus major", "eventDate": "2026-05-01T10:00:00+02:00",
            "decimalLatitude": 45.75, "decimalLongitude": 4.85, "individualCount": 2,
            "recordedBy": "Camille", "authorId": header.owner_id, "deviceId": "phone-1",
            "createdAt": "2026-05-01T10:00:00+02:00", "modifiedAt": "2026-05-01T10:00:00+02:00",
        }))
        .expect("the committed sighting is valid");
        put_record(&mut doc, &sighting).expect("writing the committed sighting");
        let ids = [header.owner_id, stranger, header.territory_id, record]
            .iter()
            .map(Uuid::to_string)
            .collect();
        Committed { doc, header, ids }
    })
}

/// The notebook the judge and the reader start from.
pub fn committed_notebook() -> &'static Automerge {
    &committed().doc
}

/// The sync judge on arbitrary changes to a committed notebook, sent by its
/// owner or by someone else, whole, in runs, as a document or with changes
/// held back (so some wait for dependencies), plus arbitrary bytes as one
/// more chunk. It decides or refuses; when it allows changes, they come from
/// the owner with a right in the territory, and the header is unchanged.
pub fn judge(data: &[u8]) {
    let committed = committed();
    let mut u = Unstructured::new(data);
    let Ok((chunks, rights)) = judge_input(committed, &mut u) else {
        return;
    };
    match authorize_notebook_changes(&committed.doc, &chunks, &rights) {
        Decision::Refused(_) => {}
        Decision::Allowed {
            applied,
            applied_to,
            ..
        } => {
            if !applied.is_empty() {
                assert!(
                    rights.account_id == committed.header.owner_id
                        && rights
                            .notebook_territories
                            .contains(&committed.header.territory_id),
                    "changes allowed from {rights:?}, who may not write this notebook"
                );
            }
            if let Some(after) = applied_to {
                assert_eq!(
                    read_header(&*after),
                    Ok(committed.header),
                    "an allowed change altered the notebook's header"
                );
                let _ = read_notebook(&*after);
            }
        }
    }
}

fn judge_input(
    committed: &Committed,
    u: &mut Unstructured,
) -> arbitrary::Result<(Vec<Vec<u8>>, WriterRights)> {
    let owner = committed.header.owner_id;
    let rights = match u.int_in_range(0..=3)? {
        0 => WriterRights {
            account_id: Uuid::from_u128(0x57a),
            notebook_territories: vec![committed.header.territory_id],
        },
        1 => WriterRights {
            account_id: owner,
            notebook_territories: Vec::new(),
        },
        _ => WriterRights {
            account_id: owner,
            notebook_territories: vec![committed.header.territory_id],
        },
    };
    let mut writer = committed.doc.fork();
    // automerge itself may panic on an edit sequence it should refuse; that
    // is not the judge's input, so such an input is skipped.
    let edited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        edits::edit_with_branches(&mut writer, u, &committed.ids)
    }));
    match edited {
        Ok(result) => result?,
        Err(_) => return Err(arbitrary::Error::IncorrectFormat),
    }
    let since = committed.doc.get_heads();
    let changes = writer.get_changes(&since);
    let mut chunks: Vec<Vec<u8>> = match u.int_in_range(0..=3)? {
        0 => changes.iter().map(|c| c.raw_bytes().to_vec()).collect(),
        1 => vec![writer.save_after(&since)],
        2 => vec![writer.save()],
        _ => {
            // Some changes held back: the others wait for them.
            let mut kept = Vec::new();
            for change in &changes {
                if u.arbitrary()? {
                    kept.push(change.raw_bytes().to_vec());
                }
            }
            kept
        }
    };
    if u.ratio(1, 4)? {
        chunks.push(u.bytes(u.len())?.to_vec());
    }
    Ok((chunks, rights))
}

/// Reading a notebook: a document loaded from arbitrary bytes, or a notebook
/// after arbitrary edits from several actors with concurrent branches.
pub fn notebook(data: &[u8]) {
    let committed = committed();
    let mut u = Unstructured::new(data);
    let Ok(from_bytes) = u.arbitrary::<bool>() else {
        return;
    };
    let doc = if from_bytes {
        match Automerge::load(u.take_rest()) {
            Ok(doc) => doc,
            Err(_) => return,
        }
    } else {
        let mut doc = committed.doc.fork();
        let edited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            edits::edit_with_branches(&mut doc, &mut u, &committed.ids)
        }));
        if !matches!(edited, Ok(Ok(()))) {
            return;
        }
        doc
    };
    let _ = read_notebook(&doc);
}

/// A TAXREF-style species list, as a coordinator uploads it: when it is
/// accepted, every species has its own key.
pub fn species_csv(data: &[u8]) {
    if let Ok(species) = server::species::import::parse_species_list(data) {
        let mut keys: Vec<String> = species.iter().map(|s| s.key()).collect();
        keys.sort();
        let count = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), count, "an accepted list holds a key twice");
    }
}

/// A photo uploaded to the server (`PUT /api/photos/{sha256}`), under its
/// true address: refused or decoded, with a thumbnail.
pub fn photo_upload(data: &[u8]) {
    let address = mobile_bridge::photos::sha256_hex(data);
    let _ = server::photos::verify::verify(&address, data.to_vec());
}

/// A photo a phone attaches: refused, or decoded, shrunk and re-encoded.
pub fn photo_phone(data: &[u8]) {
    let _ = mobile_bridge::photos::process_photo(data, Default::default());
}

/// An arbitrary GeoJSON-like geometry for a territory boundary: types that
/// are and are not polygons, rings open and closed, too short, crossing,
/// out of range, nested wrongly.
pub fn geometry(u: &mut Unstructured) -> arbitrary::Result<Value> {
    fn number(u: &mut Unstructured) -> arbitrary::Result<Value> {
        Ok(match u.int_in_range(0..=4)? {
            0 => json!(u.int_in_range(-200..=200)?),
            1 => json!(f64::from(u.int_in_range(-18_000..=18_000i32)?) / 100.0),
            2 => json!(u.arbitrary::<f64>()?),
            3 => json!(4.83 + f64::from(u.int_in_range(0..=10u8)?) / 1000.0),
            _ => Value::String(u.arbitrary()?),
        })
    }
    fn position(u: &mut Unstructured) -> arbitrary::Result<Value> {
        let dimensions = if u.ratio(7, 8)? {
            2
        } else {
            u.int_in_range(0..=4)?
        };
        Ok(Value::Array(
            (0..dimensions)
                .map(|_| number(u))
                .collect::<arbitrary::Result<_>>()?,
        ))
    }
    fn ring(u: &mut Unstructured) -> arbitrary::Result<Value> {
        let mut points: Vec<Value> = (0..u.int_in_range(0..=8)?)
            .map(|_| position(u))
            .collect::<arbitrary::Result<_>>()?;
        if u.ratio(3, 4)? {
            if let Some(first) = points.first().cloned() {
                points.push(first);
            }
        }
        Ok(Value::Array(points))
    }
    fn many(
        u: &mut Unstructured,
        max: u8,
        item: fn(&mut Unstructured) -> arbitrary::Result<Value>,
    ) -> arbitrary::Result<Value> {
        Ok(Value::Array(
            (0..u.int_in_range(0..=max)?)
                .map(|_| item(u))
                .collect::<arbitrary::Result<_>>()?,
        ))
    }
    let kind = *u.choose(&[
        "Polygon",
        "MultiPolygon",
        "Point",
        "LineString",
        "GeometryCollection",
        "polygon",
    ])?;
    let coordinates = match u.int_in_range(0..=4)? {
        0 => many(u, 3, ring)?,
        1 => many(u, 2, |u| many(u, 2, ring))?,
        2 => position(u)?,
        3 => number(u)?,
        _ => Value::Null,
    };
    let mut geometry = json!({ "type": kind, "coordinates": coordinates });
    if u.ratio(1, 8)? {
        geometry["crs"] =
            json!({ "type": "name", "properties": { "name": u.arbitrary::<String>()? } });
    }
    if u.ratio(1, 16)? {
        geometry.as_object_mut().expect("an object").remove("type");
    }
    Ok(geometry)
}

/// A territory boundary (`POST /api/territories`), checked by PostGIS: the
/// answer is the territory or an invalid `boundary` — never a database
/// error, which the API would answer with a 500.
pub async fn boundary(pool: &sqlx::PgPool, data: &[u8]) {
    let Ok(geometry) = geometry(&mut Unstructured::new(data)) else {
        return;
    };
    match server::auth::admin::create_described_territory(pool, "Fuzz", None, Some(&geometry)).await
    {
        Ok(_) | Err(server::auth::AuthError::Invalid { .. }) => {}
        Err(error) => panic!("boundary {geometry} was answered with {error:?}"),
    }
}
