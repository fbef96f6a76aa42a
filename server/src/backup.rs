//! `fieldnotes-server backup` and `restore`: the whole database to one file
//! and back, with PostgreSQL's own `pg_dump` and `pg_restore`.
//!
//! Why theirs and not our own export: everything the service holds is in
//! PostgreSQL — the documents' chunks, the inventory, the photos (`bytea`),
//! the accounts and the audit chain — and `pg_dump` reads it all in one
//! REPEATABLE READ transaction, so the file is one instant of the database
//! however many phones commit meanwhile (its locks block schema changes
//! only, never a sync commit). The custom format is compressed and lets
//! `pg_restore` pick what to restore; a DBA can run the same two programs by
//! hand (docs/OPERATIONS.md gives the lines).
//!
//! Both run as the schema's owner (`DATABASE_OWNER_URL`, else
//! `DATABASE_URL`; the embedded cluster's superuser). Restoring is for an
//! empty database only: merging a backup into a live one would mix two
//! histories of the same documents and audit chains. It runs in one
//! transaction, so a failed restore leaves the target as empty as it was. Phones heal what the backup missed: the server keeps no sync
//! state between connections, so a phone ahead of the restored documents
//! sends what the server lacks at its next connection.
//!
//! The connection goes to the programs through libpq's environment variables
//! (`PGHOST`, `PGPASSWORD`…), never their command line, where `ps` would show
//! a password to every user of the machine.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    str::FromStr,
};

use anyhow::{bail, Context};
use sqlx::{
    postgres::{PgConnectOptions, PgSslMode},
    Connection, PgConnection,
};

use crate::{database_roles::CREATE_SERVICE_ROLE, embedded_pg};

/// Writes a backup of the database at `database_url` to `output`.
///
/// The dump goes to a temporary file beside `output`, renamed once
/// `pg_dump` succeeded: an interrupted backup never leaves a truncated file
/// under the backup's name. The file is readable by its owner only (created
/// so before `pg_dump` writes into it): it holds personal data and the
/// credentials' hashes. Returns the backup's size in bytes.
pub async fn backup(database_url: &str, output: &Path) -> anyhow::Result<u64> {
    let connection = Database::from_url(database_url)?;
    let mut command = connection.command("pg_dump")?;
    let partial = partial_path(output)?;
    tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .await
        .with_context(|| format!("creating {}", partial.display()))?;
    // A file left by an earlier attempt keeps its mode through `open`.
    tokio::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
        .await
        .with_context(|| format!("restricting {} to its owner", partial.display()))?;
    command.arg("--format=custom").arg("--file").arg(&partial);
    let result = run(command, "pg_dump").await;
    if let Err(error) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(error);
    }
    tokio::fs::rename(&partial, output)
        .await
        .with_context(|| format!("moving the backup to {}", output.display()))?;
    let bytes = tokio::fs::metadata(output)
        .await
        .with_context(|| format!("reading the size of {}", output.display()))?
        .len();
    tracing::info!(output = %output.display(), bytes, database = %connection.database, "backup written");
    Ok(bytes)
}

/// Restores the backup `input` into the database at `database_url` (the
/// schema owner's), which must be empty (a new database; no server has
/// started on it).
///
/// `--no-owner`: the objects belong to the role restoring them, the owner
/// the migrations run as, whoever owned them before. The backup's grants
/// are restored: they are what the migrations gave `fieldnotes_service`
/// (migration 0020 and later ones), which no start gives again; roles belong
/// to the cluster, not the database, so that one is created first if
/// missing, as migration 0009 does. `--no-comments`: the service's schema
/// has none; the backup's are PostGIS's, which a role that does not own the
/// extension may not set. `--single-transaction`: all or nothing.
pub async fn restore(database_url: &str, input: &Path) -> anyhow::Result<()> {
    let connection = Database::from_url(database_url)?;
    // Before anything is started: a missing file is a clear error, not pg_restore's.
    tokio::fs::metadata(input)
        .await
        .with_context(|| format!("reading the backup {}", input.display()))?;
    let mut target = PgConnection::connect_with(&connection.options)
        .await
        .with_context(|| format!("connecting to database {}", connection.database))?;
    refuse_unless_empty(&mut target, &connection.database).await?;
    // For a cluster that does not hold it yet (a restore into another
    // PostgreSQL): the backup grants it its rights. If this role may not
    // create it, pg_restore says the role is missing.
    sqlx::query(CREATE_SERVICE_ROLE)
        .execute(&mut target)
        .await
        .context("creating the role fieldnotes_service")?;
    target.close().await.ok();

    let mut command = connection.command("pg_restore")?;
    command
        .args([
            "--no-owner",
            "--no-comments",
            "--single-transaction",
            "--exit-on-error",
        ])
        .arg("--dbname")
        .arg(&connection.database)
        .arg(input);
    run(command, "pg_restore").await?;
    tracing::info!(input = %input.display(), database = %connection.database, "backup restored");
    Ok(())
}

/// Relations outside PostgreSQL's own schemas that no extension owns
/// (PostGIS's `spatial_ref_sys` is the extension's, and a new database may
/// hold it): any is a sign the database is in use.
const USER_RELATIONS: &str = "SELECT n.nspname || '.' || c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      AND NOT EXISTS (SELECT FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype = 'e')
    ORDER BY 1 LIMIT 5";

async fn refuse_unless_empty(target: &mut PgConnection, database: &str) -> anyhow::Result<()> {
    let found: Vec<String> = sqlx::query_scalar(USER_RELATIONS)
        .fetch_all(&mut *target)
        .await
        .with_context(|| format!("listing the tables of database {database}"))?;
    if !found.is_empty() {
        bail!(
            "database {database} is not empty (it holds {}{}): a backup is restored into a new, \
             empty database only — create one (`createdb`, or with the embedded cluster a new \
             --data-dir) and restore there; nothing was changed",
            found.join(", "),
            if found.len() == 5 { ", …" } else { "" }
        );
    }
    Ok(())
}

/// `<output>.partial`, beside it (so the rename stays on one file system).
fn partial_path(output: &Path) -> anyhow::Result<PathBuf> {
    let name = output
        .file_name()
        .with_context(|| format!("{} names no file", output.display()))?;
    let mut partial = name.to_os_string();
    partial.push(".partial");
    Ok(output.with_file_name(partial))
}

/// Runs a PostgreSQL program to completion; its output is in the error.
async fn run(command: std::process::Command, what: &str) -> anyhow::Result<()> {
    let output = tokio::process::Command::from(command)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Where a database is, as the server's URL says and as libpq's programs
/// are told it.
struct Database {
    options: PgConnectOptions,
    database: String,
    /// The URL's password, percent-decoded.
    password: Option<String>,
}

impl Database {
    fn from_url(database_url: &str) -> anyhow::Result<Database> {
        let options = PgConnectOptions::from_str(database_url)
            .context("DATABASE_URL is not a PostgreSQL URL")?;
        let url = url::Url::parse(database_url).context("DATABASE_URL is not a URL")?;
        let password = match url.password() {
            Some(encoded) => Some(percent_decode(encoded).context("the password in DATABASE_URL")?),
            None => None,
        };
        let database = options
            .get_database()
            .unwrap_or(options.get_username())
            .to_string();
        Ok(Database {
            options,
            database,
            password,
        })
    }

    /// `program` set to reach this database through libpq's environment.
    /// Variables of ours the URL does not set (`PGPASSWORD`, `PGSSLROOTCERT`…)
    /// are passed on, as sqlx reads them too.
    fn command(&self, program: &str) -> anyhow::Result<std::process::Command> {
        let path = embedded_pg::program(program)
            .with_context(|| format!("finding PostgreSQL's {program}"))?;
        let mut command = std::process::Command::new(path);
        let host = match self.options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => self.options.get_host().to_string(),
        };
        command
            .env("PGHOST", host)
            .env("PGPORT", self.options.get_port().to_string())
            .env("PGUSER", self.options.get_username())
            .env("PGDATABASE", &self.database)
            .env("PGSSLMODE", ssl_mode(self.options.get_ssl_mode()))
            // Messages in English, whatever the machine's locale: they end up in our errors.
            .env("LC_MESSAGES", "C")
            .env_remove("PGSERVICE");
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        Ok(command)
    }
}

fn ssl_mode(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// `%XX` escapes decoded, as sqlx decodes the URL's password.
fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .context("a % not followed by two hexadecimal digits")?;
            decoded.push(hex);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).context("not UTF-8 once decoded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_goes_through_the_environment_only() {
        let connection = Database::from_url(
            "postgres://field%40notes:p%25ss%3Aw@db.example:6543/inventory?sslmode=require",
        )
        .unwrap();
        assert_eq!(connection.password.as_deref(), Some("p%ss:w"));
        assert_eq!(connection.database, "inventory");
        assert_eq!(connection.options.get_username(), "field@notes");
        assert!(percent_decode("%4").is_err());

        let socket = Database::from_url(
            "postgres://postgres@localhost/fieldnotes?host=/tmp/pg%20socket&port=5433&sslmode=disable",
        )
        .unwrap();
        assert_eq!(socket.password, None);
        // The command is built only where PostgreSQL is installed.
        if let Ok(command) = socket.command("pg_dump") {
            let env: std::collections::HashMap<_, _> = command
                .get_envs()
                .filter_map(|(key, value)| Some((key.to_str()?, value?.to_str()?)))
                .collect();
            assert_eq!(env["PGHOST"], "/tmp/pg socket");
            assert_eq!(env["PGPORT"], "5433");
            assert_eq!(env["PGDATABASE"], "fieldnotes");
            assert_eq!(env["PGSSLMODE"], "disable");
            assert_eq!(command.get_args().count(), 0, "nothing on the command line");
        }
    }
}
