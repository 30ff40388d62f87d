//! The publish test bed: a temp repo with an image name of its own, the stand-in tool
//! server, the real Trivy with an offline cache, and a base image of its own. Runs
//! `cargo xtask publish` against real registries, in the foreground or in the background,
//! from its own checkout or from a second checkout of the same image (two releases racing).

use super::image::{base_args, tool_args, ToolServer};
use super::registry::{Registry, USER};
use super::trivy::{BinDir, Cache};
use super::{busybox_base, derive, need_docker, remove_images_named, unique, xtask_bin, Run, TempDir, TempRepo};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The registry password in every test: it must never show up in output, argv or files.
/// Made at run time, so that no source file (copied into each temp repo) holds it.
pub fn canary() -> &'static str {
    static C: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    C.get_or_init(|| format!("canary{}x{}", std::process::id(), "Pw-never-shown"))
}

pub fn ok(r: &Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

/// Whether a run built an image.
pub fn built(r: &Run) -> bool {
    r.stderr.contains("docker build")
}

/// A temp repo with its own image name, the tool server and an offline Trivy.
pub struct Bed {
    pub repo: TempRepo,
    pub tools: ToolServer,
    pub trivy: BinDir,
    pub cache: Cache,
    pub image: String,
    pub base: String,
}

impl Bed {
    pub fn new(what: &str) -> Bed {
        need_docker();
        let trivy = BinDir::real();
        let image = unique(what);
        let repo = checkout_of(&image);
        // A base of this test's own (its own id): other test processes re-import the shared
        // busybox tag, and tests that build the same Dockerfile on one base id make several
        // equal cache chains, of which the classic builder may pick another on a rebuild.
        let base = format!("{image}-base:1");
        derive(
            &base,
            &busybox_base(),
            &format!("LABEL io.policy-platform.test-bed={image}"),
        );
        Bed {
            repo,
            tools: ToolServer::start(),
            trivy,
            cache: Cache::with(&[]),
            image,
            base,
        }
    }

    /// Another checkout publishing the same image (another clone of the repo, another
    /// commit): what a second CI job or a colleague's machine would run.
    pub fn checkout(&self) -> TempRepo {
        checkout_of(&self.image)
    }

    /// `cargo xtask publish` with the build arguments of the stand-in tools, the given
    /// registries and flags, and `password` (None: no credentials in the environment).
    pub fn publish(&self, regs: &[&Registry], extra: &[&str], password: Option<&str>) -> Run {
        self.publish_with(regs, extra, |c| with_password(c, password))
    }

    pub fn publish_with(&self, regs: &[&Registry], extra: &[&str], f: impl FnOnce(&mut Command)) -> Run {
        self.publish_in(&self.repo, regs, extra, f)
    }

    /// The same from another checkout (see [`Bed::checkout`]).
    pub fn publish_in(&self, repo: &TempRepo, regs: &[&Registry], extra: &[&str], f: impl FnOnce(&mut Command)) -> Run {
        Run::from(self.command(repo, regs, extra, f).output().unwrap())
    }

    /// The same, started in the background; [`Started::finish`] waits for it.
    pub fn start_in(
        &self,
        repo: &TempRepo,
        regs: &[&Registry],
        extra: &[&str],
        f: impl FnOnce(&mut Command),
    ) -> Started {
        Started::spawn(self.command(repo, regs, extra, f))
    }

    pub fn command(
        &self,
        repo: &TempRepo,
        regs: &[&Registry],
        extra: &[&str],
        f: impl FnOnce(&mut Command),
    ) -> Command {
        // The base of this test's own, for every stage of the Dockerfile that takes one;
        // with a mirror, the mirror gives every download URL.
        let mut args: Vec<String> = vec!["publish".into()];
        args.extend(base_args(&self.base));
        args.extend(tool_args(&self.tools, !extra.contains(&"--tools-mirror")));
        args.extend(["--network".to_string(), "host".to_string()]);
        for r in regs {
            args.push("--registry".into());
            args.push(r.addr());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut c = Command::new(xtask_bin());
        c.args(&args)
            .current_dir(repo.path())
            .env("XTASK_ROOT", repo.path())
            .env("PATH", self.trivy.path_var())
            .env("TRIVY_CACHE_DIR", self.cache.path())
            .env("TRIVY_SKIP_DB_UPDATE", "true")
            .env("TRIVY_NO_PROGRESS", "true")
            .env_remove("REGISTRY_PASSWORD_FILE")
            .env_remove("CI")
            .env_remove("REGISTRY_USERNAME")
            .env_remove("REGISTRY_PASSWORD");
        f(&mut c);
        c
    }

    pub fn set_version(&self, v: &str) {
        self.repo.set_version(v);
    }

    pub fn head(&self) -> String {
        self.repo.head()
    }

    pub fn record(&self) -> serde_json::Value {
        record(&self.repo)
    }

    /// The canary in no file of the repo copy (sources, target/, .git).
    pub fn assert_no_canary_in_files(&self) {
        self.assert_not_in_files(canary(), "the password");
    }

    /// `secret` (`what` it is, for the message) in no file of the repo copy (sources,
    /// target/, .git).
    pub fn assert_not_in_files(&self, secret: &str, what: &str) {
        let out = Command::new("grep")
            .args(["-r", "-l", "-F", "--", secret])
            .arg(self.repo.path())
            .output()
            .unwrap();
        assert!(
            out.stdout.is_empty(),
            "{what} is in: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        remove_images_named(&self.image);
    }
}

/// `REGISTRY_USERNAME`/`REGISTRY_PASSWORD` set, or (None) no credentials at all.
pub fn with_password(c: &mut Command, password: Option<&str>) {
    match password {
        Some(p) => c.env("REGISTRY_USERNAME", USER).env("REGISTRY_PASSWORD", p),
        None => c.env_remove("REGISTRY_USERNAME").env_remove("REGISTRY_PASSWORD"),
    };
}

/// A copy of the repo whose Cargo.toml names `image`, committed.
fn checkout_of(image: &str) -> TempRepo {
    let repo = TempRepo::named(image);
    // These tests give the rebuild its base themselves (tests/weekly.rs follows a track).
    let toml: String = repo
        .read("Cargo.toml")
        .lines()
        .filter(|l| !l.starts_with("base-image-track"))
        .map(|l| format!("{l}\n"))
        .collect();
    repo.write("Cargo.toml", &toml);
    repo.commit("no base track");
    repo
}

/// What the last publish in `repo` recorded (`target/xtask/release.json`).
pub fn record(repo: &TempRepo) -> serde_json::Value {
    serde_json::from_str(&repo.read("target/xtask/release.json")).unwrap()
}

/// A publish running in the background, its output going to files.
pub struct Started {
    child: std::process::Child,
    out: TempDir,
}

impl Started {
    pub fn spawn(mut c: Command) -> Started {
        let out = TempDir::new("started");
        let stdout = std::fs::File::create(out.path().join("stdout")).unwrap();
        let stderr = std::fs::File::create(out.path().join("stderr")).unwrap();
        let child = c.stdout(stdout).stderr(stderr).stdin(Stdio::null()).spawn().unwrap();
        Started { child, out }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.out.path().join("stderr")).unwrap_or_default()
    }

    /// Waits until `cond` holds; panics when the run ended first or after `limit`.
    pub fn wait_until(&mut self, what: &str, limit: Duration, cond: impl Fn() -> bool) {
        let start = Instant::now();
        while !cond() {
            if let Some(s) = self.child.try_wait().unwrap() {
                panic!("ended ({s}) before {what}; stderr:\n{}", self.stderr());
            }
            assert!(
                start.elapsed() < limit,
                "not {what} after {limit:?}; stderr so far:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the end (killed after `limit`: a test never hangs).
    pub fn finish(mut self, limit: Duration) -> Run {
        let start = Instant::now();
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code().unwrap_or(-1);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("still running after {limit:?}; stderr so far:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Run {
            code,
            stdout: std::fs::read_to_string(self.out.path().join("stdout")).unwrap_or_default(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // A test that failed midway: the publish does not outlive it.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
