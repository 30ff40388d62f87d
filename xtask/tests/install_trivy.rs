//! `ci/install-trivy.sh`, the CI templates' Trivy install: run for real (curl, sha256sum,
//! tar, install) against a loopback mirror (`INSTALL_TRIVY_FROM`) into a temp folder
//! (`INSTALL_TRIVY_TO`), in a copy of the script with the repo's Cargo.toml and pin file.
//! The served "trivy" is a small script: the checks are about which bytes get installed.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::http::FileServer;
use support::image::sha256;
use support::{repo_root, Run, TempDir};

const TARBALL: &str = "trivy_0.59.1_Linux-64bit.tar.gz";
/// The sum Aqua Security published for that tarball (its release checksums file, and the
/// same value in independent packagings such as the AUR's trivy-bin PKGBUILD).
const PUBLISHED_SHA256: &str = "e05beab945692d434b1ab5d062be6d2b4ca14bec7975bd734ea2f2de92e6f862";

/// A copy of the repo's install script, Cargo.toml and pin file, a destination
/// folder, and a folder for other `trivy`s on PATH.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new("install-trivy");
        let root = repo_root();
        std::fs::create_dir_all(dir.path().join("repo/ci")).unwrap();
        for rel in ["Cargo.toml", "ci/install-trivy.sh", "ci/trivy.sha256"] {
            std::fs::copy(root.join(rel), dir.path().join("repo").join(rel)).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("dest")).unwrap();
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        Fixture { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn set_version(&self, v: &str) {
        let p = self.path("repo/Cargo.toml");
        let toml = std::fs::read_to_string(&p).unwrap();
        assert!(
            toml.contains("trivy-version = \"0.59.1\""),
            "Cargo.toml pins another trivy-version"
        );
        std::fs::write(
            &p,
            toml.replace("trivy-version = \"0.59.1\"", &format!("trivy-version = \"{v}\"")),
        )
        .unwrap();
    }
    fn pin(&self, lines: &str) {
        std::fs::write(self.path("repo/ci/trivy.sha256"), lines).unwrap();
    }
    /// An executable `trivy` script in `other/` that prints `Version: 0.59.1`.
    fn other_trivy(&self) -> PathBuf {
        let p = self.path("other/trivy");
        write_exe(&p, "#!/bin/sh\necho 'Version: 0.59.1'\n");
        p
    }
    /// Runs the script with PATH = `first` folders, then the system's.
    fn run(&self, server: &FileServer, first: &[&Path]) -> Run {
        let mut path: Vec<String> = first.iter().map(|p| p.display().to_string()).collect();
        path.push(std::env::var("PATH").unwrap());
        let out = Command::new(self.path("repo/ci/install-trivy.sh"))
            .current_dir(self.path("repo"))
            .env("INSTALL_TRIVY_FROM", server.base_url())
            .env("INSTALL_TRIVY_TO", self.path("dest"))
            .env("PATH", path.join(":"))
            .output()
            .unwrap();
        Run::from(out)
    }
}

fn write_exe(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A release-like tarball (`trivy` at the top, plus a LICENSE) whose binary is `script`.
fn tarball(script: &str) -> Vec<u8> {
    let t = TempDir::new("trivy-tarball");
    std::fs::create_dir_all(t.path().join("in")).unwrap();
    write_exe(&t.path().join("in/trivy"), script);
    std::fs::write(t.path().join("in/LICENSE"), "Apache-2.0\n").unwrap();
    let out = t.path().join("t.tar.gz");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(t.path().join("in"))
        .arg("-czf")
        .arg(&out)
        .args(["trivy", "LICENSE"])
        .status();
    assert!(ok.unwrap().success());
    std::fs::read(out).unwrap()
}

const GOOD: &str = "#!/bin/sh\necho 'Version: 0.59.1'\n# the genuine build\n";

#[test]
fn installs_the_pinned_tarball_even_when_a_trivy_on_path_prints_the_right_version() {
    let f = Fixture::new();
    let good = tarball(GOOD);
    f.pin(&format!("{}  {TARBALL}\n", sha256(&good)));
    let server = FileServer::start(&[(TARBALL, good)]);
    // Already "installed": dest/trivy is a symlink to another file that prints the right
    // version, and another such trivy is on PATH. Neither may stop the install, and the
    // symlink must be replaced, not written through.
    let victim = f.path("other/victim");
    write_exe(&victim, "#!/bin/sh\necho 'Version: 0.59.1'\n# not the pinned build\n");
    std::os::unix::fs::symlink(&victim, f.path("dest/trivy")).unwrap();
    f.other_trivy();

    let run = f.run(&server, &[&f.path("dest"), &f.path("other")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        server.requests(),
        vec![format!("/{TARBALL}")],
        "downloads the tarball only (no release checksum file)"
    );
    let installed = f.path("dest/trivy");
    assert!(
        !installed.symlink_metadata().unwrap().file_type().is_symlink(),
        "the symlink was replaced"
    );
    assert_eq!(
        std::fs::read_to_string(&installed).unwrap(),
        GOOD,
        "the tarball's trivy is what got installed"
    );
    assert!(
        std::fs::read_to_string(&victim)
            .unwrap()
            .contains("not the pinned build"),
        "the symlink's target is untouched"
    );
    let mode = installed.metadata().unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn a_trivy_earlier_on_path_is_an_error_after_the_install() {
    let f = Fixture::new();
    let good = tarball(GOOD);
    f.pin(&format!("{}  {TARBALL}\n", sha256(&good)));
    let server = FileServer::start(&[(TARBALL, good)]);
    let other = f.other_trivy();

    let run = f.run(&server, &[&f.path("other"), &f.path("dest")]);
    assert_eq!(run.code, 3, "{run:?}");
    let e = run.error_line();
    assert!(e.contains(&other.display().to_string()) && e.contains("PATH"), "{e}");
}

#[test]
fn a_tampered_tarball_is_refused_even_when_the_release_checksum_file_matches_it() {
    let f = Fixture::new();
    let good = tarball(GOOD);
    let bad = tarball("#!/bin/sh\necho 'Version: 0.59.1'\n# tampered\n");
    let (good_sum, bad_sum) = (sha256(&good), sha256(&bad));
    assert_ne!(good_sum, bad_sum);
    f.pin(&format!("{good_sum}  {TARBALL}\n"));
    // What an attacker who controls the release page would serve: both files agree.
    let sums = format!("{bad_sum}  {TARBALL}\n").into_bytes();
    let server = FileServer::start(&[(TARBALL, bad), ("trivy_0.59.1_checksums.txt", sums)]);

    let run = f.run(&server, &[&f.path("dest")]);
    assert_eq!(run.code, 3, "{run:?}");
    let e = run.error_line();
    assert!(
        e.contains(&good_sum) && e.contains(&bad_sum) && e.contains(TARBALL),
        "{e}"
    );
    assert!(!f.path("dest/trivy").exists(), "nothing installed");
}

#[test]
fn a_version_bump_without_its_pinned_sum_is_refused_before_any_download() {
    let f = Fixture::new();
    f.set_version("0.60.0");
    let server = FileServer::start(&[]);

    let run = f.run(&server, &[&f.path("dest")]);
    assert_eq!(run.code, 2, "{run:?}");
    let e = run.error_line();
    assert!(
        e.contains("ci/trivy.sha256") && e.contains("trivy_0.60.0_Linux-64bit.tar.gz"),
        "{e}"
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(!f.path("dest/trivy").exists());
}

#[test]
fn the_compromised_release_is_refused_even_with_a_pinned_sum() {
    let f = Fixture::new();
    f.set_version("0.69.4");
    let t = tarball("#!/bin/sh\necho 'Version: 0.69.4'\n");
    f.pin(&format!("{}  trivy_0.69.4_Linux-64bit.tar.gz\n", sha256(&t)));
    let server = FileServer::start(&[("trivy_0.69.4_Linux-64bit.tar.gz", t)]);

    let run = f.run(&server, &[&f.path("dest")]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.error_line().contains("compromised"), "{run:?}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn the_repo_pins_the_published_sum_for_its_trivy_version() {
    // The repo's own Cargo.toml and pin file; the mirror serves other bytes under the
    // release's file name, so the error shows which sum the repo pins for that file.
    let f = Fixture::new();
    let server = FileServer::start(&[(TARBALL, tarball(GOOD))]);

    let run = f.run(&server, &[&f.path("dest")]);
    assert_eq!(run.code, 3, "{run:?}");
    let e = run.error_line();
    assert!(
        e.contains(&format!("pins {PUBLISHED_SHA256}")) && e.contains(TARBALL),
        "{e}"
    );
    assert!(!f.path("dest/trivy").exists());
}
