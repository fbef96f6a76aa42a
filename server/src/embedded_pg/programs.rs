//! Running PostgreSQL's programs: as which user (they refuse to run as root), from where,
//! with which environment, and what they printed.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use nix::unistd::{Gid, Uid, User};

use super::error::{io_err, EmbeddedPgError, Result};

#[derive(Debug, Clone)]
pub(super) struct RunAs {
    /// For messages only.
    pub(super) name: String,
    /// `Some` when we are root and must switch to this user for every PostgreSQL program.
    pub(super) ids: Option<(Uid, Gid)>,
}

impl RunAs {
    pub(super) fn for_data_dir(data_dir: &Path, cluster_exists: bool) -> Result<RunAs> {
        let euid = nix::unistd::geteuid();
        if !euid.is_root() {
            let name = User::from_uid(euid)
                .ok()
                .flatten()
                .map_or_else(|| euid.to_string(), |u| u.name);
            return Ok(RunAs { name, ids: None });
        }
        if cluster_exists {
            let meta = fs::metadata(data_dir).map_err(io_err(format!(
                "inspect data directory {}",
                data_dir.display()
            )))?;
            if meta.uid() == 0 {
                return Err(EmbeddedPgError::Unusable {
                    path: data_dir.to_path_buf(),
                    reason:
                        "the PostgreSQL cluster in it is owned by root, and PostgreSQL refuses \
                             to run as root: give it to the postgres user with \
                             `chown -R postgres: <data dir>` and start again"
                            .into(),
                });
            }
            let uid = Uid::from_raw(meta.uid());
            let user = User::from_uid(uid).ok().flatten();
            return Ok(RunAs {
                name: user
                    .as_ref()
                    .map_or_else(|| uid.to_string(), |u| u.name.clone()),
                ids: Some((uid, user.map_or(Gid::from_raw(meta.gid()), |u| u.gid))),
            });
        }
        for name in ["postgres", "nobody"] {
            let user = User::from_name(name).map_err(|source| EmbeddedPgError::UserLookup {
                name: name.into(),
                source,
            })?;
            if let Some(user) = user {
                return Ok(RunAs {
                    name: user.name,
                    ids: Some((user.uid, user.gid)),
                });
            }
        }
        Err(EmbeddedPgError::NoUnprivilegedUser)
    }

    /// A command for a PostgreSQL program, run as this user.
    ///
    /// The working directory is `/` because the caller's (often under `/root`) may be closed to
    /// the unprivileged user, and initdb calls `getcwd`. `LC_ALL=C` keeps messages in English,
    /// which the initdb locale fallback relies on. PG* variables that could redirect the
    /// programs elsewhere are removed.
    pub(super) fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir("/")
            .stdin(Stdio::null())
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .env_remove("PGOPTIONS");
        if let Some((uid, gid)) = self.ids {
            // std clears supplementary groups when root switches uid, so only these two count.
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }

    /// Fails with a clear message if this user cannot enter every ancestor of `path`.
    /// Only needed when switching users; ACLs are ignored.
    pub(super) fn check_can_reach(&self, path: &Path) -> Result<()> {
        let Some((uid, gid)) = self.ids else {
            return Ok(());
        };
        for dir in path.ancestors().skip(1) {
            let Ok(meta) = fs::metadata(dir) else {
                continue;
            };
            let bits = if meta.uid() == uid.as_raw() {
                0o100
            } else if meta.gid() == gid.as_raw() {
                0o010
            } else {
                0o001
            };
            if meta.mode() & bits == 0 {
                return Err(EmbeddedPgError::NotReachable {
                    user: self.name.clone(),
                    blocked: dir.to_path_buf(),
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(())
    }

    /// Gives `path` to this user (when switching users) and sets its mode.
    pub(super) fn hand_over(&self, path: &Path, mode: u32) -> Result<()> {
        if let Some((uid, gid)) = self.ids {
            chown(path, Some(uid.as_raw()), Some(gid.as_raw())).map_err(io_err(format!(
                "give {} to user {}",
                path.display(),
                self.name
            )))?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(io_err(format!("set permissions of {}", path.display())))
    }
}

pub(super) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let _ = write!(s, " {}", arg.to_string_lossy());
    }
    s
}

pub(super) fn combined_output(stdout: &[u8], stderr: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(stdout).trim_end().to_string();
    let err = String::from_utf8_lossy(stderr);
    if !err.trim().is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(err.trim_end());
    }
    text
}

/// Runs a command to completion, returning its status and stdout+stderr.
pub(super) async fn run(cmd: Command) -> Result<(ExitStatus, String)> {
    let what = describe(&cmd);
    let out = tokio::process::Command::from(cmd)
        .output()
        .await
        .map_err(io_err(format!("run `{what}`")))?;
    Ok((out.status, combined_output(&out.stdout, &out.stderr)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_pg::tests::temp_dir;

    #[test]
    fn unreachable_parents_are_reported() {
        let tmp = temp_dir();
        let closed = tmp.path().join("closed");
        fs::create_dir(&closed).unwrap();
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
        // A user that owns nothing here and is in no group that does.
        let run_as = RunAs {
            name: "nobody".into(),
            ids: Some((Uid::from_raw(65534), Gid::from_raw(65534))),
        };
        let err = run_as
            .check_can_reach(&closed.join("postgres"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("chmod o+x {}", closed.display())),
            "{err}"
        );
        run_as
            .check_can_reach(&tmp.path().join("postgres"))
            .unwrap();
    }
}
