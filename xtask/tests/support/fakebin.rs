//! A folder of small scripts put first on PATH: stand-ins that record each call (a fake
//! `docker`, a credential helper), wrappers that write down the environment a real tool
//! was started with and then run it, and a hold that stops a real tool at its start until
//! the test lets it go (to make one of two racing publishes slow at a chosen point).

use super::{on_path, TempDir};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One start of a wrapped tool: its name, its arguments (one line) and its environment.
#[derive(Debug)]
pub struct Dump {
    pub tool: String,
    pub argv: String,
    pub vars: Vec<(String, String)>,
}

impl Dump {
    pub fn var(&self, k: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

pub struct FakeBin {
    pub dir: TempDir,
}

impl Default for FakeBin {
    fn default() -> FakeBin {
        FakeBin::new()
    }
}

impl FakeBin {
    pub fn new() -> FakeBin {
        let dir = TempDir::new("fakebin");
        for d in ["bin", "calls", "env", "hold"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        FakeBin { dir }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// `bin/NAME`: a `sh` script with `body`.
    pub fn script(&self, name: &str, body: &str) {
        let p = self.bin().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A script that appends its arguments (one line per call) to `calls/NAME`, then runs `body`.
    pub fn recorder(&self, name: &str, body: &str) {
        let log = self.dir.path().join("calls").join(name);
        self.script(name, &format!("printf '%s\\n' \"$*\" >> '{}'\n{body}", log.display()));
    }

    /// The calls `recorder` wrote down (empty: never called).
    pub fn calls(&self, name: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("calls").join(name)).unwrap_or_default();
        text.lines().map(String::from).collect()
    }

    /// A wrapper for the real `name` (as found on the test's PATH now): writes its
    /// arguments and environment to `env/NAME.<pid>`, then runs the real tool.
    pub fn wrap_env(&self, name: &str) {
        let real = on_path(name).unwrap_or_else(|| panic!("{name} is not on PATH"));
        self.wrap_env_of(name, &real);
    }

    /// The same for a tool not on the test's PATH (the real Trivy).
    pub fn wrap_env_of(&self, name: &str, real: &Path) {
        let dump = self.dir.path().join("env");
        self.script(
            name,
            &format!(
                "f='{}/{name}.'$$\n{{ printf 'argv: %s\\n' \"$*\"; env; }} > \"$f\"\nexec '{}' \"$@\"",
                dump.display(),
                real.display()
            ),
        );
    }

    /// Every environment `wrap_env` wrote down.
    pub fn envs(&self) -> Vec<Dump> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.path().join("env")).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let tool = name.rsplit_once('.').map(|(t, _)| t.to_string()).unwrap_or(name);
            let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned();
            let mut lines = text.lines();
            let argv = lines.next().unwrap_or("").trim_start_matches("argv: ").to_string();
            let vars = lines
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            out.push(Dump { tool, argv, vars });
        }
        out
    }

    /// A wrapper for the real `name` that, for a `name image …` run (Trivy's scan, not its
    /// version or waiver-file checks), marks itself as held and waits until
    /// [`FakeBin::release`] before running the real tool.
    pub fn hold(&self, name: &str, real: &Path) {
        let held = self.dir.path().join("hold").join(format!("{name}.held"));
        let go = self.dir.path().join("hold").join(format!("{name}.go"));
        self.script(
            name,
            &format!(
                "if [ \"$1\" = image ]; then\n  touch '{}'\n  while [ ! -e '{}' ]; do sleep 0.1; done\nfi\nexec '{}' \"$@\"",
                held.display(),
                go.display(),
                real.display()
            ),
        );
    }

    /// Whether a held tool was started (and is waiting).
    pub fn held(&self, name: &str) -> bool {
        self.dir.path().join("hold").join(format!("{name}.held")).exists()
    }

    pub fn release(&self, name: &str) {
        std::fs::write(self.dir.path().join("hold").join(format!("{name}.go")), "").unwrap();
    }

    /// This folder, then `rest` (a PATH value).
    pub fn path_before(&self, rest: &std::ffi::OsStr) -> OsString {
        let mut dirs = vec![self.bin()];
        dirs.extend(std::env::split_paths(rest));
        std::env::join_paths(dirs).unwrap()
    }
}
