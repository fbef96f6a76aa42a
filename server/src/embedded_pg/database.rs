//! The `fieldnotes` database in the cluster: created on first start, and the URL the server
//! connects to it with.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::Connection;

use super::cluster::SUPERUSER;
use super::error::{EmbeddedPgError, Result};
use crate::database_roles::CREATE_SERVICE_ROLE;

/// The database the server uses; created on first start.
const DATABASE: &str = "fieldnotes";

/// The URL of the `fieldnotes` database on the server listening in `socket_dir` on `port`.
///
/// `sslmode=disable` is added because there is no TLS on a unix socket, and a `PGSSLMODE`
/// in the environment would otherwise make sqlx insist on it.
/// The login role the service uses on the embedded cluster: a member of
/// `fieldnotes_service` only (see migration 0020), so the process cannot
/// take the superuser's rights back. The superuser runs the migrations.
pub(super) const SERVICE_LOGIN: &str = "fieldnotes_app";

pub(super) fn database_url(socket_dir: &Path, port: u16) -> String {
    url_as(SUPERUSER, socket_dir, port)
}

pub(super) fn url_as(user: &str, socket_dir: &Path, port: u16) -> String {
    format!(
        "postgres://{user}@localhost/{DATABASE}?host={}&port={}&sslmode=disable",
        encode_query_value(&socket_dir.to_string_lossy()),
        port
    )
}

/// Connects to the `postgres` maintenance database and creates `fieldnotes` if missing.
pub(super) async fn create_database(socket_dir: &Path, port: u16, data_dir: &Path) -> Result<()> {
    let db_err = |action| {
        let socket_dir = socket_dir.to_path_buf();
        move |source| EmbeddedPgError::Database {
            action,
            socket_dir,
            source,
        }
    };
    let options = PgConnectOptions::new()
        .socket(socket_dir)
        .port(port)
        .username(SUPERUSER)
        .database("postgres")
        .ssl_mode(PgSslMode::Disable);
    let mut conn = connect_with_retry(&options, Duration::from_secs(30))
        .await
        .map_err(db_err("connect"))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut conn)
            .await
            .map_err(db_err("look up database `fieldnotes`"))?;
    if !exists {
        match sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
            .execute(&mut conn)
            .await
        {
            Ok(_) => {
                tracing::info!(data_dir = %data_dir.display(), "created database {DATABASE}")
            }
            // 42P04 duplicate_database: another process created it in the meantime.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(db_err("create database `fieldnotes`")(e)),
        }
    }
    // The service's login role, and the role it is a member of (migration
    // 0009 creates that one too, if missing, on any installation). Checked
    // before anything is created: a standby (read-only) has them from its
    // primary.
    let missing: bool = sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldnotes_service') \
             OR NOT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
    )
    .bind(SERVICE_LOGIN)
    .fetch_one(&mut conn)
    .await
    .map_err(db_err("look up the service's roles"))?;
    if missing {
        sqlx::query(CREATE_SERVICE_ROLE)
            .execute(&mut conn)
            .await
            .map_err(db_err("create the service's role"))?;
        sqlx::query(&format!(
            // Another process starting on the cluster may create it first.
            "DO $$ BEGIN \
               CREATE ROLE {SERVICE_LOGIN} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE \
                 IN ROLE fieldnotes_service; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; \
             END $$"
        ))
        .execute(&mut conn)
        .await
        .map_err(db_err("create the service's login role"))?;
        tracing::info!(data_dir = %data_dir.display(), role = SERVICE_LOGIN, "created the service's login role");
    }
    let _ = conn.close().await;
    Ok(())
}

/// Connects, retrying while the server is not accepting connections yet (a server we found
/// running may still be starting up).
async fn connect_with_retry(
    options: &PgConnectOptions,
    patience: Duration,
) -> Result<PgConnection, sqlx::Error> {
    let deadline = Instant::now() + patience;
    loop {
        match PgConnection::connect_with(options).await {
            Ok(conn) => return Ok(conn),
            Err(e) => {
                let transient = match &e {
                    sqlx::Error::Io(_) => true,
                    // 57P03 cannot_connect_now: starting up or recovering.
                    sqlx::Error::Database(db) => db.code().as_deref() == Some("57P03"),
                    _ => false,
                };
                if !transient || Instant::now() >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Percent-encodes a URL query value, keeping `/` readable.
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_are_encoded_in_the_url() {
        assert_eq!(encode_query_value("/tmp/a b&c"), "/tmp/a%20b%26c");
    }
}
