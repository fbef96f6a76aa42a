//! Authorisation on the sync channel: a malicious automerge client tries each
//! forbidden write; each is refused with a reason, the inventory is unchanged,
//! and honest clients keep syncing. Revoking a device cuts its sync at once.

use std::time::Duration;

use anyhow::Context;
use automerge::Automerge;
use fieldnotes_tests::{
    accounts, eventually, init_test_logging, phones,
    raw_peer::{new_document_id, RawPeer},
    records, ServerProcess, TestDatabase,
};
use mobile_bridge::{Phone, PhoneError};
use schemas::{FieldRecord, RecordKind};
use serde_json::{json, Value};
use server::auth::Role;
use sqlx::PgPool;
use sync::documents::{new_notebook, put_raw_record, set_field, NotebookHeader};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the inventory holds, to compare before and after an attack.
async fn inventory(pool: &PgPool) -> anyhow::Result<Value> {
    Ok(sqlx::query_scalar(
        "SELECT jsonb_build_object(\
           'sightings', (SELECT COALESCE(jsonb_agg(to_jsonb(s) - 'materialised_at' ORDER BY id), '[]') FROM sightings s), \
           'timesheets', (SELECT COALESCE(jsonb_agg(to_jsonb(t) - 'materialised_at' ORDER BY id), '[]') FROM timesheet_entries t), \
           'invalid', (SELECT count(*) FROM invalid_records), \
           'chunks', (SELECT count(*) FROM automerge_chunks))",
    )
    .fetch_one(pool)
    .await?)
}

/// The change chunks `after` has that `before` lacks, as a sync message.
fn changes_since(before: &Automerge, after: &Automerge) -> Vec<u8> {
    let mut message = fieldnotes_tests::raw_peer::all_changes_message(after);
    message.changes = after
        .get_changes(&before.get_heads())
        .iter()
        .map(|change| change.raw_bytes().to_vec())
        .collect::<Vec<_>>()
        .into();
    message.encode()
}

/// Sends a forbidden change and expects an error naming `reason_contains`, then a close.
async fn expect_refusal(
    server: &ServerProcess,
    device: &mobile_bridge::DeviceCredential,
    doc_id: &samod::DocumentId,
    message: &[u8],
    reason_contains: &str,
) -> anyhow::Result<Vec<String>> {
    let mut peer = RawPeer::connect(&server.sync_url(), device).await?;
    peer.send_sync(doc_id, message).await?;
    let replies = peer.messages_until_closed(TIMEOUT).await?;
    let errors: Vec<String> = replies
        .iter()
        .filter(|m| m.kind == "error")
        .filter_map(|m| m.message.clone())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains(reason_contains)),
        "expected an error containing {reason_contains:?}, got {replies:?}"
    );
    Ok(errors)
}

/// Fields drop in order: the server stops before its database is dropped.
struct World {
    server: ServerProcess,
    db: TestDatabase,
    pool: PgPool,
    territory: phones::Territory,
    other_territory: phones::Territory,
    alice: phones::Volunteer,
    bob: phones::Volunteer,
    /// Alice's notebook as the server holds it, with one sighting and one timesheet entry.
    alice_phone: Phone,
    alice_sighting: uuid::Uuid,
    alice_timesheet: uuid::Uuid,
}

async fn world() -> anyhow::Result<World> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Ruisseau des Planches").await?;
    let other_territory = phones::territory(&pool, "Zone humide du Grand Large").await?;
    let alice = phones::enrol_volunteer(&pool, &territory, "Alice").await?;
    let bob = phones::enrol_volunteer(&pool, &territory, "Bob").await?;

    let mut alice_phone = Phone::new_notebook(alice.notebook(), Some(alice.device.clone())).await?;
    let sighting = records::sighting(alice.account_id, "Castor fiber", 1);
    alice_phone.record(&sighting)?;
    let timesheet = records::timesheet_json(alice.account_id);
    let timesheet_id = uuid::Uuid::parse_str(timesheet["id"].as_str().unwrap())?;
    alice_phone.record_raw(
        RecordKind::TimesheetEntry,
        &timesheet_id.to_string(),
        &timesheet,
    )?;
    alice_phone.go_online(&server.sync_url()).await?;
    alice_phone.wait_synced(TIMEOUT).await?;
    eventually(TIMEOUT, "alice's records in the inventory", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM sightings) + (SELECT count(*) FROM timesheet_entries)",
        )
        .fetch_one(&pool)
        .await?;
        Ok((n == 2).then_some(()))
    })
    .await?;
    Ok(World {
        server,
        db,
        pool,
        territory,
        other_territory,
        alice,
        bob,
        alice_phone,
        alice_sighting: sighting.id(),
        alice_timesheet: timesheet_id,
    })
}

/// After an attack: nothing changed, and honest phones still sync.
async fn honest_clients_keep_syncing(world: &World, before: &Value) -> anyhow::Result<()> {
    assert_eq!(
        &inventory(&world.pool).await?,
        before,
        "the inventory is unchanged"
    );
    world.alice_phone.record(&records::sighting(
        world.alice.account_id,
        "Anas platyrhynchos",
        3,
    ))?;
    world.alice_phone.wait_synced(TIMEOUT).await?;
    let mut bob_phone =
        Phone::new_notebook(world.bob.notebook(), Some(world.bob.device.clone())).await?;
    bob_phone.record(&records::sighting(world.bob.account_id, "Ardea cinerea", 1))?;
    bob_phone.go_online(&world.server.sync_url()).await?;
    bob_phone.wait_synced(TIMEOUT).await?;
    eventually(TIMEOUT, "the honest sightings", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings")
            .fetch_one(&world.pool)
            .await?;
        Ok((n == 3).then_some(()))
    })
    .await?;
    bob_phone.shut_down().await;
    Ok(())
}

/// One field of Alice's notebook, as a forged edit sent over `device`'s connection.
struct ForgedEdit<'a> {
    kind: RecordKind,
    record: uuid::Uuid,
    field: &'a str,
    value: Value,
}

/// Sends the forged edit, expects it refused with `reason_contains`, and checks
/// that nothing changed and honest phones still sync.
async fn forged_edit_is_refused(
    world: &World,
    device: &mobile_bridge::DeviceCredential,
    edit: ForgedEdit<'_>,
    reason_contains: &str,
) -> anyhow::Result<()> {
    let before = inventory(&world.pool).await?;
    let original = world.alice_phone.read(Automerge::clone);
    let mut forged = original.clone();
    set_field(&mut forged, edit.kind, edit.record, edit.field, &edit.value)?;
    expect_refusal(
        &world.server,
        device,
        &world.alice_phone.notebook_id(),
        &changes_since(&original, &forged),
        reason_contains,
    )
    .await?;
    honest_clients_keep_syncing(world, &before).await
}

/// Sends the changes `forged` has beyond Alice's notebook over Alice's own
/// device, expects them refused with `reason_contains`, and checks that
/// nothing changed and honest phones still sync; returns the error texts.
async fn alices_own_changes_are_refused(
    world: &World,
    original: &Automerge,
    forged: &Automerge,
    reason_contains: &str,
) -> anyhow::Result<Vec<String>> {
    let before = inventory(&world.pool).await?;
    let errors = expect_refusal(
        &world.server,
        &world.alice.device,
        &world.alice_phone.notebook_id(),
        &changes_since(original, forged),
        reason_contains,
    )
    .await?;
    honest_clients_keep_syncing(world, &before).await?;
    Ok(errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hours_declared_in_another_volunteers_name_are_refused_without_naming_anyone(
) -> anyhow::Result<()> {
    let world = world().await?;
    let before = inventory(&world.pool).await?;
    let original = world.alice_phone.read(Automerge::clone);
    let doc_id = world.alice_phone.notebook_id();
    for field in ["volunteerId", "authorId"] {
        let mut forged = original.clone();
        set_field(
            &mut forged,
            RecordKind::TimesheetEntry,
            world.alice_timesheet,
            field,
            &json!(world.bob.account_id.to_string()),
        )?;
        let errors = expect_refusal(
            &world.server,
            &world.alice.device,
            &doc_id,
            &changes_since(&original, &forged),
            &format!(
                "`{field}` of timesheetEntries/{} must be your own account id",
                world.alice_timesheet
            ),
        )
        .await?;
        assert!(
            errors
                .iter()
                .all(|e| !e.contains(&world.bob.account_id.to_string())),
            "{errors:?}"
        );
    }
    // Bob editing Alice's notebook is told no, without learning her account id.
    let mut forged = original.clone();
    set_field(
        &mut forged,
        RecordKind::Sighting,
        world.alice_sighting,
        "individualCount",
        &json!(7),
    )?;
    let errors = expect_refusal(
        &world.server,
        &world.bob.device,
        &doc_id,
        &changes_since(&original, &forged),
        "belongs to another volunteer",
    )
    .await?;
    assert!(
        errors
            .iter()
            .all(|e| !e.contains(&world.alice.account_id.to_string())),
        "{errors:?}"
    );
    honest_clients_keep_syncing(&world, &before).await
}

/// Two concurrent branches of Alice's notebook: one (losing the merge) sets
/// a coordinator's decision on her timesheet entry, the other (winning)
/// writes the entry again whole, so the merged entry shows no decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_value_in_a_concurrent_branch_that_loses_the_merge_is_refused(
) -> anyhow::Result<()> {
    let world = world().await?;
    let original = world.alice_phone.read(Automerge::clone);
    let mut losing = original
        .fork()
        .with_actor(automerge::ActorId::from([0x01; 16]));
    set_field(
        &mut losing,
        RecordKind::TimesheetEntry,
        world.alice_timesheet,
        "approvalStatus",
        &json!("approved"),
    )?;
    let mut winning = original
        .fork()
        .with_actor(automerge::ActorId::from([0xfe; 16]));
    let entry = sync::documents::read_notebook(&original)
        .records
        .into_iter()
        .find(|r| r.kind == RecordKind::TimesheetEntry)
        .context("alice's entry")?;
    put_raw_record(
        &mut winning,
        RecordKind::TimesheetEntry,
        &entry.key,
        &entry.raw,
    )?;
    let mut merged = losing;
    merged.merge(&mut winning)?;
    let shown = sync::documents::read_notebook(&merged);
    assert!(
        shown
            .records
            .iter()
            .all(|r| r.raw.get("approvalStatus").is_none()),
        "the decision must be hidden by the merge for this test to mean anything"
    );
    alices_own_changes_are_refused(&world, &original, &merged, "coordinator's decision").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_field_is_refused_naming_the_field_and_its_limit() -> anyhow::Result<()> {
    let world = world().await?;
    let original = world.alice_phone.read(Automerge::clone);
    let mut forged = original.clone();
    set_field(
        &mut forged,
        RecordKind::Sighting,
        world.alice_sighting,
        "notes",
        &json!("n".repeat(3_000_000)),
    )?;
    alices_own_changes_are_refused(
        &world,
        &original,
        &forged,
        &format!(
            "`sightings/{}.notes` is 3000000 characters long; the limit is 10000",
            world.alice_sighting
        ),
    )
    .await?;
    Ok(())
}

/// An ephemeral message (presence, cursors) for `doc_id`, as automerge-repo sends it.
fn ephemeral_message(peer: &RawPeer, doc_id: &samod::DocumentId, data: &[u8]) -> Vec<u8> {
    ::sync::protocol::encode(&::sync::protocol::Message::Ephemeral {
        sender_id: peer.peer_id.clone(),
        target_id: peer.server_peer_id.clone(),
        count: 1,
        session_id: peer.peer_id.clone(),
        document_id: ::sync::protocol::DocumentId::parse(&doc_id.to_string())
            .expect("samod's ids are base58check"),
        data: data.to_vec(),
    })
}

/// A régie auditor reads Alice's notebook but may not push ephemeral
/// messages to her phone; her own second device may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_peers_ephemeral_messages_are_not_relayed() -> anyhow::Result<()> {
    let world = world().await?;
    let doc_id = world.alice_phone.notebook_id();
    let mut alice = RawPeer::connect(&world.server.sync_url(), &world.alice.device).await?;
    alice
        .fetch(&doc_id, TIMEOUT)
        .await?
        .context("alice reads her notebook")?;
    let second_device =
        phones::enrol_second_device(&world.pool, &world.territory, &world.alice).await?;
    let mut second = RawPeer::connect(&world.server.sync_url(), &second_device).await?;
    second
        .fetch(&doc_id, TIMEOUT)
        .await?
        .context("her second device reads it")?;
    let auditor = accounts::password_actor(
        &world.pool,
        "Régie du ruisseau",
        Some((world.territory.id, Role::RegieAuditor)),
        false,
    )
    .await?;
    let mut reader = connect_session(&world.server, &auditor.token).await?;
    reader
        .fetch(&doc_id, TIMEOUT)
        .await?
        .context("the auditor reads it")?;

    let from_auditor = ephemeral_message(&reader, &doc_id, b"from the auditor");
    reader.send_bytes(from_auditor).await?;
    // Once the auditor's next message is answered, the server has handled the first.
    reader
        .fetch(&doc_id, TIMEOUT)
        .await?
        .context("the auditor reads it again")?;
    let from_second_device = ephemeral_message(&second, &doc_id, b"from alice's other phone");
    second.send_bytes(from_second_device).await?;

    let mut relayed = Vec::new();
    loop {
        let envelope = alice
            .next_envelope(TIMEOUT)
            .await?
            .context("alice's connection closed")?;
        if envelope.kind == "ephemeral" {
            let data = envelope.data.unwrap_or_default();
            let done = data == b"from alice's other phone";
            relayed.push(String::from_utf8_lossy(&data).to_string());
            if done {
                break;
            }
        }
    }
    assert_eq!(
        relayed,
        ["from alice's other phone"],
        "only the owner's device is relayed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_another_volunteers_sighting_is_refused() -> anyhow::Result<()> {
    let world = world().await?;
    // Bob got hold of Alice's notebook bytes and edits her count.
    let edit = ForgedEdit {
        kind: RecordKind::Sighting,
        record: world.alice_sighting,
        field: "individualCount",
        value: json!(99),
    };
    forged_edit_is_refused(
        &world,
        &world.bob.device,
        edit,
        "belongs to another volunteer",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_ones_own_timesheet_hours_is_refused() -> anyhow::Result<()> {
    let world = world().await?;
    let edit = ForgedEdit {
        kind: RecordKind::TimesheetEntry,
        record: world.alice_timesheet,
        field: "approvalStatus",
        value: json!("approved"),
    };
    forged_edit_is_refused(&world, &world.alice.device, edit, "coordinator's decision").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_validation_status_is_refused() -> anyhow::Result<()> {
    let world = world().await?;
    let edit = ForgedEdit {
        kind: RecordKind::Sighting,
        record: world.alice_sighting,
        field: "identificationVerificationStatus",
        value: json!("verified"),
    };
    forged_edit_is_refused(&world, &world.alice.device, edit, "coordinator's decision").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_into_another_territory_is_refused() -> anyhow::Result<()> {
    let world = world().await?;
    let before = inventory(&world.pool).await?;
    let mut notebook = new_notebook(NotebookHeader {
        territory_id: world.other_territory.id,
        owner_id: world.bob.account_id,
    });
    let sighting = records::sighting_json(world.bob.account_id, "Alcedo atthis", 1);
    put_raw_record(
        &mut notebook,
        RecordKind::Sighting,
        sighting["id"].as_str().unwrap(),
        &sighting,
    )?;
    expect_refusal(
        &world.server,
        &world.bob.device,
        &new_document_id(),
        &changes_since(&Automerge::new(), &notebook),
        "territory",
    )
    .await?;
    honest_clients_keep_syncing(&world, &before).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteer_cannot_fetch_another_volunteers_notebook() -> anyhow::Result<()> {
    let world = world().await?;
    let attempt = Phone::fetch_notebook(
        &world.server.sync_url(),
        Some(world.bob.device.clone()),
        world.alice_phone.notebook_id(),
    )
    .await;
    assert!(
        matches!(attempt, Err(PhoneError::NotFound(_))),
        "bob must not receive alice's notebook"
    );
    let _ = &world.territory;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_valid_credential_is_refused() -> anyhow::Result<()> {
    let world = world().await?;
    let forged = mobile_bridge::DeviceCredential {
        device_id: world.alice.device.device_id,
        secret: "fnd_not-the-real-credential".to_string(),
    };
    assert!(RawPeer::connect(&world.server.sync_url(), &forged)
        .await
        .is_err());
    let response = reqwest::get(world.server.http_url("/sync")).await?;
    assert_eq!(response.status().as_u16(), 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_device_closes_its_open_connection_and_refuses_the_next() -> anyhow::Result<()> {
    let world = world().await?;
    let mut open = RawPeer::connect(&world.server.sync_url(), &world.bob.device).await?;
    let revoked = server::auth::admin::revoke_device(
        &world.pool,
        world.bob.device.device_id,
        world.territory.coordinator,
    )
    .await?;
    assert!(revoked);
    let replies = open.messages_until_closed(TIMEOUT).await?;
    assert!(
        replies
            .iter()
            .any(|m| m.kind == "error"
                && m.message.as_deref().is_some_and(|t| t.contains("revoked"))),
        "the open connection is told and closed: {replies:?}"
    );
    assert!(
        RawPeer::connect(&world.server.sync_url(), &world.bob.device)
            .await
            .is_err()
    );
    Ok(())
}

/// Alice's notebook as the server holds it; then with a harmless edit of her
/// timesheet entry (a note); then with a forbidden one on top (approving it).
fn harmless_then_forbidden(world: &World) -> anyhow::Result<(Automerge, Automerge, Automerge)> {
    let original = world.alice_phone.read(Automerge::clone);
    let mut harmless = original.clone();
    set_field(
        &mut harmless,
        RecordKind::TimesheetEntry,
        world.alice_timesheet,
        "notes",
        &json!("compté deux fois"),
    )?;
    let mut forbidden = harmless.clone();
    set_field(
        &mut forbidden,
        RecordKind::TimesheetEntry,
        world.alice_timesheet,
        "approvalStatus",
        &json!("approved"),
    )?;
    Ok((original, harmless, forbidden))
}

/// Alice's notebook as the server holds it; then with one new sighting; then
/// with a second one on top.
fn two_new_sightings(world: &World) -> anyhow::Result<(Automerge, Automerge, Automerge)> {
    let original = world.alice_phone.read(Automerge::clone);
    let mut first = original.clone();
    sync::documents::put_record(
        &mut first,
        &records::sighting(world.alice.account_id, "Lutra lutra", 1),
    )?;
    let mut second = first.clone();
    sync::documents::put_record(
        &mut second,
        &records::sighting(world.alice.account_id, "Alcedo atthis", 2),
    )?;
    Ok((original, first, second))
}

/// Waits for a sync message from the server in which it asks for `wanted`
/// (the `need` of the automerge sync protocol); fails on an error or a close.
async fn expect_need(
    peer: &mut RawPeer,
    wanted: automerge::ChangeHash,
) -> anyhow::Result<Vec<fieldnotes_tests::raw_peer::Envelope>> {
    let mut seen = Vec::new();
    loop {
        let Some(envelope) = peer.next_envelope(TIMEOUT).await? else {
            anyhow::bail!(
                "the server closed the connection instead of asking for {wanted}: {seen:?}"
            );
        };
        if envelope.kind == "sync" {
            let data = envelope.data.as_deref().unwrap_or_default();
            let message = automerge::sync::Message::decode(data)?;
            if message.need.contains(&wanted) {
                return Ok(seen);
            }
        }
        anyhow::ensure!(envelope.kind != "error", "refused: {envelope:?}");
        seen.push(envelope);
    }
}

/// The hash of the one change `after` has beyond `before`.
fn only_change(before: &Automerge, after: &Automerge) -> automerge::ChangeHash {
    let changes = after.get_changes(&before.get_heads());
    assert_eq!(changes.len(), 1, "one change");
    changes[0].hash()
}

/// The automerge sync protocol sends a change before its dependency whenever
/// the receiver's Bloom filter gives a false positive for the dependency (about
/// 1 % of changes): the receiver keeps the change and asks for what it lacks.
/// The server must do the same, not wait for a dependency that only its own
/// request would bring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_sent_before_its_dependency_waits_for_it_and_then_both_are_stored(
) -> anyhow::Result<()> {
    let world = world().await?;
    let (original, first, second) = two_new_sightings(&world)?;
    let doc_id = world.alice_phone.notebook_id();
    let mut peer = RawPeer::connect(&world.server.sync_url(), &world.alice.device).await?;
    peer.send_sync(&doc_id, &changes_since(&first, &second))
        .await?;
    expect_need(&mut peer, only_change(&original, &first)).await?;
    peer.send_sync(&doc_id, &changes_since(&original, &first))
        .await?;
    eventually(TIMEOUT, "both sightings in the inventory", || async {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT scientific_name FROM sightings \
             WHERE scientific_name IN ('Lutra lutra', 'Alcedo atthis') ORDER BY 1",
        )
        .fetch_all(&world.pool)
        .await?;
        Ok((names.len() == 2).then_some(names))
    })
    .await?;
    Ok(())
}

/// A forbidden change whose dependency is missing cannot be judged yet; it
/// must not slip in unjudged when the dependency arrives, on this connection
/// or another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_change_waiting_for_its_dependency_is_refused_when_it_arrives(
) -> anyhow::Result<()> {
    let world = world().await?;
    let before = inventory(&world.pool).await?;
    let (original, harmless, forbidden) = harmless_then_forbidden(&world)?;
    let doc_id = world.alice_phone.notebook_id();
    let mut peer = RawPeer::connect(&world.server.sync_url(), &world.alice.device).await?;
    peer.send_sync(&doc_id, &changes_since(&harmless, &forbidden))
        .await?;
    expect_need(&mut peer, only_change(&original, &harmless)).await?;
    peer.send_sync(&doc_id, &changes_since(&original, &harmless))
        .await?;
    let replies = peer.messages_until_closed(TIMEOUT).await?;
    assert!(
        replies.iter().any(|m| m.kind == "error"
            && m.message
                .as_deref()
                .is_some_and(|t| t.contains("coordinator's decision"))),
        "the dependency completes a forbidden change: {replies:?}"
    );
    // The same dependency alone, on a new connection, is refused for the same reason.
    expect_refusal(
        &world.server,
        &world.alice.device,
        &doc_id,
        &changes_since(&original, &harmless),
        "coordinator's decision",
    )
    .await?;
    honest_clients_keep_syncing(&world, &before).await
}

/// Opens a sync connection with a web session, under the peer id the server
/// binds to it (`session-<id>`, as `/api/me` tells).
async fn connect_session(server: &ServerProcess, token: &str) -> anyhow::Result<RawPeer> {
    let me: Value = reqwest::Client::new()
        .get(server.http_url("/api/me"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let session_id = me["credential"]["id"].as_str().unwrap_or_default();
    RawPeer::connect_as(&server.sync_url(), token, &format!("session-{session_id}")).await
}

/// The share policy: the territory's coordinators and auditors read a
/// volunteer's notebook over sync (read-only; writes are refused by the
/// change judge, see above); the coordinator of another territory does not get
/// it, even though the notebook's owner is by then cached from the readers before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_territorys_coordinators_and_auditors_read_its_notebooks_over_sync_and_no_one_else(
) -> anyhow::Result<()> {
    let world = world().await?;
    let doc_id = world.alice_phone.notebook_id();
    let readers = [
        (world.territory.id, Role::Coordinator, true),
        (world.territory.id, Role::RegieAuditor, true),
        (world.other_territory.id, Role::Coordinator, false),
        (world.territory.id, Role::Volunteer, false),
    ];
    for (territory, role, may_read) in readers {
        let actor =
            accounts::password_actor(&world.pool, "Reader", Some((territory, role)), false).await?;
        let mut peer = connect_session(&world.server, &actor.token).await?;
        let fetched = peer.fetch(&doc_id, TIMEOUT).await?;
        let sightings: Vec<String> = fetched
            .as_ref()
            .map(|doc| {
                sync::documents::read_notebook(doc)
                    .records
                    .into_iter()
                    .filter(|r| r.kind == RecordKind::Sighting)
                    .map(|r| r.key)
                    .collect()
            })
            .unwrap_or_default();
        if may_read {
            assert_eq!(
                sightings,
                vec![world.alice_sighting.to_string()],
                "a {role:?} of the notebook's territory reads it"
            );
        } else {
            assert!(
                fetched.is_none(),
                "a {role:?} of {territory} must not receive the notebook"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_closes_the_sessions_open_sync_connection_and_refuses_the_next(
) -> anyhow::Result<()> {
    let world = world().await?;
    let coordinator = accounts::password_actor(
        &world.pool,
        "Coralie",
        Some((world.territory.id, Role::Coordinator)),
        false,
    )
    .await?;
    let mut open = connect_session(&world.server, &coordinator.token).await?;
    let peer_id = open.peer_id.clone();
    reqwest::Client::new()
        .post(world.server.http_url("/api/auth/logout"))
        .bearer_auth(&coordinator.token)
        .send()
        .await?
        .error_for_status()?;
    let replies = open.messages_until_closed(TIMEOUT).await?;
    assert!(
        replies.iter().any(|m| m.kind == "error"
            && m.message
                .as_deref()
                .is_some_and(|t| t.contains("session ended"))),
        "the open connection is told and closed: {replies:?}"
    );
    assert!(
        RawPeer::connect_as(&world.server.sync_url(), &coordinator.token, &peer_id)
            .await
            .is_err(),
        "the ended session cannot open a new sync connection"
    );
    Ok(())
}

/// Two server processes share the database. When a change arrives whose
/// dependency this process has not seen, another process may have committed
/// it: the change is judged against the database's latest state, not left
/// waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_change_whose_dependency_another_server_process_committed_is_refused_at_once(
) -> anyhow::Result<()> {
    let world = world().await?;
    let other_process = ServerProcess::start(&world.db.url)?;
    let (original, harmless, forbidden) = harmless_then_forbidden(&world)?;
    let doc_id = world.alice_phone.notebook_id();
    let mut elsewhere = RawPeer::connect(&other_process.sync_url(), &world.alice.device).await?;
    elsewhere
        .send_sync(&doc_id, &changes_since(&original, &harmless))
        .await?;
    eventually(TIMEOUT, "the other process committed the note", || async {
        let notes: Option<String> =
            sqlx::query_scalar("SELECT notes FROM timesheet_entries WHERE id = $1")
                .bind(world.alice_timesheet)
                .fetch_one(&world.pool)
                .await?;
        Ok((notes.as_deref() == Some("compté deux fois")).then_some(()))
    })
    .await?;
    expect_refusal(
        &world.server,
        &world.alice.device,
        &doc_id,
        &changes_since(&harmless, &forbidden),
        "coordinator's decision",
    )
    .await?;
    Ok(())
}

/// While a document is being created the server cannot yet tell whose it
/// is. A volunteer connected at that moment must not be given it: once the
/// notebook is stored, its owner decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_created_while_another_volunteer_is_connected_is_not_shared_with_them(
) -> anyhow::Result<()> {
    let world = world().await?;
    let mut bob = RawPeer::connect(&world.server.sync_url(), &world.bob.device).await?;
    let carol = phones::enrol_volunteer(&world.pool, &world.territory, "Carol").await?;
    let mut carol_phone = Phone::new_notebook(carol.notebook(), Some(carol.device.clone())).await?;
    carol_phone.record(&records::sighting(carol.account_id, "Bufo bufo", 2))?;
    carol_phone.go_online(&world.server.sync_url()).await?;
    carol_phone.wait_synced(TIMEOUT).await?;
    let fetched = bob.fetch(&carol_phone.notebook_id(), TIMEOUT).await?;
    assert!(
        fetched.is_none(),
        "bob, connected while carol's notebook was created, must not receive it"
    );
    carol_phone.shut_down().await;
    Ok(())
}

/// The server records, for each change, the device whose connection
/// delivered it, whatever `deviceId` the records claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_is_recorded_as_delivered_by_the_device_that_sent_it() -> anyhow::Result<()> {
    let world = world().await?;
    let doc_id = world.alice_phone.notebook_id();
    let path = format!("/api/documents/{doc_id}");
    let token = world.alice.device.secret.clone();
    let original = world.alice_phone.read(Automerge::clone);
    let receipts = |document: &Value| -> Vec<(String, String)> {
        document["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["changeHash"].as_str().unwrap().to_string(),
                    r["deviceId"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let (_, document) = world.server.as_(&token).get(&path).await?;
    let mut expected: Vec<(String, String)> = original
        .get_changes(&[])
        .iter()
        .map(|c| {
            (
                c.hash().to_string(),
                world.alice.device.device_id.to_string(),
            )
        })
        .collect();
    let mut got = receipts(&document);
    expected.sort();
    got.sort();
    assert_eq!(
        got, expected,
        "every change of Alice's phone, delivered by it"
    );

    let second_device =
        phones::enrol_second_device(&world.pool, &world.territory, &world.alice).await?;
    let mut edited = original.clone();
    set_field(
        &mut edited,
        RecordKind::Sighting,
        world.alice_sighting,
        "notes",
        &json!("vu depuis le pont"),
    )?;
    let mut second = RawPeer::connect(&world.server.sync_url(), &second_device).await?;
    second
        .send_sync(&doc_id, &changes_since(&original, &edited))
        .await?;
    let hash = only_change(&original, &edited).to_string();
    let receipt = eventually(
        TIMEOUT,
        "the receipt of the second device's change",
        || async {
            let (_, document) = world.server.as_(&token).get(&path).await?;
            Ok(receipts(&document).into_iter().find(|(h, _)| *h == hash))
        },
    )
    .await?;
    assert_eq!(receipt.1, second_device.device_id.to_string());
    Ok(())
}

/// One credential cannot open sync connections without bound, nor create
/// notebooks without bound; the limits are named, and an honest volunteer
/// syncs meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_credential_can_open_only_so_many_connections_and_create_only_so_many_notebooks(
) -> anyhow::Result<()> {
    use server::sync::access::{MAX_CONNECTIONS_PER_CREDENTIAL, MAX_NEW_DOCUMENTS_PER_HOUR};
    let world = world().await?;
    let before = inventory(&world.pool).await?;
    let mut open = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_CREDENTIAL {
        open.push(RawPeer::connect(&world.server.sync_url(), &world.bob.device).await?);
    }
    let upgrade = reqwest::Client::new()
        .get(world.server.http_url("/sync"))
        .bearer_auth(&world.bob.device.secret)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await?;
    assert_eq!(upgrade.status(), 429);
    let body: Value = upgrade.json().await?;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("the limit is {MAX_CONNECTIONS_PER_CREDENTIAL}"))),
        "{body}"
    );

    let peer = &mut open[0];
    let header = world.bob.notebook();
    for created in 0..=MAX_NEW_DOCUMENTS_PER_HOUR {
        let notebook = new_notebook(header);
        let doc_id = new_document_id();
        let message = fieldnotes_tests::raw_peer::all_changes_message(&notebook).encode();
        peer.send_sync(&doc_id, &message).await?;
        if created < MAX_NEW_DOCUMENTS_PER_HOUR {
            eventually(TIMEOUT, "the new notebook stored", || async {
                let stored: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM documents WHERE doc_id = $1)")
                        .bind(doc_id.to_string())
                        .fetch_one(&world.pool)
                        .await?;
                Ok(stored.then_some(()))
            })
            .await?;
        }
    }
    let replies = peer.messages_until_closed(TIMEOUT).await?;
    assert!(
        replies.iter().any(|m| m.kind == "error"
            && m.message.as_deref().is_some_and(|t| t.contains(&format!(
                "more than {MAX_NEW_DOCUMENTS_PER_HOUR} new documents in an hour"
            )))),
        "{replies:?}"
    );
    let notebooks: i64 = sqlx::query_scalar("SELECT count(*) FROM documents WHERE owner_id = $1")
        .bind(world.bob.account_id)
        .fetch_one(&world.pool)
        .await?;
    assert_eq!(notebooks, MAX_NEW_DOCUMENTS_PER_HOUR as i64);
    drop(open);
    assert_eq!(
        inventory(&world.pool).await?["sightings"],
        before["sightings"]
    );
    // Another volunteer syncs as usual.
    world.alice_phone.record(&records::sighting(
        world.alice.account_id,
        "Anas platyrhynchos",
        3,
    ))?;
    world.alice_phone.wait_synced(TIMEOUT).await?;
    eventually(TIMEOUT, "alice's new sighting", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings")
            .fetch_one(&world.pool)
            .await?;
        Ok((n == 2).then_some(()))
    })
    .await?;
    Ok(())
}
