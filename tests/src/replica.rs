//! A streaming replica of the test cluster, made as an operator would make
//! one: `pg_basebackup -R` (a copy of the primary, with the settings that
//! make it follow), then started as a hot standby. Stopped and removed when
//! dropped.

use std::{os::unix::fs::MetadataExt, path::PathBuf, process::Command};

use anyhow::{bail, Context};
use server::embedded_pg::EmbeddedPostgres;
use sqlx::{Connection, PgConnection};
use url::Url;

use crate::{maintenance_url, workspace_root};

pub struct Replica {
    cluster: Option<EmbeddedPostgres>,
    data_dir: PathBuf,
}

impl Replica {
    /// Copies the test cluster (every database in it) and starts the copy
    /// following the primary.
    pub async fn start() -> anyhow::Result<Replica> {
        // The test cluster is up before it is copied.
        let primary = Url::parse(&maintenance_url())?;
        let query = |name: &str| {
            primary
                .query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.to_string())
        };
        let socket_dir = query("host").context("the test cluster's socket directory")?;
        let port = query("port").unwrap_or_else(|| "5432".into());
        let cluster_dir = workspace_root().join("target").join("test-postgres");
        let primary_dir = cluster_dir.join("data");
        let major = std::fs::read_to_string(primary_dir.join("PG_VERSION"))
            .context("the test cluster's PG_VERSION")?;
        let pg_basebackup = PathBuf::from(format!(
            "/usr/lib/postgresql/{}/bin/pg_basebackup",
            major.trim()
        ));
        let data_dir = cluster_dir.join(format!("replica-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&data_dir)?;
        // PostgreSQL refuses a data directory others may read.
        std::fs::set_permissions(
            &data_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        // PostgreSQL runs as the primary's owner: the copy is theirs.
        let owner = std::fs::metadata(&primary_dir)?;
        let mut command = Command::new(&pg_basebackup);
        command
            .arg("--pgdata")
            .arg(&data_dir)
            .args([
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
            ])
            .args([
                "--host",
                &socket_dir,
                "--port",
                &port,
                "--username",
                "postgres",
            ]);
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&data_dir, Some(owner.uid()), Some(owner.gid()))?;
            std::os::unix::process::CommandExt::uid(&mut command, owner.uid());
            std::os::unix::process::CommandExt::gid(&mut command, owner.gid());
        }
        let output = command
            .output()
            .with_context(|| format!("running {}", pg_basebackup.display()))?;
        if !output.status.success() {
            bail!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let cluster = EmbeddedPostgres::start(&data_dir).await?;
        Ok(Replica {
            cluster: Some(cluster),
            data_dir,
        })
    }

    /// The URL of `database` on the replica.
    pub fn url(&self, database: &str) -> anyhow::Result<String> {
        let cluster = self.cluster.as_ref().context("the replica is running")?;
        let mut url = Url::parse(&cluster.database_url())?;
        url.set_path(database);
        Ok(url.to_string())
    }

    /// A superuser connection to the replica (to pause its replay).
    pub async fn superuser(&self) -> anyhow::Result<PgConnection> {
        Ok(PgConnection::connect(&self.url("postgres")?).await?)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // Stops the standby (EmbeddedPostgres's own Drop), then removes it.
        drop(self.cluster.take());
        let _ = std::fs::remove_dir_all(&self.data_dir);
        for sibling in ["-socket", ".log"] {
            let mut path = self.data_dir.clone().into_os_string();
            path.push(sibling);
            let path = PathBuf::from(path);
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}
