//! Sync resumes through a connection that keeps being cut: a TCP proxy between
//! the phone and the server drops the connection after a random number of bytes,
//! a dozen times, while the phone holds a day of offline records and keeps
//! recording. The server ends up with every record exactly once, and the phone
//! with nothing pending.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use fieldnotes_tests::{eventually, init_test_logging, phones, ServerProcess, TestDatabase};
use mobile_bridge::{BackoffConfig, Device, GpsFix};
use schemas::RecordKind;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use url::Url;
use uuid::Uuid;

const CUTS: usize = 12;
const OFFLINE_RECORDS: usize = 150;
const ONLINE_RECORDS: usize = 30;

/// A TCP proxy that, once armed and while it still has cuts to make, closes
/// each new connection (both ways) after a random number of bytes crossed it.
struct CuttingProxy {
    addr: String,
    cuts_wanted: Arc<AtomicUsize>,
    cuts_made: Arc<AtomicUsize>,
}

impl CuttingProxy {
    async fn start(upstream: String, seed: u64) -> anyhow::Result<CuttingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let cuts_wanted = Arc::new(AtomicUsize::new(0));
        let cuts_made = Arc::new(AtomicUsize::new(0));
        let random = Arc::new(AtomicU64::new(seed | 1));
        let (wanted, made) = (cuts_wanted.clone(), cuts_made.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let budget = (made.load(Ordering::SeqCst) < wanted.load(Ordering::SeqCst))
                    .then(|| 200 + next(&random) % 6_000);
                tokio::spawn(relay(client, server, budget, made.clone()));
            }
        });
        Ok(CuttingProxy {
            addr,
            cuts_wanted,
            cuts_made,
        })
    }

    fn arm(&self, cuts: usize) {
        self.cuts_wanted.store(cuts, Ordering::SeqCst);
    }
}

fn next(state: &AtomicU64) -> u64 {
    let mut x = state.load(Ordering::SeqCst);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::SeqCst);
    x
}

/// Copies bytes both ways; with a budget, drops both sockets once it is spent.
async fn relay(client: TcpStream, server: TcpStream, budget: Option<u64>, cuts: Arc<AtomicUsize>) {
    let crossed = Arc::new(AtomicU64::new(0));
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = pump(&mut client_read, &mut server_write, budget, crossed.clone());
    let down = pump(&mut server_read, &mut client_write, budget, crossed);
    tokio::select! {
        cut = up => if cut { cuts.fetch_add(1, Ordering::SeqCst); },
        cut = down => if cut { cuts.fetch_add(1, Ordering::SeqCst); },
    }
    // Dropping the halves closes both connections, mid-message.
}

/// Returns true when it stopped because the budget was spent.
async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    budget: Option<u64>,
    crossed: Arc<AtomicU64>,
) -> bool {
    let mut buffer = vec![0u8; 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let before = crossed.fetch_add(n as u64, Ordering::SeqCst);
        if let Some(budget) = budget {
            if before + n as u64 >= budget {
                // Forward part of the buffer so the cut lands inside a message.
                let keep = budget.saturating_sub(before) as usize;
                let _ = to.write_all(&buffer[..keep.min(n)]).await;
                return true;
            }
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return false;
        }
    }
}

fn sighting(n: usize) -> (serde_json::Value, GpsFix) {
    (
        json!({
            "scientificName": "Erinaceus europaeus",
            "individualCount": (n % 5) + 1,
            "recordedBy": "Dominique",
            "notes": format!("hedgehog number {n}, seen near the compost heap behind the school"),
        }),
        GpsFix {
            latitude: 45.75 + n as f64 * 1e-5,
            longitude: 4.85,
            accuracy_m: Some(15.0),
            taken_at: chrono::Utc::now(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cut_a_dozen_times_mid_message_delivers_every_record_exactly_once(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let server = ServerProcess::start(&db.url)?;
    let pool = db.pool().await?;
    let territory = phones::territory(&pool, "Parc de Gerland").await?;
    let code = phones::invitation_code(&pool, &territory, "Dominique").await?;
    let seed = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    eprintln!("proxy seed {seed}");
    let proxy = CuttingProxy::start(server.addr.clone(), seed).await?;

    // The phone knows the server only by the proxy's address; enrolment goes
    // through before the proxy starts cutting.
    let dir = tempfile::tempdir()?;
    let proxied: Url = format!("http://{}", proxy.addr).parse()?;
    let mut device = Device::enrol(dir.path(), &proxied, &code, "test phone", None).await?;
    device.set_backoff(BackoffConfig {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(500),
        max_retries: None,
    });

    let mut expected = HashSet::new();
    for n in 0..OFFLINE_RECORDS {
        let (fields, fix) = sighting(n);
        expected.insert(device.create(RecordKind::Sighting, &fields, Some(&fix))?);
    }
    assert_eq!(device.pending()?.len(), OFFLINE_RECORDS);

    // Signal comes back, badly: keep recording while the sync is cut again and again.
    proxy.arm(CUTS);
    device.go_online()?;
    for n in OFFLINE_RECORDS..OFFLINE_RECORDS + ONLINE_RECORDS {
        let (fields, fix) = sighting(n);
        expected.insert(device.create(RecordKind::Sighting, &fields, Some(&fix))?);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = device.sync(Duration::from_secs(90)).await?;
    assert!(
        proxy.cuts_made.load(Ordering::SeqCst) >= CUTS,
        "the proxy cut only {} times",
        proxy.cuts_made.load(Ordering::SeqCst)
    );
    assert_eq!(status.pending_records, 0, "{status:?}");
    assert!(device.pending()?.is_empty());
    assert!(status.last_sync.is_some());

    let ids: Vec<Uuid> = eventually(Duration::from_secs(30), "every sighting stored", || async {
        let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM sightings")
            .fetch_all(&pool)
            .await?;
        Ok((ids.len() >= expected.len()).then_some(ids))
    })
    .await?;
    assert_eq!(ids.len(), expected.len(), "every record exactly once");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), expected);
    device.shut_down().await;
    Ok(())
}
