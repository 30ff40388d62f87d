//! Shared test support. Each `tests/*.rs` file does `mod support;` and uses what it needs.
//! Owners: `mod.rs` (running the xtask, temp repos, Docker checks, the busybox base);
//! the image/smoke/integration, scan and publish tests add their own submodules here.
#![allow(dead_code)]

pub mod image;

pub mod bed;
pub mod boltdb;
pub mod fakebin;
pub mod http;
pub mod registry;
pub mod signing;
pub mod trivy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Every image, container and temp folder a test makes starts with this, so that
/// `.ci/run` can sweep leftovers of a crashed run.
pub const PREFIX: &str = "pp-test";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The built xtask. Cargo names it for integration tests; the example that reuses this
/// support (`examples/local_release.rs`) finds it next to itself instead.
pub fn xtask_bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_xtask") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().join("xtask")
        }
    }
}

/// A fresh, empty folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("{PREFIX}-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Output of a command, with helpers for assertions.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
    /// The one `error:` line the contract promises on failure.
    pub fn error_line(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "want exactly one error line, got:\n{}", self.stderr);
        lines[0].to_string()
    }
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A copy of this repo (tracked and untracked-not-ignored files) in a temp dir, committed
/// as one commit, so tests can change files, dirty the tree or run the xtask against it.
pub struct TempRepo {
    pub dir: TempDir,
}

impl TempRepo {
    pub fn new() -> TempRepo {
        let dir = TempDir::new("repo");
        let root = repo_root();
        let files = Command::new("git")
            .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
            .current_dir(&root)
            .output()
            .unwrap();
        for rel in files.stdout.split(|b| *b == 0).filter(|s| !s.is_empty()) {
            let rel = std::str::from_utf8(rel).unwrap();
            let src = root.join(rel);
            if !src.is_file() {
                continue; // deleted in the working tree
            }
            let dst = dir.path().join(rel);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(&src, &dst).unwrap();
        }
        let repo = TempRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.commit("initial");
        repo
    }

    /// A copy whose Cargo.toml names the image `image` (so its builds and pushes are this
    /// test's own), committed.
    pub fn named(image: &str) -> TempRepo {
        let repo = TempRepo::new();
        let toml = repo.read("Cargo.toml");
        assert!(
            toml.contains("image = \"policy-platform\""),
            "Cargo.toml names the image policy-platform"
        );
        repo.write(
            "Cargo.toml",
            &toml.replace("image = \"policy-platform\"", &format!("image = \"{image}\"")),
        );
        repo.commit("test image name");
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=test",
                "-c",
                "user.email=test@example.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn commit(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
    }

    /// The commit HEAD names (40 hex digits).
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// VERSION set to `v`, committed as a release.
    pub fn set_version(&self, v: &str) {
        self.write("VERSION", &format!("{v}\n"));
        self.commit(&format!("release {v}"));
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// `cargo xtask <args>` against this copy (the test binary, with XTASK_ROOT set).
    pub fn xtask(&self, args: &[&str]) -> Run {
        self.xtask_cmd(args, |_| {})
    }

    pub fn xtask_cmd(&self, args: &[&str], f: impl FnOnce(&mut Command)) -> Run {
        let mut cmd = Command::new(xtask_bin());
        cmd.args(args).current_dir(self.path()).env("XTASK_ROOT", self.path());
        f(&mut cmd);
        Run::from(cmd.output().unwrap())
    }
}

/// Where `name` is on the test's own PATH, if anywhere.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Docker must answer. Every test that calls this is `#[ignore = "needs Docker"]`: a
/// plain `cargo test` reports it as ignored; `.ci/run` runs it (`--include-ignored`), and
/// there a missing Docker is a failure, never a pass.
pub fn need_docker() {
    assert!(
        docker_answers(),
        "this test needs Docker (it is #[ignore]d unless run with --include-ignored): start the Docker daemon"
    );
}

/// Whether the Docker daemon answers (checked once per process).
pub fn docker_answers() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

pub fn docker(args: &[&str]) -> Run {
    Run::from(Command::new("docker").args(args).output().expect("docker runs"))
}

/// A name of this test process: `pp-test-<what>-<pid>-<n>`.
pub fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{PREFIX}-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// An image FROM `base` with the Dockerfile lines `steps` (no build context), tagged `name`.
pub fn derive(name: &str, base: &str, steps: &str) {
    let mut b = Command::new("docker")
        .args(["build", "-q", "-t", name, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut b.stdin.take().unwrap(),
        format!("FROM {base}\n{steps}\n").as_bytes(),
    )
    .unwrap();
    let out = b.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "derive {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes every local name of the images whose name contains `image`: tags,
/// registry-prefixed ones, untagged pulls by id. By name, not id: a base's id is shared
/// with other tests' images. Untagged pulls (a base whose tag moved) go by `repo@digest`:
/// they may have children.
pub fn remove_images_named(image: &str) {
    let out = docker(&[
        "image",
        "ls",
        "--digests",
        "--format",
        "{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}",
    ]);
    let names: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| l.contains(image))
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [_, "<none>", "<none>", id] => Some(id.to_string()),
            [repo, "<none>", digest, _] => Some(format!("{repo}@{digest}")),
            [repo, tag, _, _] => Some(format!("{repo}:{tag}")),
            _ => None,
        })
        .collect();
    if !names.is_empty() {
        let mut args = vec!["rmi", "-f"];
        args.extend(names.iter().map(String::as_str));
        docker(&args);
    }
}

/// A base image made from Debian's busybox-static, imported once per test process:
/// `sh`, `wget`, `tar`, `gzip`, `sha256sum` and friends, about 2 MB, in about a second.
pub fn busybox_base() -> String {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        let name = format!("{PREFIX}-base:busybox");
        let tmp = TempDir::new("busybox");
        let root = tmp.path().join("root");
        for d in ["bin", "tmp", "etc", "usr/local/bin", "workspace"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let bb = Path::new("/usr/bin/busybox");
        assert!(bb.exists(), "install busybox-static (apt-get install busybox-static)");
        std::fs::copy(bb, root.join("bin/busybox")).unwrap();
        let applets = Command::new(bb).arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&applets.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
            }
        }
        // Like any distro base: a world-writable, sticky /tmp (the tools write there as non-root).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        let tar = tmp.path().join("rootfs.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
        let r = docker(&[
            "import",
            "--change",
            "ENV PATH=/usr/local/bin:/bin",
            "--change",
            "CMD [\"/bin/sh\"]",
            tar.to_str().unwrap(),
            &name,
        ]);
        assert_eq!(r.code, 0, "docker import: {r:?}");
        name
    })
    .clone()
}
