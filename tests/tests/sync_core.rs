//! The sync core as a whole: documents leave memory when idle and come back
//! whole, two server processes on one database push each other's commits to
//! their peers, a peer over a limit is told which, and a small storm of
//! phones ends with every sighting in the inventory exactly once.

use std::{collections::BTreeSet, time::Duration};

use automerge::{sync::SyncDoc, Automerge, ReadDoc, ROOT};
use fieldnotes_tests::{
    eventually, init_test_logging, phones,
    raw_peer::{new_document_id, RawPeer},
    records,
    world::World,
    ServerProcess, TestDatabase,
};
use mobile_bridge::Phone;
use schemas::FieldRecord;
use sqlx::PgPool;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn sighting_ids(pool: &PgPool) -> anyhow::Result<BTreeSet<Uuid>> {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM sightings")
        .fetch_all(pool)
        .await?;
    Ok(ids.into_iter().collect())
}

/// The sighting ids a notebook holds.
fn notebook_sightings(doc: &Automerge) -> BTreeSet<Uuid> {
    let Ok(Some((_, sightings))) = doc.get(ROOT, "sightings") else {
        return BTreeSet::new();
    };
    doc.keys(&sightings)
        .filter_map(|key| key.parse().ok())
        .collect()
}

async fn live_documents(server: &ServerProcess) -> anyhow::Result<u64> {
    let (status, health) = server.anonymous().get("/health").await?;
    anyhow::ensure!(status == 200, "health answered {status}: {health}");
    health["sync"]["liveDocuments"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no live-documents count in {health}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_document_leaves_memory_and_the_next_sync_reloads_it_with_nothing_lost(
) -> anyhow::Result<()> {
    let world = World::builder("Parc de la Tête d'Or")
        .server_args(&["--document-idle-secs", "1"])
        .volunteer("Inès")
        .build()
        .await?;
    let (server, pool) = (&world.server, &world.pool);
    let volunteer = world.volunteer("Inès");
    let mut phone =
        Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
    let first = records::sighting(volunteer.account_id, "Erithacus rubecula", 1);
    phone.record(&first)?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    assert_eq!(
        live_documents(server).await?,
        1,
        "the connected phone's notebook is live"
    );

    phone.go_offline();
    eventually(TIMEOUT, "the idle notebook to leave memory", || async {
        Ok((live_documents(server).await? == 0).then_some(()))
    })
    .await?;

    let second = records::sighting(volunteer.account_id, "Turdus merula", 2);
    phone.record(&second)?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    let expected: BTreeSet<Uuid> = [first.id(), second.id()].into();
    eventually(TIMEOUT, "both sightings in the inventory", || async {
        Ok((sighting_ids(pool).await? == expected).then_some(()))
    })
    .await?;
    // The reloaded document is the whole notebook: a second device gets both.
    let mut reader = RawPeer::connect(&server.sync_url(), &volunteer.device).await?;
    let fetched = reader
        .fetch(&phone.notebook_id(), TIMEOUT)
        .await?
        .expect("the owner fetches the notebook");
    assert_eq!(notebook_sightings(&fetched), expected);
    assert_eq!(fetched.get_heads(), phone.heads());
    phone.shut_down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_database_push_each_others_changes_and_keep_all_of_them(
) -> anyhow::Result<()> {
    let world = World::builder("Berges du Rhône")
        .volunteer("Yanis")
        .second_device("Yanis")
        .build()
        .await?;
    let (first_process, pool) = (&world.server, &world.pool);
    let second_process = ServerProcess::start(&world.db.url)?;
    let volunteer = world.volunteer("Yanis");
    let second_device = world.second_device("Yanis").clone();
    let owner = volunteer.account_id;

    let mut phone_a =
        Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
    let opening = records::sighting(owner, "Castor fiber", 1);
    phone_a.record(&opening)?;
    phone_a.go_online(&first_process.sync_url()).await?;
    phone_a.wait_synced(TIMEOUT).await?;
    let phone_b = Phone::fetch_notebook(
        &second_process.sync_url(),
        Some(second_device),
        phone_a.notebook_id(),
    )
    .await?;

    // Synced through the first process, it reaches the phone connected to
    // the second, which does not reconnect.
    let pushed = records::sighting(owner, "Alcedo atthis", 1);
    phone_a.record(&pushed)?;
    eventually(
        TIMEOUT,
        "the change pushed through the other process",
        || async {
            Ok(phone_b
                .read(notebook_sightings)
                .contains(&pushed.id())
                .then_some(()))
        },
    )
    .await?;

    // Both write at once, each through its own process: everything is kept.
    let mut expected: BTreeSet<Uuid> = [opening.id(), pushed.id()].into();
    for i in 0..5 {
        let a = records::sighting(owner, "Ardea cinerea", 10 + i);
        let b = records::sighting(owner, "Anas platyrhynchos", 20 + i);
        expected.extend([a.id(), b.id()]);
        phone_a.record(&a)?;
        phone_b.record(&b)?;
    }
    phone_a.wait_synced(TIMEOUT).await?;
    phone_b.wait_synced(TIMEOUT).await?;
    eventually(TIMEOUT, "both phones holding the same notebook", || async {
        Ok(
            (phone_a.heads() == phone_b.heads() && phone_a.read(notebook_sightings) == expected)
                .then_some(()),
        )
    })
    .await?;
    // The inventory is what one process would have written for the merged notebook.
    eventually(TIMEOUT, "every sighting in the inventory", || async {
        Ok((sighting_ids(pool).await? == expected).then_some(()))
    })
    .await?;
    phone_a.shut_down().await;
    phone_b.shut_down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_a_limit_is_told_which_and_another_peer_syncs_meanwhile() -> anyhow::Result<()>
{
    use server::sync::access::MAX_DOCUMENTS_PER_CONNECTION;
    let world = World::builder("Vallon des Hôpitaux")
        .volunteer("Greedy")
        .volunteer("Honest")
        .build()
        .await?;
    let (server, pool) = (&world.server, &world.pool);
    let (greedy, honest) = (world.volunteer("Greedy"), world.volunteer("Honest"));
    let mut honest_phone =
        Phone::new_notebook(honest.notebook(), Some(honest.device.clone())).await?;
    honest_phone.go_online(&server.sync_url()).await?;

    // Documents open on one connection.
    let empty = Automerge::new()
        .generate_sync_message(&mut automerge::sync::State::new())
        .expect("an opening message")
        .encode();
    let mut peer = RawPeer::connect(&server.sync_url(), &greedy.device).await?;
    for _ in 0..=MAX_DOCUMENTS_PER_CONNECTION {
        peer.send_sync(&new_document_id(), &empty).await?;
    }
    let sighting = records::sighting(honest.account_id, "Vulpes vulpes", 1);
    honest_phone.record(&sighting)?;
    let replies = peer.messages_until_closed(TIMEOUT).await?;
    assert!(
        replies.iter().any(|m| m.kind == "error"
            && m.message
                .as_deref()
                .is_some_and(|text| text.contains(&format!(
                    "holds {MAX_DOCUMENTS_PER_CONNECTION} documents open, the limit"
                )))),
        "{replies:?}"
    );
    honest_phone.wait_synced(TIMEOUT).await?;
    eventually(TIMEOUT, "the honest sighting", || async {
        Ok(sighting_ids(pool)
            .await?
            .contains(&sighting.id())
            .then_some(()))
    })
    .await?;

    // Message size.
    let limit = sync::protocol::Limits::DEFAULT_MAX_MESSAGE_BYTES;
    let mut peer = RawPeer::connect(&server.sync_url(), &greedy.device).await?;
    peer.send_bytes(vec![0xa0; limit + 1]).await?;
    let replies = peer.messages_until_closed(TIMEOUT).await?;
    assert!(
        replies.iter().any(|m| m.kind == "error"
            && m.message
                .as_deref()
                .is_some_and(|text| text.contains(&format!("over the limit of {limit} bytes")))),
        "{replies:?}"
    );
    let after = records::sighting(honest.account_id, "Meles meles", 1);
    honest_phone.record(&after)?;
    honest_phone.wait_synced(TIMEOUT).await?;
    honest_phone.shut_down().await;
    Ok(())
}

/// Phones coming back into signal together: correctness only (timings are
/// in the `reconnect-storm` benchmark).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_storm_puts_every_sighting_in_the_inventory_exactly_once() -> anyhow::Result<()> {
    const PHONES: usize = 30;
    const SIGHTINGS: i64 = 10;
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Grand Parc Miribel").await?;
    let mut fleet = Vec::new();
    let mut expected = BTreeSet::new();
    for n in 0..PHONES {
        let volunteer = phones::enrol_volunteer(&pool, &territory, &format!("V{n}")).await?;
        let phone =
            Phone::new_notebook(volunteer.notebook(), Some(volunteer.device.clone())).await?;
        for i in 0..SIGHTINGS {
            let sighting = records::sighting(volunteer.account_id, "Lacerta bilineata", i + 1);
            expected.insert(sighting.id());
            phone.record(&sighting)?;
        }
        fleet.push(phone);
    }
    let url = server.sync_url();
    futures::future::try_join_all(fleet.iter_mut().map(|phone| phone.go_online(&url))).await?;
    futures::future::try_join_all(fleet.iter().map(|phone| phone.wait_synced(TIMEOUT))).await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings")
        .fetch_one(&pool)
        .await?;
    assert_eq!(rows, expected.len() as i64, "each sighting once");
    assert_eq!(sighting_ids(&pool).await?, expected);
    for phone in fleet {
        phone.shut_down().await;
    }
    Ok(())
}
