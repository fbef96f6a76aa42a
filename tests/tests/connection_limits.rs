//! What one client can hold open is bounded (issue 22): live-event streams
//! per credential and per process (429 naming the limit), raw TCP
//! connections by the process's cap (the idlest make room) and by the
//! header-read timeout, and a `/sync` peer that answers no ping is closed —
//! while `/health` and a real phone's sync keep answering.
//!
//! The server runs with a small cap and short timeouts (its own flags), so
//! the test stays quick; every wait is on a condition, bounded by [`TIMEOUT`].

use std::time::Duration;

use anyhow::{ensure, Context};
use fieldnotes_tests::{
    accounts, eventually, init_test_logging, phones, records, ServerProcess, TestDatabase,
};
use mobile_bridge::Phone;
use server::auth::Role;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);
/// The server's connection cap in this test.
const CAP: usize = 24;
/// Its header-read, idle and ping timeouts, in seconds.
const SHORT_SECS: u64 = 2;
/// Live-event streams the process serves in this test.
const MAX_STREAMS: usize = 10;
/// The pool's connections (the server's default `--db-connections`): file
/// descriptors the process may open on top of its clients'.
const DB_CONNECTIONS: usize = 16;

/// Opens the live-event stream of `territory` as `token`; its response
/// (held open) or the refusal's status and body.
async fn open_stream(
    server: &ServerProcess,
    territory: Uuid,
    token: &str,
) -> anyhow::Result<Result<reqwest::Response, (u16, serde_json::Value)>> {
    // A client per stream: each holds its own connection, as pages do.
    let response = reqwest::Client::new()
        .get(server.http_url(&format!("/api/territories/{territory}/events")))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status().as_u16();
    if status == 200 {
        return Ok(Ok(response));
    }
    Ok(Err((status, response.json().await?)))
}

/// Reads `stream` until the server closes it; what it sent.
async fn read_until_closed(stream: &mut TcpStream, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(TIMEOUT, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => return Ok(()),
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
                Err(error) => return Err(anyhow::Error::from(error)),
            }
        }
    })
    .await
    .with_context(|| format!("the server did not close {what} within {TIMEOUT:?}"))??;
    Ok(received)
}

fn open_files(server: &ServerProcess) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{}/fd", server.pid()))?.count())
}

async fn health(server: &ServerProcess) -> anyhow::Result<u16> {
    Ok(reqwest::Client::new()
        .get(server.http_url("/health"))
        .send()
        .await?
        .status()
        .as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_idle_connections_and_silent_sync_peers_are_bounded_while_health_and_a_phone_go_on(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let short = SHORT_SECS.to_string();
    let server = ServerProcess::start_with(
        &db.url,
        &[
            "--max-connections",
            &CAP.to_string(),
            "--header-read-timeout-secs",
            &short,
            "--idle-timeout-secs",
            &short,
            "--sync-ping-secs",
            &short,
            "--max-event-streams",
            &MAX_STREAMS.to_string(),
        ],
    )?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Parc de la Tête d'Or").await?;
    let t = territory.id;
    let marie =
        accounts::password_actor(&pool, "Marie", Some((t, Role::Coordinator)), false).await?;
    let paul = accounts::password_actor(&pool, "Paul", Some((t, Role::Coordinator)), false).await?;
    let camille = phones::enrol_volunteer(&pool, &territory, "Camille").await?;

    // An honest phone syncs throughout, answering the server's pings.
    let mut phone = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    phone.record(&records::sighting(camille.account_id, "Bufo bufo", 1))?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    let files_before = open_files(&server)?;

    // Streams: 8 per credential, then 429 naming the limit…
    let mut streams = Vec::new();
    for _ in 0..8 {
        let stream = open_stream(&server, t, &marie.token).await?;
        streams.push(stream.map_err(|refused| anyhow::anyhow!("refused: {refused:?}"))?);
    }
    let (status, body) = open_stream(&server, t, &marie.token)
        .await?
        .err()
        .context("a ninth stream of one credential was served")?;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(status, 429, "{body}");
    assert!(
        message.contains("8 live-event streams") && message.contains("per credential"),
        "{body}"
    );
    // …and the process's limit, whoever asks.
    for _ in 0..MAX_STREAMS - 8 {
        let stream = open_stream(&server, t, &paul.token).await?;
        streams.push(stream.map_err(|refused| anyhow::anyhow!("refused: {refused:?}"))?);
    }
    let (status, body) = open_stream(&server, t, &paul.token)
        .await?
        .err()
        .context("a stream beyond the process's limit was served")?;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("{MAX_STREAMS} live-event streams")),
        "{body}"
    );
    drop(streams);

    // A sync peer that never reads, so never answers a ping: pinged after
    // the silence, then closed with an `error` saying why.
    let address = format!(
        "{}:{}",
        server.sync_url().host_str().context("a host")?,
        server.sync_url().port().context("a port")?
    );
    let mut silent = TcpStream::connect(&address).await?;
    silent
        .write_all(
            format!(
                "GET /sync HTTP/1.1\r\nHost: {address}\r\nConnection: Upgrade\r\n\
                 Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Authorization: Bearer {}\r\n\r\n",
                camille.device.secret
            )
            .as_bytes(),
        )
        .await?;
    let received = read_until_closed(&mut silent, "a sync peer answering no ping").await?;
    assert!(
        received.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    // An unmasked ping with no payload, then the reason.
    assert!(received.windows(2).any(|w| w == [0x89, 0x00]), "no ping");
    assert!(
        received.windows(12).any(|w| w == b"after a ping"),
        "{}",
        String::from_utf8_lossy(&received)
    );

    // Idle connections, far more than the cap, and one half-sent request.
    let mut idle = Vec::new();
    for _ in 0..CAP + 40 {
        idle.push(TcpStream::connect(&address).await?);
    }
    let mut half_sent = TcpStream::connect(&address).await?;
    let half_sent_at = Instant::now();
    half_sent
        .write_all(format!("GET /health HTTP/1.1\r\nHost: {address}\r\n").as_bytes())
        .await?;
    // Meanwhile `/health` answers (taking the idlest one's place), and the
    // phone's sync goes on.
    assert_eq!(health(&server).await?, 200);
    phone.record(&records::sighting(camille.account_id, "Rana temporaria", 2))?;
    phone.wait_synced(TIMEOUT).await?;
    // The process never holds more than the cap of client sockets.
    let bound = files_before + CAP + DB_CONNECTIONS;
    eventually(
        TIMEOUT,
        "the server's open files within the cap",
        || async {
            let files = open_files(&server)?;
            Ok((files <= bound).then_some(()))
        },
    )
    .await?;

    // Every idle one is closed, and the half-sent one no sooner than the
    // header-read timeout after it opened.
    for (i, stream) in idle.iter_mut().enumerate() {
        let received = read_until_closed(stream, &format!("idle connection {i}")).await?;
        ensure!(
            received.is_empty() || received.starts_with(b"HTTP/1.1 503"),
            "idle connection {i} was sent {}",
            String::from_utf8_lossy(&received)
        );
    }
    read_until_closed(&mut half_sent, "the half-sent request").await?;
    assert!(half_sent_at.elapsed() >= Duration::from_secs(SHORT_SECS));

    // After all of it, both still answer.
    assert_eq!(health(&server).await?, 200);
    phone.record(&records::sighting(camille.account_id, "Hyla arborea", 3))?;
    phone.wait_synced(TIMEOUT).await?;
    let synced: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings WHERE territory_id = $1")
        .bind(t)
        .fetch_one(&pool)
        .await?;
    assert_eq!(synced, 3);
    phone.shut_down().await;
    Ok(())
}
