//! PostGIS, checked before anything starts: the server's migrations need it, and a clear
//! `apt-get install` line beats a failed `CREATE EXTENSION` later.

use std::path::{Path, PathBuf};

use super::binaries::{parse_major_version, pg_config, Binaries};
use super::error::{EmbeddedPgError, Result};

/// Places where `postgis.control` may be for these binaries: the share directory reported by a
/// `pg_config` of the same major version, the Debian layout, and a source install's layout.
pub(super) fn postgis_extension_dirs(binaries: &Binaries) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let own_pg_config = binaries.dir.join("pg_config");
    if own_pg_config.is_file() {
        if let Some(share) = pg_config(&own_pg_config, "--sharedir") {
            dirs.push(PathBuf::from(share).join("extension"));
        }
    }
    // The `pg_config` on PATH may belong to another major version (Debian's wrapper reports the
    // newest one), so it only counts when its version matches.
    let path_pg_config = Path::new("pg_config");
    if pg_config(path_pg_config, "--version")
        .and_then(|v| parse_major_version(&v))
        .as_deref()
        == Some(binaries.major.as_str())
    {
        if let Some(share) = pg_config(path_pg_config, "--sharedir") {
            dirs.push(PathBuf::from(share).join("extension"));
        }
    }
    dirs.push(PathBuf::from(format!(
        "/usr/share/postgresql/{}/extension",
        binaries.major
    )));
    if let Some(prefix) = binaries.dir.parent() {
        dirs.push(prefix.join("share/postgresql/extension"));
        dirs.push(prefix.join("share/extension"));
    }
    dirs.dedup();
    dirs
}

pub(super) fn check_postgis(major: &str, extension_dirs: &[PathBuf]) -> Result<()> {
    if extension_dirs
        .iter()
        .any(|d| d.join("postgis.control").is_file())
    {
        return Ok(());
    }
    Err(EmbeddedPgError::PostgisMissing {
        major: major.to_string(),
        searched: extension_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_pg::tests::temp_dir;

    #[test]
    fn missing_postgis_is_reported_with_the_install_command() {
        let tmp = temp_dir();
        let err = check_postgis("15", &[tmp.path().to_path_buf()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("sudo apt-get install postgresql-15-postgis-3"),
            "{err}"
        );
    }
}
