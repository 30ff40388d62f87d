//! The main job on a machine with no network: `cargo xtask publish --local`, with what an
//! air-gapped company would mirror prepared first. Run it as `bash scripts/local-release.sh`.
//!
//! This machine reaches no release page and no image registry, so:
//! - the tool downloads come from a loopback mirror (`--tools-mirror`) holding the test
//!   STAND-INS of kyverno, helm and pluto (the real CLIs cannot be had here), in the upstream
//!   file names and tarball layouts; their checksums differ from the pinned upstream ones,
//!   so they are passed as `--build-arg T_SHA256=...`;
//! - the base image is Debian's busybox-static imported into Docker (`BASE_IMAGE`, and
//!   `DOWNLOAD_IMAGE` for the download stages);
//! - Trivy scans offline against a local vulnerability DB with no advisories (secrets are
//!   scanned for real).
//!
//! It reuses the test support, so the recipe and the tests cannot drift apart.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;

fn main() {
    if !support::docker_answers() {
        eprintln!("error: the Docker daemon does not answer; start it and run again");
        std::process::exit(3);
    }
    let server = support::image::ToolServer::start();
    let cache = support::trivy::Cache::with(&[]);

    let mut args: Vec<String> = vec![
        "publish".into(),
        "--local".into(),
        "--tools-mirror".into(),
        server.base_url(),
    ];
    args.extend(support::image::base_args(&support::busybox_base()));
    for t in &server.tools {
        args.extend([
            "--build-arg".into(),
            format!("{}_SHA256={}", t.name.to_ascii_uppercase(), t.sha256),
        ]);
    }
    args.extend(["--network".into(), "host".into()]);
    args.extend(std::env::args().skip(1));

    eprintln!(
        "==> offline recipe: tools mirror {}, base {}, Trivy DB {}",
        server.base_url(),
        support::busybox_base(),
        cache.path().display()
    );
    let status = Command::new(support::xtask_bin())
        .args(&args)
        .env("TRIVY_CACHE_DIR", cache.path())
        .env("TRIVY_SKIP_DB_UPDATE", "true")
        .env("TRIVY_SKIP_JAVA_DB_UPDATE", "true")
        .env("TRIVY_OFFLINE_SCAN", "true")
        .env("TRIVY_NO_PROGRESS", "true")
        .status()
        .expect("run the xtask");
    // `exit` skips destructors: the mirror and the Trivy cache folder go first.
    drop(server);
    drop(cache);
    std::process::exit(status.code().unwrap_or(3));
}
