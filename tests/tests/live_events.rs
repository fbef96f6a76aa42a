//! Live updates (`GET /api/territories/{id}/events`) on a real PostgreSQL
//! and real server processes: a coordinator's open stream shows a real
//! phone's sync and a coordinator's decision, only of its own territory,
//! from writes made through another server process too; who may open one;
//! and a stream ends when its session does (logout, expiry); the process's
//! one notification listener they are heard through.
//!
//! Every wait is on the stream itself, bounded by [`TIMEOUT`].

use std::time::Duration;

use anyhow::{bail, Context};
use fieldnotes_tests::{
    accounts, init_test_logging, phones, records, world::World, ServerProcess, TestDatabase,
};
use mobile_bridge::Phone;
use reqwest::Method;
use schemas::{FieldRecord, RecordKind};
use serde_json::{json, Value};
use server::{
    auth::{Credential, Role},
    notifications::{
        ChangeKind, DocumentCommitted, LiveEvent, Notifications, DOCUMENT_COMMITTED_CHANNEL,
        INVENTORY_CHANGED_CHANNEL,
    },
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(20);

/// A page's event stream, read as the web app reads it: `fetch()` with the
/// bearer header, the body parsed as server-sent events.
struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    territory: Uuid,
}

impl EventStream {
    /// Opens the stream of `territory` as the holder of `token`, and waits
    /// for its `ready`.
    async fn open(
        server: &ServerProcess,
        territory: Uuid,
        token: &str,
    ) -> anyhow::Result<EventStream> {
        let response = reqwest::Client::new()
            .get(server.http_url(&format!("/api/territories/{territory}/events")))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status().as_u16();
        if status != 200 {
            bail!("the stream answered {status}: {}", response.text().await?);
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            header("content-type").starts_with("text/event-stream"),
            "{}",
            header("content-type")
        );
        assert_eq!(header("cache-control"), "no-cache");
        let mut stream = EventStream {
            response,
            buffer: Vec::new(),
            territory,
        };
        let ready = stream.next().await?.context("the stream ended at once")?;
        assert_eq!(
            ready,
            ("ready".to_string(), json!({ "territoryId": territory }))
        );
        Ok(stream)
    }

    /// The next event (its name and JSON data), keep-alive comments skipped;
    /// None once the server ended the stream.
    async fn next(&mut self) -> anyhow::Result<Option<(String, Value)>> {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                while let Some(event) = self.take_block()? {
                    if let Some(event) = event {
                        return Ok(Some(event));
                    }
                }
                match self.response.chunk().await? {
                    Some(bytes) => self.buffer.extend_from_slice(&bytes),
                    None => return Ok(None),
                }
            }
        })
        .await
        .with_context(|| format!("no event on the stream within {TIMEOUT:?}"))?
    }

    /// One whole block from the buffer, if there is one: Some(None) for a
    /// block of comments only.
    #[allow(clippy::type_complexity)]
    fn take_block(&mut self) -> anyhow::Result<Option<Option<(String, Value)>>> {
        let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") else {
            return Ok(None);
        };
        let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
        let block = std::str::from_utf8(&block)?;
        let (mut name, mut data) = (None, Vec::new());
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = Some(value.trim().to_string());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.trim_start().to_string());
            } else if !(line.is_empty() || line.starts_with(':')) {
                bail!("an unexpected line on the stream: {line:?}");
            }
        }
        if name.is_none() && data.is_empty() {
            return Ok(Some(None));
        }
        let name = name.unwrap_or_else(|| "message".to_string());
        let data = serde_json::from_str(&data.join("\n"))
            .with_context(|| format!("the data of {block:?}"))?;
        Ok(Some(Some((name, data))))
    }

    /// The next event, which must be a `changed` of this stream's
    /// territory; its kind.
    async fn next_change(&mut self) -> anyhow::Result<String> {
        let (name, data) = self
            .next()
            .await?
            .context("the stream ended; a change was expected")?;
        assert_eq!(name, "changed", "{data}");
        assert_eq!(
            data["territoryId"],
            json!(self.territory),
            "an event of another territory: {data}"
        );
        data["kind"].as_str().context("a kind").map(str::to_string)
    }

    /// Waits for the server to end the stream; no event may come first.
    async fn ended(&mut self) -> anyhow::Result<()> {
        match self.next().await? {
            None => Ok(()),
            Some(event) => bail!("expected the stream to end, got {event:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_sees_its_territorys_syncs_and_decisions_live_from_any_process() -> anyhow::Result<()>
{
    let world = World::builder("Parc de Gerland")
        .coordinator("Marie")
        .auditor("Régie")
        .volunteer("Camille")
        .build()
        .await?;
    let (first, pool, here) = (&world.server, &world.pool, &world.territory);
    let second = ServerProcess::start(&world.db.url)?;
    let (coordinator, auditor) = (world.coordinator(), world.auditor());
    let camille = world.volunteer("Camille");
    let there = phones::territory(pool, "Île Barbe").await?;
    let coordinator_there =
        accounts::password_actor(pool, "Paul", Some((there.id, Role::Coordinator)), false).await?;
    let lou = phones::enrol_volunteer(pool, &there, "Lou").await?;

    // The coordinator's page is served by the first process, the auditor's
    // by the second; every write below goes through the first.
    let mut page = EventStream::open(first, here.id, &coordinator.token).await?;
    let mut page_on_second = EventStream::open(&second, here.id, &auditor.token).await?;
    let mut page_there = EventStream::open(first, there.id, &coordinator_there.token).await?;

    // A phone records a sighting and syncs it.
    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    let sighting = records::sighting(camille.account_id, "Bufo bufo", 1);
    phone.record(&sighting)?;
    phone.go_online(&first.sync_url()).await?;
    assert_eq!(page.next_change().await?, "sighting");
    assert_eq!(page_on_second.next_change().await?, "sighting");

    // A sighting in the other territory reaches that territory's page…
    let mut lou_phone = Phone::new_notebook(lou.notebook(), Some(lou.device.clone())).await?;
    lou_phone.record(&records::sighting(lou.account_id, "Castor fiber", 2))?;
    lou_phone.go_online(&first.sync_url()).await?;
    assert_eq!(page_there.next_change().await?, "sighting");
    // …and not this one: announcements reach a process in commit order, so
    // the next event here is this territory's next write (an entry of hours).
    let entry = records::timesheet_json(camille.account_id);
    let entry_id = entry["id"].as_str().context("an id")?.to_string();
    phone.record_raw(RecordKind::TimesheetEntry, &entry_id, &entry)?;
    assert_eq!(page.next_change().await?, "timesheet_entry");
    assert_eq!(page_on_second.next_change().await?, "timesheet_entry");

    // A coordinator's decision on the sighting.
    let (status, body) = first
        .as_(&coordinator.token)
        .post(
            &format!("/api/territories/{}/review/decisions", here.id),
            &json!({"decision": "verification", "status": "2", "records": [sighting.id()]}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(page.next_change().await?, "sighting");
    assert_eq!(page_on_second.next_change().await?, "sighting");

    // Logged out through the second process: the first ends its stream.
    let (status, body) = second
        .as_(&coordinator.token)
        .send(Method::POST, "/api/auth/logout", None)
        .await?;
    assert_eq!(status, 204, "{body}");
    page.ended().await?;
    // The others go on.
    lou_phone.record(&records::sighting(lou.account_id, "Lutra lutra", 3))?;
    assert_eq!(page_there.next_change().await?, "sighting");

    phone.shut_down().await;
    lou_phone.shut_down().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_territorys_reviewers_open_its_stream_and_it_ends_with_the_session(
) -> anyhow::Result<()> {
    let world = World::builder("Parc de Gerland")
        .coordinator("Marie")
        .admin()
        .volunteer("Camille")
        .build()
        .await?;
    let (server, pool, here) = (&world.server, &world.pool, &world.territory);
    let (coordinator, admin) = (world.coordinator(), world.admin());
    let camille = world.volunteer("Camille");
    let there = phones::territory(pool, "Île Barbe").await?;
    let coordinator_there =
        accounts::password_actor(pool, "Paul", Some((there.id, Role::Coordinator)), false).await?;
    let events = |territory: Uuid| format!("/api/territories/{territory}/events");

    for (who, token, status) in [
        ("no one", None, 401),
        ("a volunteer", Some(camille.device.secret.as_str()), 403),
        (
            "another territory's coordinator",
            Some(coordinator_there.token.as_str()),
            403,
        ),
    ] {
        let (got, body) = server.api(token).get(&events(here.id)).await?;
        assert_eq!(got, status, "{who}: {body}");
        assert!(body["error"]["message"].is_string(), "{who}: {body}");
    }

    // An unknown territory is answered as the review's reads answer it: a
    // coordinator holds no role there; an admin is told it does not exist.
    let unknown = Uuid::new_v4();
    for (who, token, status) in [
        ("a coordinator", &coordinator.token, 403),
        ("an admin", &admin.token, 404),
    ] {
        let (got, body) = server.as_(token).get(&events(unknown)).await?;
        assert_eq!(got, status, "{who}: {body}");
        let settings = format!("/api/territories/{unknown}/review/settings");
        let (review, _) = server.as_(token).get(&settings).await?;
        assert_eq!(got, review, "{who}: as the review settings");
    }
    // An admin follows any territory that exists.
    EventStream::open(server, here.id, &admin.token).await?;

    // A session that expires soon: its stream ends then, by itself.
    let session = server::auth::admin::login(
        pool,
        &coordinator.login.as_ref().context("a password")?.email,
        &coordinator.login.as_ref().context("a password")?.password,
    )
    .await?
    .context("logged in")?;
    sqlx::query(
        "UPDATE sessions SET expires_at = now() + interval '15 seconds' \
         WHERE token_hash = $1",
    )
    .bind(server::auth::secret::fingerprint(&session.token))
    .execute(pool)
    .await?;
    let mut expiring = EventStream::open(server, here.id, &session.token)
        .await
        .context("opening the stream took longer than the session had left")?;
    let mut lasting = EventStream::open(server, here.id, &coordinator.token).await?;
    expiring.ended().await?;
    let (status, _) = server.as_(&session.token).get(&events(here.id)).await?;
    assert_eq!(status, 401, "an expired session opens no stream");

    // The other session's stream is still open: it hears a write.
    accounts::seed_invalid_record(
        pool,
        &accounts::seed_document(pool, here.id, camille.account_id).await?,
        here.id,
    )
    .await?;
    assert_eq!(lasting.next_change().await?, "invalid_record");
    Ok(())
}

/// The process's one notification listener (`server::notifications`) hears
/// every channel and hands each kind to its subscribers, typed; when its
/// connection is cut it listens again, and the live streams are told that
/// announcements may have been missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listener_hears_every_channel_and_says_when_it_may_have_missed_some(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let pool = db.pool().await?;
    let stop = CancellationToken::new();
    let notifications = Notifications::start(&pool, stop.clone()).await;
    let mut commits = notifications.documents_committed();
    let mut ended = notifications.credentials_ended();
    let mut live = notifications.live_events();
    let notify = |channel: &'static str, payload: String| {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&pool)
                .await
        }
    };

    let (process, territory, device) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    notify(
        DOCUMENT_COMMITTED_CHANNEL,
        DocumentCommitted::payload("doc", 3, process),
    )
    .await?;
    notify(
        server::auth::admin::DEVICE_REVOKED_CHANNEL,
        device.to_string(),
    )
    .await?;
    notify(INVENTORY_CHANGED_CHANNEL, format!("{territory} sighting")).await?;
    assert_eq!(
        tokio::time::timeout(TIMEOUT, commits.recv()).await?,
        Some(DocumentCommitted {
            doc_id: "doc".into(),
            revision: 3,
            process,
        })
    );
    let revoked = Credential::Device { device_id: device };
    assert_eq!(
        tokio::time::timeout(TIMEOUT, ended.recv()).await?,
        Some(revoked.clone())
    );
    assert_eq!(
        tokio::time::timeout(TIMEOUT, live.recv()).await??,
        LiveEvent::CredentialEnded(revoked)
    );
    assert_eq!(
        tokio::time::timeout(TIMEOUT, live.recv()).await??,
        LiveEvent::Changed {
            territory,
            kind: ChangeKind::Sighting
        }
    );

    // Its connection is cut: the live streams hear that announcements may
    // have been missed, and the listener hears commits again.
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(cut, vec![true], "one listener per process");
    assert_eq!(
        tokio::time::timeout(TIMEOUT, live.recv()).await??,
        LiveEvent::Missed
    );
    let heard_again = tokio::time::timeout(TIMEOUT, async {
        loop {
            notify(
                DOCUMENT_COMMITTED_CHANNEL,
                DocumentCommitted::payload("doc", 4, process),
            )
            .await?;
            if let Ok(heard) =
                tokio::time::timeout(Duration::from_millis(200), commits.recv()).await
            {
                return anyhow::Ok(heard);
            }
        }
    })
    .await??;
    assert_eq!(heard_again.map(|commit| commit.revision), Some(4));
    stop.cancel();
    Ok(())
}
