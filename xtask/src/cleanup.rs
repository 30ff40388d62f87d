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
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// The list of this run's background processes (see [`own_process`]): the file [`guard`]
/// created, held open. `None` before, after, or when it could not be created.
static PROCS: Mutex<Option<File>> = Mutex::new(None);

/// A background process of this run (a throwaway registry) that the watchdog stops when
/// the run is gone without having stopped it (a kill, or an abort). Written only to the
/// list [`guard`] created, through the handle it keeps: never to a file found by name.
pub fn own_process(pid: u32) {
    use std::io::Write;
    if let Some(f) = PROCS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let _ = f.write_all(format!("{pid}\n").as_bytes());
    }
}

/// Stops the watchdog when the run ends normally (its folders and containers are gone by then).
pub struct Guard {
    watchdog: Option<Background>,
    /// The list of this run's background processes, when this guard created it.
    procs: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(w) = self.watchdog.take() {
            w.kill();
        }
        if let Some(p) = self.procs.take() {
            PROCS.lock().unwrap_or_else(|e| e.into_inner()).take();
            let _ = std::fs::remove_file(p);
        }
    }
}

fn procs_file(ctx: &Ctx) -> PathBuf {
    ctx.env.tmp.join(format!("{PREFIX}{}-procs", std::process::id()))
}

/// Creates the list exclusively (mode 0600; never an existing file, never through a
/// symlink). The name holds our pid, so whatever is there already is a leftover of an
/// earlier run that had this pid (the sweep skips it: the pid is alive, as ours), or
/// planted: it is unlinked (never followed; in a sticky temp folder like /tmp that
/// succeeds only for a file of our own) and the list created anew, once.
fn create_procs(path: &Path) -> std::io::Result<File> {
    let create = || {
        std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    };
    match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            create()
        }
        r => r,
    }
}

/// `$1` our pid, `$2` the temp folder, `$3` the container label, `$4` the list of our
/// background processes (empty: none; never read by a name of its own making).
const WATCHDOG: &str = r#"trap '' INT TERM HUP
while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -n "$4" ]; then for p in $(cat "$4" 2>/dev/null); do kill "$p" 2>/dev/null; done; fi
ids=$(docker ps -aq --filter "label=$3=$1" 2>/dev/null)
if [ -n "$ids" ]; then docker rm -f $ids >/dev/null 2>&1; fi
rm -rf "$2"/pp-xtask-"$1"-*"#;

/// Sweeps what killed runs left, then starts this run's watchdog.
pub fn guard(ctx: &Ctx) -> Guard {
    sweep(ctx);
    watch(ctx)
}

/// Creates this run's list of background processes and starts its watchdog. A list that
/// cannot be created costs only the stopping of those processes after a kill: one
/// warning, and the run goes on.
fn watch(ctx: &Ctx) -> Guard {
    let path = procs_file(ctx);
    let procs = match create_procs(&path) {
        Ok(f) => {
            *PROCS.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
            Some(path)
        }
        Err(e) => {
            eprintln!(
                "    warning: cannot create {} ({e}); if this run is killed, its background processes are not stopped",
                path.display()
            );
            None
        }
    };
    let pid = std::process::id().to_string();
    let tmp = ctx.env.tmp.display().to_string();
    let list = procs.clone().unwrap_or_default();
    let c = Cmd::new("sh")
        .args(["-c", WATCHDOG, "sh", &pid, &tmp, OWNER_LABEL])
        .arg(&list);
    Guard {
        watchdog: ctx.run.spawn(&c, None).ok(),
        procs,
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
    use super::*;
    use crate::ctx::Env;
    use crate::runner::Runner;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn owners_from_names() {
        assert_eq!(super::owner("pp-xtask-1234-auth-ab12"), Some(1234));
        assert_eq!(super::owner("pp-xtask-x-auth"), None);
        assert_eq!(super::owner("pp-test-1234"), None);
    }

    /// The list of background processes is a new private file of this run: a file or a
    /// symlink planted at its (predictable) name is never written through or appended to.
    #[test]
    fn a_planted_process_list_is_never_written_through() {
        let base = TempDir::new(&std::env::temp_dir(), "pp-test-cleanup-").unwrap();
        let env = Env {
            tmp: base.path().to_path_buf(),
            ..Env::default()
        };
        let ctx = Ctx::new(base.path().to_path_buf(), false, env);
        let list = procs_file(&ctx);
        let target = base.path().join("elsewhere");
        std::fs::write(&target, "1\n").unwrap();
        for planted in ["symlink", "file"] {
            match planted {
                "symlink" => std::os::unix::fs::symlink(&target, &list).unwrap(),
                _ => std::fs::write(&list, "1\n").unwrap(),
            }
            let guard = watch(&ctx);
            own_process(4242);
            let meta = std::fs::symlink_metadata(&list).unwrap();
            assert!(meta.file_type().is_file(), "{planted}");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{planted}");
            assert_eq!(std::fs::read_to_string(&list).unwrap(), "4242\n", "{planted}");
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "1\n", "{planted}");
            drop(guard);
            assert!(
                std::fs::symlink_metadata(&list).is_err(),
                "{planted}: the list goes with the run"
            );
        }
        // A name that cannot be replaced (here a folder; another user's file in /tmp alike):
        // no list, nothing written anywhere, the run goes on with its watchdog.
        std::fs::create_dir(&list).unwrap();
        let guard = watch(&ctx);
        own_process(4243);
        assert!(guard.watchdog.is_some() && guard.procs.is_none());
        assert_eq!(std::fs::read_dir(&list).unwrap().count(), 0);
        drop(guard);
        assert!(list.is_dir(), "what is not ours is left alone");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "1\n");
    }

    /// The watchdog stops the processes in the list it is given, and reads no list by a
    /// name of its own: a list planted under the conventional name is ignored.
    #[test]
    fn the_watchdog_reads_only_the_list_it_is_given() {
        let base = TempDir::new(&std::env::temp_dir(), "pp-test-cleanup-").unwrap();
        let r = Runner { dry_run: false };
        let gone = r.spawn(&Cmd::new("true"), None).unwrap();
        let dead = gone.pid().unwrap();
        while gone.ended().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let listed = r.spawn(&Cmd::new("sleep").arg("30"), None).unwrap();
        let planted = r.spawn(&Cmd::new("sleep").arg("30"), None).unwrap();
        let list = base.path().join("list");
        std::fs::write(&list, format!("{}\n", listed.pid().unwrap())).unwrap();
        std::fs::write(
            base.path().join(format!("{PREFIX}{dead}-procs")),
            format!("{}\n", planted.pid().unwrap()),
        )
        .unwrap();
        let tmp = base.path().display().to_string();
        for given in [std::path::PathBuf::new(), list] {
            let c = Cmd::new("sh")
                .args(["-c", WATCHDOG, "sh", &dead.to_string(), &tmp, "pp-test-cleanup-none"])
                .arg(&given);
            assert!(r.read(&c).unwrap().ok());
        }
        let start = std::time::Instant::now();
        while listed.ended().is_none() && start.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(listed.ended().is_some(), "the listed process was not stopped");
        assert!(
            planted.ended().is_none(),
            "a process named in a planted list was stopped"
        );
        planted.kill();
    }
}
