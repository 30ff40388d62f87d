//! What every task gets: the shell, the repo root, the config, and the one place that
//! echoes and runs external commands (so a CI log reads as a transcript).

use crate::config::Config;
use anyhow::{Context, Result};
use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use xshell::{Cmd, Shell};

pub struct Ctx {
    pub sh: Shell,
    pub root: PathBuf,
    pub dry_run: bool,
    pub ci: bool,
    config: OnceCell<Config>,
}

impl Ctx {
    pub fn new(dry_run: bool) -> Result<Ctx> {
        Ctx::at(project_root(), dry_run)
    }

    /// A context on the checkout at `root` (publish --rebuild builds a worktree of the release).
    pub fn at(root: PathBuf, dry_run: bool) -> Result<Ctx> {
        let sh = Shell::new()?;
        sh.change_dir(&root);
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        Ok(Ctx { sh, root, dry_run, ci, config: OnceCell::new() })
    }

    /// Another context on the same repo (same config, same Docker credentials folder), for
    /// a gate on another thread (a shell is not shared across threads) or a dry run of it.
    pub fn sibling(&self, dry_run: bool) -> Result<Ctx> {
        let sh = Shell::new()?;
        sh.change_dir(&self.root);
        if let Some(d) = self.sh.var_os("DOCKER_CONFIG") {
            sh.set_var("DOCKER_CONFIG", d);
        }
        let config = OnceCell::new();
        if let Some(c) = self.config.get() {
            let _ = config.set(c.clone());
        }
        Ok(Ctx { sh, root: self.root.clone(), dry_run, ci: self.ci, config })
    }

    pub fn config(&self) -> Result<&Config> {
        if let Some(c) = self.config.get() {
            return Ok(c);
        }
        let c = Config::load(self)?;
        Ok(self.config.get_or_init(|| c))
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// `target/xtask/<rel>`, where every report and record goes.
    pub fn out_dir(&self, rel: &str) -> Result<PathBuf> {
        let dir = self.root.join("target/xtask").join(rel);
        if !self.dry_run {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(dir)
    }

    /// Runs a command that changes something; in a dry run it is only printed.
    pub fn run(&self, cmd: Cmd<'_>) -> Result<()> {
        self.echo(&cmd);
        if self.dry_run {
            return Ok(());
        }
        cmd.quiet().run()?;
        Ok(())
    }

    /// Runs a read-only command (it also runs in a dry run: plans need facts) and returns stdout.
    pub fn probe(&self, cmd: Cmd<'_>) -> Result<String> {
        self.echo(&cmd);
        Ok(cmd.quiet().read()?)
    }

    /// Like `probe`, but returns the whole output and never fails on a non-zero status.
    pub fn probe_output(&self, cmd: Cmd<'_>) -> Result<std::process::Output> {
        self.echo(&cmd);
        Ok(cmd.quiet().ignore_status().output()?)
    }

    pub fn echo(&self, cmd: &Cmd<'_>) {
        let mark = if self.dry_run { "[dry-run] " } else { "" };
        eprintln!("{mark}$ {cmd}");
    }

    /// Prints a step header; in CI as a collapsible group.
    pub fn step(&self, name: &str) {
        if self.ci && std::env::var_os("GITHUB_ACTIONS").is_some() {
            eprintln!("::group::{name}");
        } else {
            eprintln!("==> {name}");
        }
    }

    pub fn end_step(&self) {
        if self.ci && std::env::var_os("GITHUB_ACTIONS").is_some() {
            eprintln!("::endgroup::");
        }
    }
}

/// The repo root: `XTASK_ROOT` if set (tests use copies of the repo), else the
/// workspace this xtask was built from.
pub fn project_root() -> PathBuf {
    if let Some(r) = std::env::var_os("XTASK_ROOT") {
        return PathBuf::from(r);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}
