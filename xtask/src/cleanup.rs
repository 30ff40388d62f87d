//! What a run leaves behind if it is killed (Ctrl-C, SIGTERM, a crash without unwinding):
//! its temp folders (`<tmp>/pp-xtask-<pid>-…`) and its containers (label
//! `io.policy-platform.xtask=<pid>`, in any state, "Created" included). A watchdog
//! process removes them once this process is gone, however it ended; the next run sweeps
//! whatever a killed watchdog left.

use crate::ctx::Ctx;
use crate::files::TempDir;
use crate::runner::{Background, Cmd};
use crate::tools::docker::OWNER_LABEL;
use anyhow::Result;
use std::path::Path;

/// Prefix of every temp folder the xtask makes; the process id follows.
pub const PREFIX: &str = "pp-xtask-";

/// A private temp folder of this run (see [`TempDir`]), found by the watchdog by its name.
pub fn temp_dir(ctx: &Ctx, what: &str) -> Result<TempDir> {
    temp_dir_in(&ctx.env.tmp, what)
}

/// [`temp_dir`] under `parent`, which must be the run's temp folder (the same folder by
/// another path, e.g. its canonical one), or the watchdog does not find it.
pub fn temp_dir_in(parent: &Path, what: &str) -> Result<TempDir> {
    TempDir::new(parent, &format!("{PREFIX}{}-{what}-", std::process::id()))
}

/// A background process of this run (a throwaway registry) that the watchdog stops when
/// the run is gone without having stopped it (a kill, or an abort).
pub fn own_process(ctx: &Ctx, pid: u32) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(procs_file(ctx))
    {
        let _ = writeln!(f, "{pid}");
    }
}

/// Stops the watchdog when the run ends normally (its folders and containers are gone by then).
pub struct Guard {
    watchdog: Option<Background>,
    /// The list of this run's background processes (see [`own_process`]).
    procs: std::path::PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(w) = self.watchdog.take() {
            w.kill();
        }
        let _ = std::fs::remove_file(&self.procs);
    }
}

fn procs_file(ctx: &Ctx) -> std::path::PathBuf {
    ctx.env.tmp.join(format!("{PREFIX}{}-procs", std::process::id()))
}

const WATCHDOG: &str = r#"trap '' INT TERM HUP
while kill -0 "$1" 2>/dev/null; do sleep 1; done
for p in $(cat "$2"/pp-xtask-"$1"-procs 2>/dev/null); do kill "$p" 2>/dev/null; done
ids=$(docker ps -aq --filter "label=$3=$1" 2>/dev/null)
if [ -n "$ids" ]; then docker rm -f $ids >/dev/null 2>&1; fi
rm -rf "$2"/pp-xtask-"$1"-*"#;

/// Sweeps what killed runs left, then starts this run's watchdog.
pub fn guard(ctx: &Ctx) -> Guard {
    sweep(ctx);
    let pid = std::process::id().to_string();
    let tmp = ctx.env.tmp.display().to_string();
    let c = Cmd::new("sh").args(["-c", WATCHDOG, "sh", &pid, &tmp, OWNER_LABEL]);
    Guard {
        watchdog: ctx.run.spawn(&c, None).ok(),
        procs: procs_file(ctx),
    }
}

fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The process id in a name like `pp-xtask-<pid>-…`.
pub fn owner(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Removes the temp folders and containers of runs that are gone.
pub fn sweep(ctx: &Ctx) {
    if let Ok(entries) = std::fs::read_dir(&ctx.env.tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Only real folders and files of ours (never through a symlink someone planted).
            let Ok(t) = e.file_type() else { continue };
            if owner(&name).is_none_or(alive) || t.is_symlink() {
                continue;
            }
            eprintln!("    removing {} (left by a run that was killed)", e.path().display());
            let _ = if t.is_dir() {
                std::fs::remove_dir_all(e.path())
            } else {
                std::fs::remove_file(e.path())
            };
        }
    }
    if crate::tools::find("docker").is_none() {
        return;
    }
    let list = Cmd::new("docker").args([
        "ps",
        "-a",
        "--filter",
        &format!("label={OWNER_LABEL}"),
        "--format",
        &format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}"),
    ]);
    let Ok(out) = ctx.run.read(&list) else { return };
    let stale: Vec<String> = out
        .text()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, pid)| pid.parse::<u32>().is_ok_and(|p| !alive(p)))
        .map(|(id, _)| id.to_string())
        .collect();
    if !stale.is_empty() {
        eprintln!(
            "    removing {} container(s) left by runs that were killed",
            stale.len()
        );
        let _ = ctx.run.read(&Cmd::new("docker").args(["rm", "-f", "--"]).args(&stale));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn owners_from_names() {
        assert_eq!(super::owner("pp-xtask-1234-auth-ab12"), Some(1234));
        assert_eq!(super::owner("pp-xtask-x-auth"), None);
        assert_eq!(super::owner("pp-test-1234"), None);
    }
}
