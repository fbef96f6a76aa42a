//! The cluster on disk: whether the data directory holds one, and creating it (`initdb`).

use std::fs;
use std::io;
use std::path::Path;

use super::binaries::Binaries;
use super::error::{io_err, EmbeddedPgError, Result};
use super::programs::{run, RunAs};

/// The superuser `initdb -U` creates; with `trust` auth it needs no password.
pub(super) const SUPERUSER: &str = "postgres";

/// `PG_VERSION` is what makes a directory a cluster; `None` if there is none yet.
pub(super) fn read_cluster_version(data_dir: &Path) -> Result<Option<String>> {
    match fs::read_to_string(data_dir.join("PG_VERSION")) {
        Ok(v) => Ok(Some(v.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(format!("read {}/PG_VERSION", data_dir.display()))(e)),
    }
}

/// initdb would refuse a non-empty directory anyway; saying so up front is clearer and never
/// risks mixing a cluster into someone's files.
pub(super) fn ensure_empty(data_dir: &Path) -> Result<()> {
    let mut entries = fs::read_dir(data_dir).map_err(io_err(format!(
        "read data directory {}",
        data_dir.display()
    )))?;
    if entries.next().is_some() {
        return Err(EmbeddedPgError::Unusable {
            path: data_dir.to_path_buf(),
            reason: "it is not empty and holds no PostgreSQL cluster (no PG_VERSION): choose an \
                     empty or new data directory"
                .into(),
        });
    }
    Ok(())
}

pub(super) async fn initdb(binaries: &Binaries, run_as: &RunAs, data_dir: &Path) -> Result<()> {
    tracing::info!(data_dir = %data_dir.display(), user = %run_as.name, "creating a new PostgreSQL cluster (initdb)");
    let mut outputs = Vec::new();
    // C.UTF-8 sorts by code point yet knows Unicode character classes; some systems lack it,
    // and then plain C still works with UTF8 encoding.
    for locale in ["C.UTF-8", "C"] {
        let mut cmd = run_as.command(&binaries.program("initdb"));
        cmd.arg("-D")
            .arg(data_dir)
            .args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"])
            .arg(format!("--locale={locale}"));
        let (status, output) = run(cmd).await?;
        if status.success() {
            tracing::info!(data_dir = %data_dir.display(), locale, "PostgreSQL cluster created");
            return Ok(());
        }
        // initdb empties the directory again when it fails, so the retry starts clean.
        let locale_refused = output.contains("locale");
        outputs.push(output);
        if !locale_refused {
            break;
        }
        tracing::warn!(data_dir = %data_dir.display(), "initdb refused locale {locale}; trying the next one");
    }
    Err(EmbeddedPgError::InitdbFailed {
        data_dir: data_dir.to_path_buf(),
        output: outputs.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_pg::tests::temp_dir;

    #[test]
    fn a_non_empty_directory_is_not_turned_into_a_cluster() {
        let tmp = temp_dir();
        fs::write(tmp.path().join("something"), "x").unwrap();
        let err = ensure_empty(tmp.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("choose an empty or new data directory"),
            "{err}"
        );
    }
}
