//! The whole lifecycle on real clusters: first start, restart, recovery after a crash,
//! reuse of a running server, stop on drop, and what a missing installation reports.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sqlx::{Connection, PgConnection};

use super::binaries::BinDirs;
use super::postmaster::is_zombie;
use super::{EmbeddedPgError, EmbeddedPostgres};

/// A temporary directory the PostgreSQL user can enter: tempfile makes it 0700, which is
/// fine for ourselves but not for `postgres` when the tests run as root.
pub(super) fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("fieldnotes-pg-test-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

fn postmaster_pid(data_dir: &Path) -> i32 {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

async fn wait_for_exit(pid: Pid) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while kill(pid, None).is_ok() {
        assert!(Instant::now() < deadline, "postmaster {pid} did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn starts_a_fresh_cluster_and_serves_postgis() {
    let tmp = temp_dir();
    let data_dir = tmp.path().join("postgres");
    let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
        .await
        .unwrap();
    let url = pg.database_url();
    assert!(
        url.starts_with("postgres://postgres@localhost/fieldnotes?host=/"),
        "{url}"
    );

    let mut conn = connect(&url).await;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis")
        .execute(&mut conn)
        .await
        .unwrap();
    let version: String = sqlx::query_scalar("SELECT postgis_version()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(version.starts_with('3'), "{version}");
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(db, "fieldnotes");
    // No TCP listener at all.
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(listen, "");
    conn.close().await.unwrap();

    pg.stop().await.unwrap();
    assert!(
        !data_dir.join("postmaster.pid").exists(),
        "server still running after stop"
    );
}

#[tokio::test]
async fn restarts_on_an_existing_data_dir_and_keeps_data() {
    let tmp = temp_dir();
    let data_dir = tmp.path().join("postgres");
    let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
        .await
        .unwrap();
    let mut conn = connect(&pg.database_url()).await;
    sqlx::query("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes VALUES (1, 'kept')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    pg.stop().await.unwrap();

    let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
        .await
        .unwrap();
    let mut conn = connect(&pg.database_url()).await;
    let body: String = sqlx::query_scalar("SELECT body FROM notes WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(body, "kept");
    conn.close().await.unwrap();
    pg.stop().await.unwrap();
}

#[tokio::test]
async fn recovers_after_the_owner_process_was_killed() {
    let tmp = temp_dir();
    let data_dir = tmp.path().join("postgres");
    let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
        .await
        .unwrap();
    let mut conn = connect(&pg.database_url()).await;
    sqlx::query("CREATE TABLE notes (id int PRIMARY KEY)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes VALUES (7)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    // Crash: the owner never runs its drop, and the postmaster dies without cleaning up,
    // leaving a stale postmaster.pid behind.
    std::mem::forget(pg);
    let pid = Pid::from_raw(postmaster_pid(&data_dir));
    kill(pid, Signal::SIGKILL).unwrap();
    // Dead, but (depending on how fast init reaps it) possibly still a zombie whose pid
    // `pg_ctl status` and the new postmaster take for a live server.
    let deadline = Instant::now() + Duration::from_secs(10);
    while kill(pid, None).is_ok() && !is_zombie(&pid.to_string()) {
        assert!(Instant::now() < deadline, "postmaster {pid} did not die");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        data_dir.join("postmaster.pid").exists(),
        "expected a stale postmaster.pid"
    );

    let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
        .await
        .unwrap();
    assert!(
        pg.owns_server,
        "a crashed server must be started anew, not reused"
    );
    let mut conn = connect(&pg.database_url()).await;
    let id: i32 = sqlx::query_scalar("SELECT id FROM notes")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(id, 7);
    conn.close().await.unwrap();
    pg.stop().await.unwrap();
}

#[tokio::test]
async fn reuses_a_running_server_and_leaves_it_running() {
    let tmp = temp_dir();
    let data_dir = tmp.path().join("postgres");
    let first = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
        .await
        .unwrap();
    let pid = postmaster_pid(&data_dir);

    let second = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
        .await
        .unwrap();
    assert!(!second.owns_server);
    assert_eq!(second.database_url(), first.database_url());
    connect(&second.database_url()).await.close().await.unwrap();
    drop(second);

    // Still the same server, still serving.
    assert_eq!(postmaster_pid(&data_dir), pid);
    connect(&first.database_url()).await.close().await.unwrap();
    first.stop().await.unwrap();
    assert!(!data_dir.join("postmaster.pid").exists());
}

#[tokio::test]
async fn drop_stops_the_server() {
    let tmp = temp_dir();
    let data_dir = tmp.path().join("postgres");
    let pg = EmbeddedPostgres::start_with(&data_dir, BinDirs::Search)
        .await
        .unwrap();
    let pid = Pid::from_raw(postmaster_pid(&data_dir));
    drop(pg);
    assert!(!data_dir.join("postmaster.pid").exists());
    // `pg_ctl stop -w` returns once postmaster.pid is gone, a moment before the process exits.
    wait_for_exit(pid).await;
}

#[tokio::test]
async fn missing_binaries_are_reported_with_the_install_command() {
    let tmp = temp_dir();
    let empty = tmp.path().join("bin");
    fs::create_dir(&empty).unwrap();
    let err = EmbeddedPostgres::start_with(&tmp.path().join("postgres"), BinDirs::Explicit(empty))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EmbeddedPgError::BinariesNotFound { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("apt-get install postgresql"),
        "{err}"
    );
    // Nothing was created for a setup that cannot work.
    assert!(!tmp.path().join("postgres").exists());
}
