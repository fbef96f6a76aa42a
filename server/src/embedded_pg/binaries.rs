//! Finding the PostgreSQL server binaries installed on the system, and their major version.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{io_err, EmbeddedPgError, Result};

/// The programs a usable bin directory must contain.
const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
/// Where Debian/Ubuntu install the server binaries, one directory per major version.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// Where to look for the PostgreSQL server binaries.
#[derive(Debug, Clone)]
pub(super) enum BinDirs {
    /// `PG_BIN_DIR` was set: use exactly this directory and nothing else, so a wrong setting is
    /// reported rather than silently bypassed.
    Explicit(PathBuf),
    /// `/usr/lib/postgresql/<version>/bin` (preferring the version of an existing cluster,
    /// else the highest), then `pg_config --bindir`.
    Search,
}

impl BinDirs {
    pub(super) fn from_env() -> Self {
        match std::env::var_os("PG_BIN_DIR") {
            Some(dir) if !dir.is_empty() => BinDirs::Explicit(dir.into()),
            _ => BinDirs::Search,
        }
    }
}

#[derive(Debug)]
pub(super) struct Binaries {
    pub(super) dir: PathBuf,
    /// Major version, e.g. "15", as PostgreSQL writes it into `PG_VERSION`.
    pub(super) major: String,
}

impl Binaries {
    pub(super) fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn has_server_programs(dir: &Path) -> bool {
    SERVER_PROGRAMS.iter().all(|p| dir.join(p).is_file())
}

pub(super) fn find_binaries(bin_dirs: &BinDirs, cluster_major: Option<&str>) -> Result<Binaries> {
    let mut searched = Vec::new();
    let dir = match bin_dirs {
        BinDirs::Explicit(dir) => {
            searched.push(format!("PG_BIN_DIR={}", dir.display()));
            has_server_programs(dir).then(|| dir.clone())
        }
        BinDirs::Search => {
            searched.push(format!("{DEBIAN_PG_ROOT}/*/bin"));
            let mut candidates = debian_bin_dirs();
            // An existing cluster can only be run by its own major version.
            if let Some(major) = cluster_major {
                if let Some(i) = candidates.iter().position(|(v, _)| v == major) {
                    let wanted = candidates.remove(i);
                    candidates.insert(0, wanted);
                }
            }
            candidates
                .into_iter()
                .map(|(_, dir)| dir)
                .next()
                .or_else(|| {
                    searched.push("`pg_config --bindir`".into());
                    let dir = PathBuf::from(pg_config(Path::new("pg_config"), "--bindir")?);
                    has_server_programs(&dir).then_some(dir)
                })
        }
    };
    let Some(dir) = dir else {
        return Err(EmbeddedPgError::BinariesNotFound {
            searched: searched.join(", "),
        });
    };
    let major = server_major_version(&dir.join("postgres"))?;
    tracing::debug!(bin_dir = %dir.display(), major = %major, "found PostgreSQL server binaries");
    Ok(Binaries { dir, major })
}

/// Complete `/usr/lib/postgresql/<version>/bin` directories, highest version first.
fn debian_bin_dirs() -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(DEBIAN_PG_ROOT) else {
        return Vec::new();
    };
    let mut dirs: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path().join("bin"),
            )
        })
        .filter(|(_, bin)| has_server_programs(bin))
        .collect();
    // Numerically, so that 15 sorts above 9.6.
    dirs.sort_by_key(|(version, _)| std::cmp::Reverse(version_key(version)));
    dirs
}

fn version_key(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

/// Runs `<pg_config> <arg>`, returning its trimmed output if it succeeded.
pub(super) fn pg_config(pg_config: &Path, arg: &str) -> Option<String> {
    let out = Command::new(pg_config)
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Major version from `postgres --version` ("postgres (PostgreSQL) 15.20 (Debian ...)" → "15").
/// `--version` is answered before postgres' refusal to run as root, so no user switch is needed.
fn server_major_version(postgres: &Path) -> Result<String> {
    let out = Command::new(postgres)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(format!("run `{} --version`", postgres.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_major_version(&text).ok_or_else(|| EmbeddedPgError::Unusable {
        path: postgres.to_path_buf(),
        reason: format!(
            "`--version` printed {:?}, which is not a PostgreSQL version: point PG_BIN_DIR to a \
             PostgreSQL bin directory",
            text.trim()
        ),
    })
}

/// Also reads `pg_config --version` ("PostgreSQL 15.20 (Debian ...)").
pub(super) fn parse_major_version(version_output: &str) -> Option<String> {
    let after = version_output
        .split_once("PostgreSQL")?
        .1
        .trim_start_matches(')');
    let version = after.split_whitespace().next()?;
    let mut parts = version.split('.');
    let first: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let first_num: u32 = first.parse().ok()?;
    // Before PostgreSQL 10 the major version had two parts (9.6).
    if first_num < 10 {
        let second: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(format!("{first}.{second}"))
    } else {
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_parsed_and_ordered() {
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)").as_deref(),
            Some("15")
        );
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 17beta1").as_deref(),
            Some("17")
        );
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 9.6.24").as_deref(),
            Some("9.6")
        );
        assert_eq!(
            parse_major_version("PostgreSQL 15.2 (Debian 15.2-1)").as_deref(),
            Some("15")
        );
        assert_eq!(parse_major_version("something else 15.2").as_deref(), None);
        assert!(version_key("15") > version_key("9.6"));
    }
}
