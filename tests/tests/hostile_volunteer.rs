//! What one hostile volunteer tried with a valid credential and a raw peer,
//! and what stops it now: text PostgreSQL cannot store (U+0000 in a field's
//! name or value, over sync, in HTTP bodies, query strings and CSV imports)
//! refused with the field and the character named, and the audit trail going
//! on; decompression bombs refused before they inflate, the server's memory
//! bounded whatever arrives; peers without the right refused before any work.

use std::time::Duration;

use automerge::{transaction::Transactable, Automerge, ReadDoc};
use fieldnotes_tests::{
    eventually,
    raw_peer::{all_changes_message, deflate_bomb_chunk, session_peer_id, RawPeer},
    records,
    world::World,
};
use mobile_bridge::Phone;
use schemas::FieldRecord;
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The shared [`World`] — a territory, its coordinator (called Camille), a
/// régie auditor, Alice and Bob — with Alice's phone holding one synced
/// sighting. The world drops first: the server stops before the phone.
struct AlicesWorld {
    world: World,
    alice_phone: Phone,
    alice_sighting: uuid::Uuid,
}

impl std::ops::Deref for AlicesWorld {
    type Target = World;

    fn deref(&self) -> &World {
        &self.world
    }
}

async fn world() -> anyhow::Result<AlicesWorld> {
    let world = World::builder("Friche des Lilas")
        .coordinator("Camille")
        .auditor("Régie")
        .volunteer("Alice")
        .volunteer("Bob")
        .build()
        .await?;
    let alice = world.volunteer("Alice");
    let mut alice_phone = Phone::new_notebook(alice.notebook(), Some(alice.device.clone())).await?;
    let sighting = records::sighting(alice.account_id, "Myotis daubentonii", 1);
    alice_phone.record(&sighting)?;
    alice_phone.go_online(&world.server.sync_url()).await?;
    alice_phone.wait_synced(TIMEOUT).await?;
    Ok(AlicesWorld {
        world,
        alice_phone,
        alice_sighting: sighting.id(),
    })
}

/// Sends `data` (an automerge sync message) about Alice's notebook over
/// `peer`; the `error` texts the server sent before it closed.
async fn refusals(
    mut peer: RawPeer,
    world: &AlicesWorld,
    data: &[u8],
) -> anyhow::Result<Vec<String>> {
    peer.send_sync(&world.alice_phone.notebook_id(), data)
        .await?;
    let replies = peer.messages_until_closed(TIMEOUT).await?;
    Ok(replies
        .into_iter()
        .filter(|m| m.kind == "error")
        .filter_map(|m| m.message)
        .collect())
}

/// A sync message carrying `chunk` after Alice's notebook as the server has it.
fn message_with_chunk(notebook: &Automerge, chunk: Vec<u8>) -> Vec<u8> {
    let mut message = all_changes_message(notebook);
    message.changes = vec![chunk].into();
    message.encode()
}

/// Alice's own notebook, with her sighting's record edited by `edit`; the
/// changes since the server's copy, as a sync message.
fn alices_edit(
    world: &AlicesWorld,
    edit: impl FnOnce(
        &mut automerge::transaction::Transaction<'_>,
        &automerge::ObjId,
    ) -> Result<(), automerge::AutomergeError>,
) -> anyhow::Result<Vec<u8>> {
    let original = world.alice_phone.read(Automerge::clone);
    let mut forged = original.clone();
    let (_, sightings) = forged.get(automerge::ROOT, "sightings")?.unwrap();
    let (_, record) = forged
        .get(&sightings, world.alice_sighting.to_string())?
        .unwrap();
    forged
        .transact::<_, _, automerge::AutomergeError>(|tx| edit(tx, &record))
        .map_err(|failure| anyhow::anyhow!("{:?}", failure.error))?;
    let mut message = all_changes_message(&forged);
    message.changes = forged
        .get_changes(&original.get_heads())
        .iter()
        .map(|change| change.raw_bytes().to_vec())
        .collect::<Vec<_>>()
        .into();
    Ok(message.encode())
}

/// The probe's first HIGH finding: a field whose name holds U+0000 was
/// accepted, then stopped the audit trail of every territory for good. It is
/// refused now, naming the field and the character, and the trail goes on:
/// a later honest commit is chained and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_name_holding_nul_is_refused_and_the_audit_trail_goes_on() -> anyhow::Result<()> {
    let world = world().await?;
    let in_name = alices_edit(&world, |tx, record| tx.put(record, "notes\0x", "hidden"))?;
    let peer = RawPeer::connect(&world.server.sync_url(), &world.volunteer("Alice").device).await?;
    let errors = refusals(peer, &world, &in_name).await?;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("notes{U+0000}x") && e.contains("U+0000")),
        "the refusal names the field and the character: {errors:?}"
    );
    let in_value = alices_edit(&world, |tx, record| tx.put(record, "notes", "a\0b"))?;
    let peer = RawPeer::connect(&world.server.sync_url(), &world.volunteer("Alice").device).await?;
    let errors = refusals(peer, &world, &in_value).await?;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/notes`") && e.contains("U+0000")),
        "{errors:?}"
    );

    // Alice's phone, honest, syncs a new sighting: it is audited and chained.
    let later = records::sighting(world.volunteer("Alice").account_id, "Alcedo atthis", 2);
    world.alice_phone.record(&later)?;
    world.alice_phone.wait_synced(TIMEOUT).await?;
    let path = format!("/api/territories/{}/audit/verification", world.territory.id);
    let (status, verification) = world
        .server
        .as_(&world.coordinator().token)
        .get(&path)
        .await?;
    assert_eq!(status, 200, "{verification}");
    assert_eq!(verification["intact"], true, "{verification}");
    assert_eq!(verification["setAsideCount"], 0, "{verification}");
    let chained: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE territory_id = $1 AND record_id = $2",
    )
    .bind(world.territory.id)
    .bind(later.id())
    .fetch_one(&world.pool)
    .await?;
    assert_eq!(chained, 1, "the later sighting's entry is in the chain");
    let (status, health) = world.server.anonymous().get("/health").await?;
    assert_eq!(
        (status, &health["audit"]["setAsideCommits"]),
        (200, &json!(0))
    );
    Ok(())
}

/// The peak resident memory of process `pid` (VmHWM), in bytes.
fn peak_memory(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kilobytes: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{pid}/status"))?;
    Ok(kilobytes * 1024)
}

/// What the server may hold at its peak after both bombs: its start, a few
/// 16 MiB messages in flight (the frame, the decoded message, the chunk
/// copied for the judge) and the inflation limit (64 MiB) — far below the
/// gigabyte a 1 MB bomb asked for before, and the 16 GiB of a 16 MiB one.
const PEAK_MEMORY_BOUND: u64 = 600 * 1024 * 1024;

/// The probe's second HIGH finding: a compressed chunk of zeros was inflated
/// before any limit applied (1.04 MB took the server from 1.16 to 4.23 GB).
/// A 1 MB bomb and a 16 MiB one (about 1 and 16 GiB of zeros) are refused
/// with an `error` naming the limit, nothing applied, the server's peak
/// memory under a stated bound, `/health` answering and honest phones
/// syncing after. A régie auditor (read-only) and Bob (not the notebook's
/// owner) sending one are refused before it is inflated: for the reason that
/// they may not write there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bombs_are_refused_before_they_inflate_and_memory_stays_bounded(
) -> anyhow::Result<()> {
    let world = world().await?;
    let notebook = world.alice_phone.read(Automerge::clone);
    let chunks_before: i64 = sqlx::query_scalar("SELECT count(*) FROM automerge_chunks")
        .fetch_one(&world.pool)
        .await?;
    for size in [1024 * 1024, 16 * 1024 * 1024 - 64 * 1024] {
        let bomb = message_with_chunk(&notebook, deflate_bomb_chunk(size));
        let peer =
            RawPeer::connect(&world.server.sync_url(), &world.volunteer("Alice").device).await?;
        let errors = refusals(peer, &world, &bomb).await?;
        assert!(
            errors.iter().any(|e| e.contains("inflate to more than")
                && e.contains(&sync::documents::wire::DEFAULT_MAX_INFLATED_BYTES.to_string())),
            "a {size}-byte bomb is refused naming the limit: {errors:?}"
        );
    }
    let peak = peak_memory(world.server.pid())?;
    assert!(
        peak < PEAK_MEMORY_BOUND,
        "the server peaked at {} MiB (bound {} MiB)",
        peak >> 20,
        PEAK_MEMORY_BOUND >> 20
    );

    let bomb = message_with_chunk(&notebook, deflate_bomb_chunk(1024 * 1024));
    let auditor = RawPeer::connect_as(
        &world.server.sync_url(),
        &world.auditor().token,
        &session_peer_id(&world.server, &world.auditor().token).await?,
    )
    .await?;
    let errors = refusals(auditor, &world, &bomb).await?;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("may read documents, not change them")),
        "the auditor is refused for having no right to write, before inflation: {errors:?}"
    );
    let bob = RawPeer::connect(&world.server.sync_url(), &world.volunteer("Bob").device).await?;
    let errors = refusals(bob, &world, &bomb).await?;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("belongs to another volunteer")),
        "{errors:?}"
    );

    let chunks_after: i64 = sqlx::query_scalar("SELECT count(*) FROM automerge_chunks")
        .fetch_one(&world.pool)
        .await?;
    assert_eq!(chunks_after, chunks_before, "nothing was stored");
    let (status, _) = world.server.anonymous().get("/health").await?;
    assert_eq!(status, 200);
    world.alice_phone.record(&records::sighting(
        world.volunteer("Alice").account_id,
        "Anas crecca",
        4,
    ))?;
    world.alice_phone.wait_synced(TIMEOUT).await?;
    Ok(())
}

/// The sync peer id the server binds to a session's token.
/// U+0000 through HTTP: in a JSON body's value and key, in a query string, in
/// a species list: a 400 naming the field (or the line and column), nothing
/// written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_in_http_bodies_queries_and_csv_imports_are_refused_naming_the_field(
) -> anyhow::Result<()> {
    let world = world().await?;
    let token = world.coordinator().token.as_str();
    let sites = format!("/api/territories/{}/sites", world.territory.id);
    let (status, body) = world
        .server
        .as_(token)
        .post(
            &sites,
            &json!({"name": "Mare\u{0}", "decimalLatitude": 45.7, "decimalLongitude": 4.8}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "name");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("U+0000"));
    let sites_now: i64 = sqlx::query_scalar("SELECT count(*) FROM sites WHERE territory_id = $1")
        .bind(world.territory.id)
        .fetch_one(&world.pool)
        .await?;
    assert_eq!(sites_now, 0, "nothing written");

    let records = format!(
        "/api/territories/{}/review/records?taxon=Myotis%00",
        world.territory.id
    );
    let (status, body) = world.server.as_(token).get(&records).await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("taxon")),
        "{body}"
    );

    let list = format!("/api/territories/{}/species-list", world.territory.id);
    let response = reqwest::Client::new()
        .put(world.server.http_url(&list))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body("CD_NOM;LB_NOM\n60400;Myotis daubentonii\n3764;Parus\u{0} major\n")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await?;
    assert_eq!(body["error"]["field"], "LB_NOM", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 3: LB_NOM holds the character U+0000"),
        "{body}"
    );
    eventually(TIMEOUT, "the server still answers", || async {
        Ok((world.server.anonymous().get("/health").await?.0 == 200).then_some(()))
    })
    .await?;
    Ok(())
}
