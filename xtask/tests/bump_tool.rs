//! `bump-tool` against a loopback mirror with the upstream file names and the vendors'
//! checksum files (helm: `<file>.sha256sum`; kyverno and pluto: `checksums.txt`). A good
//! upgrade rewrites exactly two values of the Dockerfile, builds and passes smoke, and
//! `bump-version auto` then says major; every refusal leaves the Dockerfile byte for byte.
mod support;

use support::image::{as_strs, base_args, pinned_versions, ImageGuard, Tool, ToolServer};
use support::{busybox_base, docker, need_docker, unique, Run, TempRepo};

fn dockerfile(repo: &TempRepo) -> Vec<u8> {
    std::fs::read(repo.path().join("Dockerfile")).unwrap()
}

/// The value of `ARG NAME=value` in the Dockerfile text, read without the xtask.
fn arg(text: &str, name: &str) -> String {
    let at = text
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name}= in the Dockerfile"));
    text[at + name.len() + 1..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

/// The Dockerfile a bump of `tool` to `new` must leave: the original with exactly the two
/// values replaced.
fn expected_after(original: &[u8], tool: &str, new: &Tool) -> String {
    let text = String::from_utf8(original.to_vec()).unwrap();
    let up = tool.to_ascii_uppercase();
    let (old_v, old_sum) = (
        arg(&text, &format!("{up}_VERSION")),
        arg(&text, &format!("{up}_SHA256")),
    );
    let out = text
        .replacen(
            &format!("{up}_VERSION={old_v}\n"),
            &format!("{up}_VERSION={}\n", new.version),
            1,
        )
        .replacen(
            &format!("{up}_SHA256={old_sum}"),
            &format!("{up}_SHA256={}", new.sha256),
            1,
        );
    assert_ne!(out, text);
    out
}

fn sha256sum_line(t: &Tool) -> String {
    format!("{}  {}\n", t.sha256, t.file)
}

fn bump(repo: &TempRepo, args: &[&str]) -> Run {
    let mut a = vec!["bump-tool"];
    a.extend_from_slice(args);
    repo.xtask(&a)
}

fn assert_refused(run: &Run, code: i32, repo: &TempRepo, before: &[u8], says: &str) {
    assert_eq!(run.code, code, "{run:?}");
    let line = run.error_line();
    assert!(line.contains(says), "want `{says}` in: {line}");
    assert_eq!(dockerfile(repo), before, "the Dockerfile changed on a refusal: {line}");
    let leftovers: Vec<_> = std::fs::read_dir(repo.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[ignore = "needs Docker"]
#[test]
fn helm_upgrade_builds_passes_smoke_and_makes_a_major_release() {
    need_docker();
    let name = unique("bumptool");
    let repo = TempRepo::named(&name);
    let server = ToolServer::start();
    let new = server.add_release("helm", "3.23.0");
    server.put(&format!("{}.sha256sum", new.file), sha256sum_line(&new));
    let before = dockerfile(&repo);
    let old = pinned_versions()["helm"].clone();

    let run = bump(&repo, &["helm", "3.23.0", "--tools-mirror", &server.base_url()]);
    assert_eq!(run.code, 0, "{run:?}");
    let after = String::from_utf8(dockerfile(&repo)).unwrap();
    assert_eq!(
        after,
        expected_after(&before, "helm", &new),
        "only HELM_VERSION and HELM_SHA256 change"
    );
    assert_eq!(
        arg(&after, "HELM_SHA256"),
        support::image::sha256(&server_bytes(&server, &new)),
        "the sum of the served bytes"
    );
    let reqs = server.requests();
    assert!(
        reqs.contains(&format!("/{}", new.file)) && reqs.contains(&format!("/{}.sha256sum", new.file)),
        "{reqs:?}"
    );
    for want in [
        &format!("helm {old} -> 3.23.0"),
        "release: major",
        "cargo xtask bump-version major",
        "cargo xtask publish",
    ] {
        assert!(run.stdout.contains(want), "want `{want}` in:\n{}", run.stdout);
    }

    // The image builds from the mirror with the Dockerfile's new helm pin (no HELM_*
    // build argument: --tools-mirror gives its URL, the Dockerfile its version and sum),
    // and smoke finds exactly the new helm inside. Kyverno and pluto keep their pinned
    // versions, as stand-ins whose sums come as build arguments (the Dockerfile pins the
    // real upstream tarballs).
    let version = repo.read("VERSION").trim().to_string();
    let _guard = ImageGuard::release_tags(&name, &repo);
    let mut image_args = vec![
        "image".to_string(),
        "--tools-mirror".into(),
        server.base_url(),
        "--network".into(),
        "host".into(),
    ];
    image_args.extend(base_args(&busybox_base()));
    for tool in ["kyverno", "pluto"] {
        image_args.extend(server.release_args(server.tool(tool)));
    }
    assert!(!image_args.iter().any(|a| a.starts_with("HELM_")), "{image_args:?}");
    let run = repo.xtask(&as_strs(&image_args));
    assert_eq!(run.code, 0, "{run:?}");
    let label = docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"io.policy-platform.tool.helm\"}}",
        &format!("{name}:{version}"),
    ]);
    assert_eq!(label.stdout.trim(), "3.23.0", "{label:?}");
    let run = repo.xtask(&["smoke"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(&format!("ok    {:<9} 3.23.0", "helm")), "{run:?}");
    let inside = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "helm",
        &format!("{name}:{version}"),
        "version",
        "--short",
    ]);
    assert!(inside.stdout.starts_with("v3.23.0+"), "{inside:?}");

    // The versioning rule agrees: a tool pin changed, so the next release is major.
    let run = repo.xtask(&["bump-version", "auto"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(&format!("major: tool pin helm {old} -> 3.23.0"))
            && run.stderr.contains("auto: major release"),
        "{run:?}"
    );
    let major: u64 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(repo.read("VERSION"), format!("v{}.0.0\n", major + 1));
}

/// The bytes the server holds for a release (read back over HTTP, as a user's curl would).
fn server_bytes(server: &ToolServer, t: &Tool) -> Vec<u8> {
    let out = std::process::Command::new("curl")
        .args(["-q", "-fsS", &format!("{}/{}", server.base_url(), t.file)])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn a_sum_that_disagrees_exits_1_and_leaves_the_dockerfile() {
    let repo = TempRepo::new();
    let server = ToolServer::start();
    let new = server.add_release("helm", "3.23.0");
    let mirror = server.base_url();
    let before = dockerfile(&repo);
    let wrong = "0".repeat(64);

    // A published .sha256sum that agrees, a --sha256 that does not.
    server.put(&format!("{}.sha256sum", new.file), sha256sum_line(&new));
    let run = bump(
        &repo,
        &["helm", "3.23.0", "--tools-mirror", &mirror, "--sha256", &wrong],
    );
    assert_refused(&run, 1, &repo, &before, &format!("but --sha256 says {wrong}"));
    assert!(
        run.error_line().contains(&new.sha256),
        "the computed sum is named: {run:?}"
    );

    // A published .sha256sum that disagrees with the download, with or without --sha256.
    server.put(&format!("{}.sha256sum", new.file), format!("{wrong}  {}\n", new.file));
    let run = bump(&repo, &["helm", "3.23.0", "--tools-mirror", &mirror]);
    assert_refused(
        &run,
        1,
        &repo,
        &before,
        &format!("{}.sha256sum publishes {wrong}", new.file),
    );
    let run = bump(
        &repo,
        &["helm", "3.23.0", "--tools-mirror", &mirror, "--sha256", &new.sha256],
    );
    assert_refused(&run, 1, &repo, &before, "publishes");

    // Both agree: accepted, and the dry run beforehand wrote nothing.
    server.put(&format!("{}.sha256sum", new.file), sha256sum_line(&new));
    let run = bump(
        &repo,
        &[
            "helm",
            "3.23.0",
            "--tools-mirror",
            &mirror,
            "--sha256",
            &new.sha256.to_ascii_uppercase(),
            "--dry-run",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("[read] $ curl -q"),
        "the download runs, marked a read: {run:?}"
    );
    assert!(run.stdout.contains("the Dockerfile is not written"), "{run:?}");
    assert_eq!(dockerfile(&repo), before);
    let run = bump(
        &repo,
        &["helm", "3.23.0", "--tools-mirror", &mirror, "--sha256", &new.sha256],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(".sha256sum and --sha256"), "{run:?}");
    assert_eq!(
        String::from_utf8(dockerfile(&repo)).unwrap(),
        expected_after(&before, "helm", &new)
    );
}

#[test]
fn without_a_published_checksum_sha256_is_required() {
    let repo = TempRepo::new();
    let server = ToolServer::start();
    let new = server.add_release("helm", "3.23.0");
    let mirror = server.base_url();
    let before = dockerfile(&repo);
    let run = bump(&repo, &["helm", "3.23.0", "--tools-mirror", &mirror]);
    assert_refused(&run, 2, &repo, &before, "pass --sha256");
    assert!(run.error_line().contains("HTTP 404"), "{run:?}");
    // A checksum file that does not list the tarball is no published checksum either.
    server.put(
        &format!("{}.sha256sum", new.file),
        format!("{}  helm-v3.23.0-darwin-arm64.tar.gz\n", new.sha256),
    );
    let run = bump(&repo, &["helm", "3.23.0", "--tools-mirror", &mirror]);
    assert_refused(&run, 2, &repo, &before, "does not list");
    let run = bump(
        &repo,
        &["helm", "3.23.0", "--tools-mirror", &mirror, "--sha256", &new.sha256],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        String::from_utf8(dockerfile(&repo)).unwrap(),
        expected_after(&before, "helm", &new)
    );
}

#[test]
fn kyverno_and_pluto_are_checked_against_a_goreleaser_checksums_txt() {
    let repo = TempRepo::new();
    let server = ToolServer::start();
    let mirror = server.base_url();
    let pluto = server.add_release("pluto", "5.25.0");
    let kyverno = server.add_release("kyverno", "1.20.0");
    // One flat mirror holds both releases' checksums.txt lines, other platforms' too.
    let other = "1".repeat(64);
    server.put(
        "checksums.txt",
        format!(
            "{other}  pluto_5.25.0_darwin_arm64.tar.gz\n{}{}{other}  kyverno-cli_v1.20.0_darwin_arm64.tar.gz\n",
            sha256sum_line(&pluto),
            sha256sum_line(&kyverno)
        ),
    );
    let before = dockerfile(&repo);
    let run = bump(&repo, &["pluto", "v5.25.0", "--tools-mirror", &mirror]);
    assert_eq!(run.code, 0, "{run:?}");
    let after_pluto = expected_after(&before, "pluto", &pluto);
    assert_eq!(String::from_utf8(dockerfile(&repo)).unwrap(), after_pluto);
    let run = bump(&repo, &["kyverno", "1.20.0", "--tools-mirror", &mirror]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        String::from_utf8(dockerfile(&repo)).unwrap(),
        expected_after(after_pluto.as_bytes(), "kyverno", &kyverno)
    );
    assert!(
        server.requests().iter().filter(|r| *r == "/checksums.txt").count() == 2,
        "{:?}",
        server.requests()
    );
}

#[test]
fn bad_input_exits_2_before_any_download() {
    let repo = TempRepo::new();
    let server = ToolServer::start();
    let mirror = server.base_url();
    let before = dockerfile(&repo);
    let pin = pinned_versions()["helm"].clone();
    for (args, says) in [
        (vec!["trivy", "0.60.0"], "unknown tool `trivy`"),
        (vec!["Helm", "3.23.0"], "unknown tool `Helm`"),
        (vec!["helm", "3.23"], "`3.23` is not a release version"),
        (vec!["helm", "three"], "`three` is not a release version"),
        (vec!["helm", "3.23.0+build.1"], "build metadata"),
        (vec!["helm", "3.23.0", "--sha256", "xyz"], "--sha256 `xyz`"),
        (vec!["helm", "3.23.0", "--tools-mirror", "ftp://m"], "--tools-mirror"),
        (vec!["helm", &pin], "is not newer than the pinned"),
        (vec!["helm", "3.0.0"], "is not newer than the pinned"),
        (vec!["helm"], "version"),
    ] {
        let mut a = args.clone();
        if !a.contains(&"--tools-mirror") {
            a.extend(["--tools-mirror", &mirror]);
        }
        assert_refused(&bump(&repo, &a), 2, &repo, &before, says);
    }
    assert!(
        server.requests().is_empty(),
        "nothing downloaded: {:?}",
        server.requests()
    );
}

#[test]
fn download_failures_exit_3() {
    let repo = TempRepo::new();
    let before = dockerfile(&repo);
    let server = ToolServer::start();
    let mirror = server.base_url();
    // The mirror has no such release.
    let run = bump(
        &repo,
        &["helm", "3.99.0", "--tools-mirror", &mirror, "--sha256", &"a".repeat(64)],
    );
    assert_refused(&run, 3, &repo, &before, "HTTP 404");
    assert!(run.error_line().contains("helm-v3.99.0-linux-amd64.tar.gz"), "{run:?}");
    // The mirror is gone.
    drop(server);
    let run = bump(&repo, &["helm", "3.23.0", "--tools-mirror", &mirror]);
    assert_refused(&run, 3, &repo, &before, "cannot download");
    assert!(run.error_line().contains(&mirror), "{run:?}");
}
