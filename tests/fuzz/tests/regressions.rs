//! Inputs the fuzz targets once failed on, each run again through its
//! target (and, where it helps to read, rebuilt by hand).

use automerge::{transaction::Transactable, Automerge, ReadDoc, ScalarValue, ROOT};
use fieldnotes_fuzz::{targets, BoundaryDatabase};
use serde_json::json;
use server::auth::AuthError;
use sync::documents::read_notebook;

/// Found by `notebook`: a counter at i64::MAX, incremented by another change,
/// panicked inside automerge's map iteration ("attempt to add with
/// overflow") while the notebook was read, in debug builds.
#[test]
fn a_counter_incremented_past_its_maximum_reads_without_a_panic() {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    let sightings = tx
        .put_object(ROOT, "sightings", automerge::ObjType::Map)
        .unwrap();
    tx.put(&sightings, "count", ScalarValue::counter(i64::MAX))
        .unwrap();
    tx.commit();
    let mut tx = doc.transaction();
    tx.increment(&sightings, "count", 1).unwrap();
    tx.commit();

    let read = read_notebook(&doc);
    assert_eq!(read.records.len(), 1);
    assert!(
        read.records[0].parsed.is_err(),
        "the counter is reported as a broken record"
    );
    assert!(doc.get(&sightings, "count").unwrap().is_some());
}

/// The same, as the fuzzer's input (an arbitrary edit sequence).
#[test]
fn the_notebook_input_with_an_overflowing_counter() {
    targets::notebook(include_bytes!("findings/notebook-counter-overflow"));
}

/// Found by `boundary`: an empty MultiPolygon is valid to PostGIS but has no
/// extent, and its NULL bounds failed to decode: `POST /api/territories`
/// answered 500. It is an invalid `boundary` now.
#[test]
fn an_empty_boundary_is_refused_naming_the_field() {
    let database = BoundaryDatabase::create().expect("a database");
    database.execute(include_bytes!("findings/boundary-empty-multipolygon"));
    for empty in [
        json!({ "type": "MultiPolygon", "coordinates": [] }),
        json!({ "type": "Polygon", "coordinates": [] }),
    ] {
        let refused = database.block_on(server::auth::admin::create_described_territory(
            database.pool(),
            "Empty",
            None,
            Some(&empty),
        ));
        match refused {
            Err(AuthError::Invalid { field, message }) => {
                assert_eq!(field, "boundary");
                assert!(message.contains("empty"), "{message}");
            }
            other => panic!("{empty} was answered with {other:?}"),
        }
    }
}

/// Found by `boundary`: a polygon whose positions carry an altitude passed
/// the checks, then the 2D column refused it ("Geometry has Z dimension but
/// column does not"): `POST /api/territories` answered 500. Altitudes are
/// dropped now, and the boundary is stored in 2D.
#[test]
fn a_boundary_with_altitudes_is_stored_flat() {
    let database = BoundaryDatabase::create().expect("a database");
    database.execute(include_bytes!("findings/boundary-with-altitudes"));
    let with_altitudes = json!({
        "type": "Polygon",
        "coordinates": [[[4.83, 45.77, 170.0], [4.84, 45.77, 171.0], [4.84, 45.78, 172.0],
                         [4.83, 45.78, 173.0], [4.83, 45.77, 170.0]]],
    });
    let territory = database
        .block_on(server::auth::admin::create_described_territory(
            database.pool(),
            "Hillside",
            None,
            Some(&with_altitudes),
        ))
        .expect("a boundary with altitudes is accepted");
    let dimensions: i32 = database
        .block_on(
            sqlx::query_scalar("SELECT ST_NDims(boundary)::int FROM territories WHERE id = $1")
                .bind(territory)
                .fetch_one(database.pool()),
        )
        .expect("the stored boundary");
    assert_eq!(dimensions, 2);
}

/// Found by `chunks` under AFL++: two chunks on which automerge 0.12 itself
/// panics while `sync::documents::wire::chunk_changes` reads them — a document chunk
/// (hexane's RLE decoder, `Option::unwrap` on `None`, in
/// `BundleStorage::verify` under `Automerge::load`) and a change chunk
/// (`TryFromIntError` unwrapped in `Change::new_from_unverified`). The judge
/// refuses them, and `chunk_changes` itself catches the panic and answers
/// an error, so no caller reading a peer's bytes panics.
#[test]
fn chunks_automerge_panics_on_are_refused_by_the_judge_and_chunk_changes() {
    let committed = targets::committed_notebook();
    let rights = sync::judge::WriterRights {
        account_id: uuid::Uuid::from_u128(0x0e1),
        notebook_territories: vec![uuid::Uuid::from_u128(0x7e77)],
    };
    for chunk in [
        &include_bytes!("findings/chunk-document-rle-unwrap")[..],
        &include_bytes!("findings/chunk-change-int-conversion")[..],
    ] {
        assert!(sync::documents::wire::chunk_changes(chunk).is_err());
        let decision =
            sync::judge::authorize_notebook_changes(committed, &[chunk.to_vec()], &rights);
        assert!(
            matches!(decision, sync::judge::Decision::Refused(_)),
            "{decision:?}"
        );
    }
}
